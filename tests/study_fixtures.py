"""A tiny demo-shaped catalogue and study files on it, for the study, store and report tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

from sonic.demo import CatalogueConfig, generate_catalogue

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
