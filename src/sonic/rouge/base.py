"""The recommender protocol, the registry of recommenders, and the parts they share.

Shared parts: :class:`SeenTracks` (train users, a catalogue, and which user has seen which
catalogue track) and :func:`first_k_kept` (cut ranked candidates to k, padding short rows).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

import numpy as np
import pandas as pd

from sonic.errors import DataError, SonicError
from sonic.registry import Registry
from sonic.tails.table import EmbeddingTable


@runtime_checkable
class Recommender(Protocol):
    """What every recommender does.

    ``fit`` takes train events (the frame of :mod:`sonic.cream.data.events`) and, for
    content-based models, the item embeddings. ``recommend`` returns, for each user in
    ``users``, ``ids`` (n_users, k) object array of track ids and ``scores`` (n_users, k)
    float32, best first; a row with fewer than ``k`` candidates is padded with ``None``
    ids and ``nan`` scores. With ``exclude_seen`` a user's train tracks are never returned.
    A user not in the train events raises :class:`DataError`.
    """

    name: str

    def fit(self, train: pd.DataFrame, *, item_embeddings: EmbeddingTable | None = None, seed: int = 0) -> Self: ...

    def recommend(self, users: Sequence[str], k: int, *, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]: ...

    def describe(self) -> dict[str, Any]: ...


#: Every recommender, by name. Targets are imported only when their name is asked for.
RECOMMENDERS: Registry[Recommender] = Registry(
    "recommender",
    {
        "random": "sonic.rouge.baselines:RandomRecommender",
        "pop": "sonic.rouge.baselines:PopularityRecommender",
        "knn": "sonic.rouge.knn:KNNRecommender",
    },
)

ConfigT = TypeVar("ConfigT")


def make_config(config_type: type[ConfigT], options: Mapping[str, Any], owner: str) -> ConfigT:
    """``config_type(**options)``; an unknown option is a :class:`SonicError` listing the known ones."""
    known = [f.name for f in fields(config_type)]  # type: ignore[arg-type]
    unknown = [name for name in options if name not in known]
    if unknown:
        raise SonicError(f"unknown option {unknown[0]!r} for {owner}; known: {', '.join(known) or 'none'}")
    return config_type(**options)


@dataclass(frozen=True)
class SeenTracks:
    """Train users, a catalogue of candidate tracks, and the catalogue tracks each user has seen.

    ``user_ids`` (n_users,) str, sorted; ``track_ids`` (n_tracks,) str, the catalogue;
    ``seen_keys`` sorted int64 ``user_row * n_tracks + track_row`` of every (user, seen
    catalogue track) pair; ``seen_counts`` (n_users,) int64 seen catalogue tracks per user.
    """

    user_ids: np.ndarray
    track_ids: np.ndarray
    seen_keys: np.ndarray
    seen_counts: np.ndarray

    @classmethod
    def from_train(cls, train: pd.DataFrame, track_ids: np.ndarray | None = None) -> SeenTracks:
        """From train events; the catalogue is ``track_ids`` or, by default, every train track (sorted)."""
        check_train(train)
        user_codes, user_ids = pd.factorize(train["user_id"].astype(str), sort=True)
        if track_ids is None:
            track_ids = np.sort(train["track_id"].astype(str).unique())
        track_ids = np.asarray(track_ids, dtype=object)
        track_rows = pd.Index(track_ids).get_indexer(train["track_id"].astype(str))
        in_catalogue = track_rows >= 0
        stride = max(len(track_ids), 1)
        keys = np.unique(user_codes[in_catalogue].astype(np.int64) * stride + track_rows[in_catalogue])
        counts = np.bincount(keys // stride, minlength=len(user_ids)).astype(np.int64)
        return cls(np.asarray(user_ids, dtype=object), track_ids, keys, counts)

    @property
    def n_tracks(self) -> int:
        return len(self.track_ids)

    def user_rows(self, users: Sequence[str]) -> np.ndarray:
        """Rows of ``users`` (n,) int64; a user not in the train events raises :class:`DataError`."""
        users = np.asarray(users, dtype=object)
        rows = pd.Index(self.user_ids).get_indexer(users.astype(str))
        if (rows < 0).any():
            unknown = users[np.argmax(rows < 0)]
            raise DataError(f"user '{unknown}' is not in the train events; recommend only for users seen by fit")
        return rows.astype(np.int64)

    def is_seen(self, user_rows: np.ndarray, track_rows: np.ndarray) -> np.ndarray:
        """Whether each candidate was seen: ``user_rows`` (b,), ``track_rows`` (b, w) -> (b, w) bool."""
        keys = user_rows[:, None] * max(self.n_tracks, 1) + track_rows
        if len(self.seen_keys) == 0:
            return np.zeros(keys.shape, dtype=bool)
        at = np.minimum(np.searchsorted(self.seen_keys, keys), len(self.seen_keys) - 1)
        return self.seen_keys[at] == keys

    def seen_mask(self, user_rows: np.ndarray) -> np.ndarray:
        """Dense (b, n_tracks) bool: True where the user has seen the catalogue track."""
        mask = np.zeros((len(user_rows), self.n_tracks), dtype=bool)
        starts = np.searchsorted(self.seen_keys, user_rows * self.n_tracks)
        ends = np.searchsorted(self.seen_keys, (user_rows + 1) * self.n_tracks)
        lengths = ends - starts
        batch_rows = np.repeat(np.arange(len(user_rows)), lengths)
        key_index = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        mask[batch_rows, self.seen_keys[key_index] % max(self.n_tracks, 1)] = True
        return mask


def first_k_kept(
    track_rows: np.ndarray, scores: np.ndarray, keep: np.ndarray, k: int, track_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` kept candidates of each row, in the given (best-first) order.

    ``track_rows`` (b, w) int catalogue rows, ``scores`` (b, w), ``keep`` (b, w) bool ->
    ``ids`` (b, k) object (``None`` padding) and ``scores`` (b, k) float32 (``nan`` padding).
    """
    ids, out_scores = empty_lists(len(track_rows), k)
    if len(track_ids) == 0 or track_rows.shape[1] == 0:
        return ids, out_scores
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # kept candidates first, order kept
    valid = np.take_along_axis(keep, order, axis=1)
    rows = np.where(valid, np.take_along_axis(track_rows, order, axis=1), 0)
    width = order.shape[1]
    ids[:, :width] = np.where(valid, track_ids[rows], None)
    out_scores[:, :width] = np.where(valid, np.take_along_axis(scores, order, axis=1), np.nan)
    return ids, out_scores


def empty_lists(n_users: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """All-padding results: ``ids`` (n_users, k) of ``None``, ``scores`` (n_users, k) float32 ``nan``."""
    return np.full((n_users, k), None, dtype=object), np.full((n_users, k), np.nan, dtype=np.float32)


def batches_by_history(seen_counts: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Positions into ``seen_counts`` (n,), ``batch_size`` at a time, fewest seen tracks first.

    Users with similar histories share a batch, so a batch's candidate width (k plus its
    longest history) is not set by one heavy listener among light ones.
    """
    order = np.argsort(seen_counts, kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def check_train(train: pd.DataFrame) -> None:
    """Train events need ``user_id`` and ``track_id`` and at least one row."""
    if not isinstance(train, pd.DataFrame):
        raise DataError(f"train events must be a pandas DataFrame, got {type(train).__name__}")
    missing = [c for c in ("user_id", "track_id") if c not in train.columns]
    if missing:
        found = ", ".join(map(str, train.columns)) or "none"
        raise DataError(f"train events have no column {missing[0]!r}; found: {found}")
    if len(train) == 0:
        raise DataError("train events hold no rows; there is nothing to fit")


def check_k(k: int) -> int:
    """``k`` must be a positive integer."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise SonicError(f"k must be a positive integer, got {k!r}")
    return int(k)
