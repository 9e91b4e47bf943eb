"""What the recommenders share: :class:`SeenTracks` (train users, a catalogue, and which user has seen
which catalogue track), :func:`first_k_kept` and :func:`top_k_unseen` (cut ranked candidates to k,
padding short rows), :func:`make_config` (a model's frozen options), id sorting and the input checks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from sonic.errors import DataError, SonicError


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
        user_codes, user_ids = sorted_codes(train["user_id"].astype(str))
        if track_ids is None:
            track_ids = np.sort(train["track_id"].astype(str).unique())
        track_ids = np.asarray(track_ids, dtype=object)
        track_rows = rows_in(track_ids, train["track_id"].astype(str))
        in_catalogue = track_rows >= 0
        stride = max(len(track_ids), 1)
        keys = sorted_unique(user_codes[in_catalogue].astype(np.int64) * stride + track_rows[in_catalogue])
        counts = np.bincount(keys // stride, minlength=len(user_ids)).astype(np.int64)
        return cls(np.asarray(user_ids, dtype=object), track_ids, keys, counts)

    @property
    def n_tracks(self) -> int:
        return len(self.track_ids)

    def extended(self, history: pd.DataFrame | None) -> SeenTracks:
        """These seen pairs plus those of ``history`` events (catalogue tracks of known users only)."""
        if history is None or len(history) == 0:
            return self
        check_events(history, "history")
        users = rows_in(self.user_ids, history["user_id"].astype(str))
        tracks = rows_in(self.track_ids, history["track_id"].astype(str))
        known = (users >= 0) & (tracks >= 0)
        stride = max(self.n_tracks, 1)
        added = users[known].astype(np.int64) * stride + tracks[known]
        # seen_keys is sorted and unique: insert only the new keys (np.unique over millions of keys takes
        # seconds on numpy 2.4's hash path, REFERENCE section 10)
        added = sorted_unique(added)
        if len(self.seen_keys):
            at = np.minimum(np.searchsorted(self.seen_keys, added), len(self.seen_keys) - 1)
            added = added[self.seen_keys[at] != added]
        keys = np.insert(self.seen_keys, np.searchsorted(self.seen_keys, added), added)
        counts = np.bincount(keys // stride, minlength=len(self.user_ids)).astype(np.int64)
        return SeenTracks(self.user_ids, self.track_ids, keys, counts)

    def among(self, track_ids: np.ndarray) -> SeenTracks:
        """The same users over another catalogue ``track_ids`` (m,) distinct str (a slice's candidates):
        the seen pairs of tracks in both catalogues are kept; a track new to this catalogue is seen by nobody."""
        track_ids = np.asarray(track_ids, dtype=object)
        stride, new_stride = max(self.n_tracks, 1), max(len(track_ids), 1)
        to_new = rows_in(track_ids, self.track_ids.astype(str))  # old catalogue row -> new row, or -1
        if len(self.seen_keys) and (to_new >= 0).any():
            users, rows = np.divmod(self.seen_keys, stride)
            moved = to_new[rows]
            keys = sorted_unique(users[moved >= 0] * new_stride + moved[moved >= 0])
        else:
            keys = np.zeros(0, np.int64)
        counts = np.bincount(keys // new_stride, minlength=len(self.user_ids)).astype(np.int64)
        return SeenTracks(self.user_ids, track_ids, keys, counts)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (ids as fixed-width str) for :func:`numpy.savez`; inverse of :meth:`from_arrays`."""
        return {
            "seen_user_ids": self.user_ids.astype(str),
            "seen_track_ids": self.track_ids.astype(str),
            "seen_keys": self.seen_keys,
            "seen_counts": self.seen_counts,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> SeenTracks:
        return cls(
            np.asarray(arrays["seen_user_ids"], dtype=object),
            np.asarray(arrays["seen_track_ids"], dtype=object),
            np.asarray(arrays["seen_keys"], dtype=np.int64),
            np.asarray(arrays["seen_counts"], dtype=np.int64),
        )


    def user_rows(self, users: Sequence[str]) -> np.ndarray:
        """Rows of ``users`` (n,) int64; a user not in the train events raises :class:`DataError`."""
        users = np.asarray(users, dtype=object)
        rows = rows_in(self.user_ids, users.astype(str))
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


def sorted_unique(keys: np.ndarray) -> np.ndarray:
    """``np.unique(keys)`` for int64 keys by sort and mask: several times faster on millions (REFERENCE §10)."""
    keys = np.sort(np.asarray(keys, dtype=np.int64))
    if len(keys) == 0:
        return keys
    keep = np.empty(len(keys), dtype=bool)
    keep[0] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def unique_pairs(rows: np.ndarray, columns: np.ndarray, n_rows: int, n_columns: int) -> Any:
    """The distinct (row, column) pairs of codes (n,) each, as a scipy CSR (n_rows, n_columns) of ``True``
    with sorted column indices: one bucket pass by row and a small sort per row, several times faster than
    sorting n int64 keys. ``np.diff(indptr)`` counts each row's distinct columns."""
    from scipy import sparse

    pairs = sparse.csr_matrix((np.ones(len(rows), dtype=bool), (rows, columns)), shape=(n_rows, n_columns))
    pairs.sum_duplicates()  # bool sums stay True: no pair is dropped as a zero
    return pairs


def unique_keys(rows: np.ndarray, columns: np.ndarray, n_rows: int, n_columns: int) -> np.ndarray:
    """``sorted_unique(rows * n_columns + columns)`` (int64 codes, ``columns < n_columns``) by :func:`unique_pairs`."""
    pairs = unique_pairs(rows, columns, n_rows, max(n_columns, 1))
    starts = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(pairs.indptr))
    return starts * max(n_columns, 1) + pairs.indices


def sorted_codes(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(values, sort=True)`` as (codes (n,) int64, uniques (m,) object, sorted), faster.

    Factorising millions of strings without sorting, then sorting the few distinct values and
    renumbering, gives the same codes in about half the time. Missing values get code -1.
    """
    codes, uniques = pd.factorize(values)
    uniques = np.asarray(uniques, dtype=object)
    order = np.argsort(uniques, kind="stable")
    rank = np.empty(len(order) + 1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    rank[-1] = -1  # code -1 (missing) stays -1
    return rank[codes], uniques[order]


def rows_in(ids: np.ndarray, values: pd.Series | np.ndarray) -> np.ndarray:
    """Position of each of ``values`` (n,) in ``ids`` (m,) distinct strings: (n,) int64, -1 where absent.

    ``pd.Index(ids).get_indexer(values)`` hashes every one of the n values as a Python string;
    factorising them first (Arrow strings stay in Arrow) and looking up only the distinct ones is
    several times faster on millions of events, with the same result.
    """
    codes, uniques = pd.factorize(values)
    found = np.append(pd.Index(np.asarray(ids, dtype=object)).get_indexer(np.asarray(uniques, dtype=object)), -1)
    return found[codes].astype(np.int64)


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
    check_events(train, "train")
    if len(train) == 0:
        raise DataError("train events hold no rows; there is nothing to fit")


def check_events(events: pd.DataFrame, what: str) -> None:
    """``what`` events (train, validation, history) must be a frame with ``user_id`` and ``track_id``."""
    if not isinstance(events, pd.DataFrame):
        raise DataError(f"{what} events must be a pandas DataFrame, got {type(events).__name__}")
    missing = [c for c in ("user_id", "track_id") if c not in events.columns]
    if missing:
        found = ", ".join(map(str, events.columns)) or "none"
        raise DataError(f"{what} events have no column {missing[0]!r}; found: {found}")


def top_k_unseen(
    scores: np.ndarray, user_rows: np.ndarray, seen: SeenTracks, k: int, *, exclude_seen: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Best-first top ``k`` of a dense score block, the users' seen tracks removed.

    ``scores`` (b, n_tracks) float, one row per entry of ``user_rows`` (b,), over ``seen``'s
    catalogue; equal scores are ordered by catalogue row. Returns ``ids`` (b, k) object and ``scores``
    (b, k) float32, padded as :func:`first_k_kept` pads.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    keep = np.isfinite(scores)
    if exclude_seen:
        keep &= ~seen.seen_mask(user_rows)
    scores[~keep] = -np.inf
    width = min(k, scores.shape[1])
    if width < scores.shape[1]:
        part = np.argpartition(-scores, width - 1, axis=1)[:, :width]
    else:
        part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)  # best first; equal scores by catalogue row
    rows, best = np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)
    return first_k_kept(rows, best, np.isfinite(best), k, seen.track_ids)


def check_k(k: int) -> int:
    """``k`` must be a positive integer."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise SonicError(f"k must be a positive integer, got {k!r}")
    return int(k)
