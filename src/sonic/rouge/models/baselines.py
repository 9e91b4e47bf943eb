"""Baselines that ignore content: uniform random and popularity."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from sonic.rouge.shared import (
    SeenTracks,
    batches_by_history,
    check_k,
    empty_lists,
    first_k_kept,
    make_config,
    rows_in,
    sorted_unique,
)
from sonic.rouge.models.state import read_state, write_state
from sonic.tails.table import EmbeddingTable

_CELLS_PER_BATCH = 1 << 22  # (users x tracks) random keys drawn at once: 32 MB of float64
_USERS_PER_BATCH = 1024


@dataclass(frozen=True)
class RandomConfig:
    """The random baseline has no options."""


@dataclass(frozen=True)
class PopularityConfig:
    """The popularity baseline has no options."""


class RandomRecommender:
    """Uniformly random train tracks, a fresh order per user.

    The order for a user depends only on ``seed``, the user and the catalogue ranked (a
    counter-based hash, not a shared random stream), so a user's list is the same whether
    asked for alone or among others. Scores are the uniform keys in [0, 1) that set the order.
    It needs nothing of a track, so it ranks tracks nobody played as well (``candidates``): the
    chance level of a cold test.
    """

    name = "random"
    content = False
    cold_start = True
    curve = None

    def __init__(self, **options: Any) -> None:
        self.config = make_config(RandomConfig, options, self.name)
        self._seen: SeenTracks | None = None
        self._seed = 0

    def fit(
        self,
        train: pd.DataFrame,
        *,
        validation: pd.DataFrame | None = None,
        item_embeddings: EmbeddingTable | None = None,
        device: str = "auto",
        seed: int = 0,
    ) -> Self:
        """Remember the train tracks (the catalogue) and who has seen which; the other inputs are unused."""
        self._seen = SeenTracks.from_train(train)
        self._seed = int(seed)
        return self

    def recommend(
        self,
        users: Sequence[str],
        k: int,
        *,
        exclude_seen: bool = True,
        history: pd.DataFrame | None = None,
        candidates: Sequence[str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``ids`` (n, k) object and ``scores`` (n, k) float32; see :class:`sonic.rouge.base.Recommender`.
        ``candidates``: the track ids to rank (any, played or not); None ranks the train tracks."""
        seen = _fitted(self._seen, self.name)
        if candidates is not None:
            seen = seen.among(pd.unique(np.asarray(candidates, dtype=object).astype(str)))
        seen = seen.extended(history)
        k, rows = check_k(k), seen.user_rows(users)
        ids, scores = empty_lists(len(rows), k)
        if seen.n_tracks == 0:
            return ids, scores
        batch = max(1, _CELLS_PER_BATCH // seen.n_tracks)
        for start in range(0, len(rows), batch):
            user_rows = rows[start : start + batch]
            keys = _uniform_keys(self._seed, user_rows, seen.n_tracks)  # (b, n_tracks) in [0, 1)
            if exclude_seen:
                keys[seen.seen_mask(user_rows)] = -1.0
            candidates = _top_rows(keys, k)
            top_keys = np.take_along_axis(keys, candidates, axis=1)
            ids[start : start + batch], scores[start : start + batch] = first_k_kept(
                candidates, top_keys, top_keys >= 0, k, seen.track_ids
            )
        return ids, scores

    def describe(self) -> dict[str, Any]:
        """Name, options, seed and catalogue size, for the manifest."""
        seen = _fitted(self._seen, self.name)
        return {"name": self.name, "config": asdict(self.config), "seed": self._seed, **_sizes(seen)}

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the fitted model to ``directory``; :meth:`load` reads it back."""
        seen = _fitted(self._seen, self.name)
        return write_state(directory, self.name, self.config, facts={"seed": self._seed}, arrays=seen.to_arrays())

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Self:
        saved = read_state(directory, cls.name)
        model = cls(**saved.config)
        model._seen, model._seed = SeenTracks.from_arrays(saved.arrays), int(saved.facts["seed"])
        return model


class PopularityRecommender:
    """Train tracks by popularity: distinct listeners, then total plays, then track_id.

    Plays are the ``count`` column of the events frame (one per row when it is absent).
    Scores are the number of distinct train listeners of the track.
    """

    name = "pop"
    content = False
    cold_start = False  # a track nobody played has no listeners to count
    curve = None

    def __init__(self, **options: Any) -> None:
        self.config = make_config(PopularityConfig, options, self.name)
        self._seen: SeenTracks | None = None
        self._ranked_rows = np.zeros(0, np.int64)
        self._listeners = np.zeros(0, np.float32)

    def fit(
        self,
        train: pd.DataFrame,
        *,
        validation: pd.DataFrame | None = None,
        item_embeddings: EmbeddingTable | None = None,
        device: str = "auto",
        seed: int = 0,
    ) -> Self:
        """Count listeners and plays per train track; the other inputs are unused."""
        seen = SeenTracks.from_train(train)
        track_rows = rows_in(seen.track_ids, train["track_id"].astype(str))
        user_codes = rows_in(seen.user_ids, train["user_id"].astype(str))
        pairs = sorted_unique(user_codes * seen.n_tracks + track_rows)
        listeners = np.bincount(pairs % seen.n_tracks, minlength=seen.n_tracks)
        plays_per_row = train["count"].to_numpy(np.int64) if "count" in train.columns else np.ones(len(train), np.int64)
        plays = np.bincount(track_rows, weights=plays_per_row, minlength=seen.n_tracks)
        # The catalogue is sorted by track_id, so its row number breaks the last tie.
        self._ranked_rows = np.lexsort((np.arange(seen.n_tracks), -plays, -listeners))
        self._listeners = listeners.astype(np.float32)
        self._seen = seen
        return self

    def recommend(
        self, users: Sequence[str], k: int, *, exclude_seen: bool = True, history: pd.DataFrame | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``ids`` (n, k) object and ``scores`` (n, k) float32; see :class:`sonic.rouge.base.Recommender`."""
        seen = _fitted(self._seen, self.name).extended(history)
        k, rows = check_k(k), seen.user_rows(users)
        ids, scores = empty_lists(len(rows), k)
        for batch in batches_by_history(seen.seen_counts[rows], _USERS_PER_BATCH):
            user_rows = rows[batch]
            # Enough candidates that k remain after dropping the batch's longest history.
            width = min(seen.n_tracks, k + (int(seen.seen_counts[user_rows].max()) if exclude_seen else 0))
            candidates = np.broadcast_to(self._ranked_rows[:width], (len(user_rows), width))
            keep = ~seen.is_seen(user_rows, candidates) if exclude_seen else np.ones(candidates.shape, bool)
            ids[batch], scores[batch] = first_k_kept(candidates, self._listeners[candidates], keep, k, seen.track_ids)
        return ids, scores

    def describe(self) -> dict[str, Any]:
        """Name, options, ranking rule and catalogue size, for the manifest."""
        seen = _fitted(self._seen, self.name)
        ranking = "distinct train listeners, then total plays, then track_id"
        return {"name": self.name, "config": asdict(self.config), "ranking": ranking, **_sizes(seen)}

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the fitted model to ``directory``; :meth:`load` reads it back."""
        seen = _fitted(self._seen, self.name)
        arrays = {**seen.to_arrays(), "ranked_rows": self._ranked_rows, "listeners": self._listeners}
        return write_state(directory, self.name, self.config, arrays=arrays)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Self:
        saved = read_state(directory, cls.name)
        model = cls(**saved.config)
        model._seen = SeenTracks.from_arrays(saved.arrays)
        model._ranked_rows, model._listeners = saved.arrays["ranked_rows"], saved.arrays["listeners"]
        return model


def _uniform_keys(seed: int, user_rows: np.ndarray, n_tracks: int) -> np.ndarray:
    """(b, n_tracks) float64 in [0, 1): splitmix64 of (user_row, track_row) counters mixed with the seed."""
    counters = user_rows.astype(np.uint64)[:, None] * np.uint64(n_tracks) + np.arange(n_tracks, dtype=np.uint64)
    seed_word = _splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    bits = _splitmix64(counters ^ seed_word)
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (Steele, Lea & Flood 2014): a bijective 64-bit mixer; wraps mod 2**64."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _top_rows(keys: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest keys per row, largest first: (b, n) -> (b, min(k, n))."""
    if k < keys.shape[1]:
        part = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(keys.shape[1]), keys.shape)
    order = np.argsort(-np.take_along_axis(keys, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _fitted(seen: SeenTracks | None, name: str) -> SeenTracks:
    if seen is None:
        raise RuntimeError(f"{name} recommender: call fit before recommend or describe")
    return seen


def _sizes(seen: SeenTracks) -> dict[str, int]:
    return {"n_train_users": len(seen.user_ids), "n_catalogue_tracks": seen.n_tracks}
