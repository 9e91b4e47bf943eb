"""Listening events with hot and cold tracks, and study files with a search, for the search tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sonic.rouge.models.ease import EASERecommender

DATES = ("2019-01-01", "2019-02-01", "2019-03-01")  # start, test date, end of the tamm2025 window


def taste_with_cold(path: Path, *, n_users: int = 160, n_tracks: int = 60, n_cold: int = 6, seed: int = 3) -> Path:
    """January plays in train, February plays evaluated: user ``u`` likes tracks near ``u % n_tracks`` and a
    few popular ones; the last ``n_cold`` tracks appear only in February (cold tracks, played by some users)."""
    rng = np.random.default_rng(seed)
    start, test, end = (pd.Timestamp(day) for day in DATES)
    rows = []
    for user in range(n_users):
        centre = user * n_tracks // n_users
        near = (centre + rng.integers(-4, 5, size=14)) % n_tracks
        popular = rng.integers(0, 5, size=3)
        for track in np.concatenate([near, popular]):
            days = (end - start).days
            rows.append((f"u{user}", f"t{track}", start + pd.Timedelta(days=float(rng.uniform(0, days)))))
        if user % 5 == 0:  # a cold track, in February
            cold = n_tracks + rng.integers(0, n_cold)
            rows.append((f"u{user}", f"t{cold}", test + pd.Timedelta(days=float(rng.uniform(0, 27)))))
    frame = pd.DataFrame(rows, columns=["user_id", "track_id", "timestamp"])
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def search_study(path: Path, events: Path, *, search: str, seeds=(7,), split_seed: int | None = 11,
                 modes=("val", "test", "cold_test"), extra: str = "", others: str = '[[recommenders]]\nname = "pop"\n',
                 model: str = "ease") -> Path:
    """A tamm2025 study of pop and a ``model`` (ease) entry whose search keys are ``search`` (TOML lines)."""
    start, test, end = DATES
    seed_line = "" if split_seed is None else f"seed = {split_seed}\n"
    text = (f'title = "search"\n[data]\nevents = "{events}"\n'
            f'[split]\nprotocol = "tamm2025"\nstart_date = "{start}"\ntest_date = "{test}"\nend_date = "{end}"\n'
            f"{seed_line}[evaluation]\nmodes = {list(modes)!r}\nks = [5, 10]\nseeds = {list(seeds)!r}\n{extra}"
            f"[report]\nk = 10\ngallery_tracks = 0\n"
            f'{others}[[recommenders]]\nname = "{model}"\n{search}\n').replace("'", '"')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path



class FragileEase(EASERecommender):
    """A recommender tests register (``fragile``): EASE whose fit fails for l2 below 10."""

    def fit(self, *args, **kwargs):
        if self.config.l2 < 10:
            raise RuntimeError(f"fragile refuses l2 = {self.config.l2}")
        return super().fit(*args, **kwargs)


def register_fragile() -> None:
    from sonic.rouge.base import RECOMMENDERS

    if "fragile" not in RECOMMENDERS:
        RECOMMENDERS.add("fragile", "search_fixtures:FragileEase")
