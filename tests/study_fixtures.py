"""A tiny demo-shaped catalogue and study files on it, for the study, store and report tests."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from sonic.demo import CatalogueConfig, generate_catalogue
from sonic.rouge.models.baselines import PopularityRecommender

TINY = CatalogueConfig(tracks_per_style=3, n_users=60, clip_seconds=2.0, seed=5)


def tiny_catalogue(root: Path):
    return generate_catalogue(root, TINY, num_workers=2)


def study_file(path: Path, catalogue, *, embedders=("mfcc_104",), models=("random", "pop", "knn"),
               modes=("val", "test"), ks=(5, 10, 20), seeds=(1, 2), audio: Path | None = None,
               extra: str = "") -> Path:
    """Write a study file on ``catalogue`` (absolute paths) to ``path``."""
    recommenders = "".join(f'[[recommenders]]\nname = "{name}"\n' for name in models)
    text = f"""
    title = "tiny study"
    [data]
    events = "{catalogue.events_path}"
    audio = "{audio or catalogue.audio_dir}"
    [split]
    protocol = "sonic"
    [embeddings]
    names = {list(embedders)!r}
    [evaluation]
    modes = {list(modes)!r}
    ks = {list(ks)!r}
    seeds = {list(seeds)!r}
    [report]
    k = {ks[0]}
    gallery_tracks = 2
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).replace("'", '"') + recommenders + extra)
    return path


def taste_events(path: Path, *, n_users: int = 40, n_tracks: int = 30, seed: int = 0) -> Path:
    """Plays over the sonic protocol's year: users prefer tracks near their own number (no audio needed)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        tracks = (user % n_tracks + rng.integers(-4, 5, size=25)) % n_tracks
        times = pd.Timestamp("2018-03-01") + pd.to_timedelta(rng.uniform(0, 350, size=25), unit="D")
        rows += [(f"u{user}", f"t{track}", time) for track, time in zip(tracks, times)]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["user_id", "track_id", "timestamp"]).to_csv(path, index=False)
    return path


def content_free_study(path: Path, events: Path, *, recommenders=("random", "pop"), seeds=(7, 8), ks=(3, 5),
                       extra: str = "") -> Path:
    """A study file of content-free recommenders on ``events`` (``recommenders``: names, or (name, label))."""
    tables = "".join(
        f'[[recommenders]]\nname = "{spec}"\n' if isinstance(spec, str) else
        f'[[recommenders]]\nname = "{spec[0]}"\nlabel = "{spec[1]}"\n'
        for spec in recommenders
    )  # fmt: skip
    text = (f'title = "content-free"\n[data]\nevents = "{events}"\n[evaluation]\nmodes = ["val", "test"]\n'
            f"ks = {list(ks)}\nseeds = {list(seeds)}\n[report]\nk = {ks[0]}\n{extra}{tables}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


class BrokenPop(PopularityRecommender):
    """A recommender tests register (``broken``): popularity, whose fit always fails."""

    def fit(self, *args, **kwargs):
        raise RuntimeError("this recommender always fails")


class CrashingPop(PopularityRecommender):
    """A recommender tests register (``crash``): popularity, whose fit ends its own process as a native
    crash would."""

    def fit(self, *args, **kwargs):
        os._exit(3)


def register_test_recommenders() -> None:
    """Register ``broken`` and ``crash`` (a Ray worker's setup hook calls this too)."""
    from sonic.rouge.base import RECOMMENDERS

    for name, target in (("broken", "study_fixtures:BrokenPop"), ("crash", "study_fixtures:CrashingPop")):
        if name not in RECOMMENDERS:
            RECOMMENDERS.add(name, target)
