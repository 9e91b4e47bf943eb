"""Score one run's recommendation lists on every evaluated slice: per-user values and aggregates.

A *slice* is one evaluated split file (``val``, ``test`` = tamm2025's hot test, ``cold_test``...).
For each slice, the users of its ground truth are scored on the accuracy metrics of
:mod:`sonic.rouge.metrics` and the beyond-accuracy metrics of :mod:`sonic.rouge.beyond`, at every
k. Per-user values form the long frame of ``per_user.parquet`` (user_id, metric, k, value, slice);
aggregates (mean with a 95% t-interval over users, cut at 0 and 1 for the accuracy metrics) the frame of ``metrics.json``. Across seeds,
:func:`over_seeds` gives the mean of the per-seed means with a t-interval over seeds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sonic.parallel import available_cpus
from sonic.rouge import beyond as beyond_metrics, metrics
from sonic.rouge.shared import unique_pairs
from sonic.rouge.evaluate import MetricsReport, check_ks, evaluate
from sonic.tails.table import EmbeddingTable

PER_USER_COLUMNS = ("user_id", "metric", "k", "value", "slice")
AGGREGATE_COLUMNS = ("metric", "k", "slice", "mean", "ci_low", "ci_high", "n_users")
OVER_SEEDS_COLUMNS = ("metric", "k", "slice", "mean", "ci_low", "ci_high", "n_seeds", "n_users")


@dataclass(frozen=True)
class Catalogue:
    """The tracks of a split and their train popularity, for the beyond-accuracy metrics.

    ``track_ids`` (n,) str sorted: every track of the split (train and every evaluated part), the
    denominator of coverage. ``popularity`` (n,) int64: distinct train users per track.
    ``is_tail`` (n,) bool: :func:`sonic.rouge.beyond.tail_mask` of the popularity.
    """

    track_ids: np.ndarray
    popularity: np.ndarray
    n_train_users: int
    is_tail: np.ndarray
    head_fraction: float

    @classmethod
    def from_split(
        cls,
        train: pd.DataFrame,
        parts: Iterable[pd.DataFrame],
        *,
        head_fraction: float = beyond_metrics.HEAD_FRACTION,
    ) -> Catalogue:
        user_codes, user_ids = pd.factorize(train["user_id"])
        track_codes, train_tracks = pd.factorize(train["track_id"])
        n_train_tracks = len(train_tracks)
        listeners = unique_pairs(track_codes, user_codes, n_train_tracks, len(user_ids))  # (track, user) pairs
        train_popularity = np.diff(listeners.indptr).astype(np.int64)
        others = [np.asarray(p["track_id"].astype(str).unique(), dtype=object) for p in parts]
        train_tracks = np.asarray(train_tracks.astype(str), dtype=object)
        track_ids = np.unique(np.concatenate([train_tracks, *others]))
        popularity = np.zeros(len(track_ids), dtype=np.int64)
        popularity[np.searchsorted(track_ids, train_tracks)] = train_popularity
        tail = beyond_metrics.tail_mask(popularity, head_fraction=head_fraction)
        return cls(track_ids.astype(object), popularity, len(user_ids), tail, head_fraction)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Catalogue rows of ``ids`` (n, k) object: -1 for padding (None), n for a track outside the split."""
        flat = ids.ravel()
        present = pd.notna(flat)
        rows = np.full(len(flat), -1, dtype=np.int64)
        found = pd.Index(self.track_ids).get_indexer(flat[present].astype(str))
        rows[present] = np.where(found >= 0, found, len(self.track_ids))
        return rows.reshape(ids.shape)


@dataclass(frozen=True)
class Scores:
    """``per_user`` (columns :data:`PER_USER_COLUMNS`), ``aggregates`` (:data:`AGGREGATE_COLUMNS`)
    and the accuracy :class:`MetricsReport` of each slice."""

    per_user: pd.DataFrame
    aggregates: pd.DataFrame
    reports: Mapping[str, MetricsReport]


def long_frame(users: np.ndarray, ids: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """(n, k) id and score arrays -> one row per recommended track (user_id, track_id, rank, score), padding dropped."""
    n, k = ids.shape
    present = pd.notna(ids).ravel()
    return pd.DataFrame(
        {
            "user_id": np.repeat(np.asarray(users, dtype=object), k)[present],
            "track_id": ids.ravel()[present],
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), n)[present],
            "score": scores.ravel()[present],
        }
    ).astype({"user_id": "str", "track_id": "str"})


def score_lists(
    users: np.ndarray,
    ids: np.ndarray,
    scores: np.ndarray,
    truths: Mapping[str, pd.DataFrame],
    ks: Sequence[int],
    catalogue: Catalogue | None,
    *,
    diversity: EmbeddingTable | None = None,
    beyond: bool = True,
    recommendations: pd.DataFrame | None = None,
) -> Scores:
    """Score the lists ``ids`` (n, max(ks)) of ``users`` (n,) on every slice of ``truths``.

    Every user of every truth must be in ``users``. ILD is computed in ``diversity``'s space when
    given (tracks without a vector there are left out of their list's pairs). ``beyond=False``: the
    accuracy metrics only (``catalogue`` may then be None). ``recommendations``: :func:`long_frame`
    of the lists, when the caller has made it already.
    """
    if recommendations is None:
        recommendations = long_frame(users, ids, scores)
    user_index = pd.Index(np.asarray(users, dtype=object).astype(str))
    per_user, aggregates, reports = [], [], {}
    with ThreadPoolExecutor(1) as side:
        # every user's beyond-accuracy values (they depend on the list alone) on a second thread, while the
        # accuracy metrics are scored here; numpy releases the GIL
        pending = side.submit(_beyond_values, ids, check_ks(ks), catalogue, diversity) if beyond else None
        for slice_name, truth in truths.items():
            report = evaluate(recommendations, truth, ks, truth_source=f"{slice_name} events")
            reports[slice_name] = report
            values = dict(report.values)
            if pending is not None:
                rows, every_user = pending.result()
                positions = user_index.get_indexer(report.user_ids)
                rows = rows[positions]
                values.update({key: column[positions] for key, column in every_user.items()})
            for key, column in values.items():
                name, k = key.rsplit("@", 1)
                per_user.append(pd.DataFrame({"user_id": report.user_ids, "metric": name, "k": int(k),
                                              "value": column, "slice": slice_name}))
                defined = column[~np.isnan(column)]
                mean, low, high = metrics.metric_interval(name, defined)
                aggregates.append((name, int(k), slice_name, mean, low, high, len(defined)))
            for k in report.ks if beyond else ():
                value = beyond_metrics.coverage(rows, len(catalogue.track_ids), k=k)
                aggregates.append(("Coverage", k, slice_name, value, np.nan, np.nan, report.n_users))
    per_user_frame = pd.concat(per_user, ignore_index=True).loc[:, list(PER_USER_COLUMNS)]
    per_user_frame = per_user_frame.astype({"user_id": "str", "metric": "str", "slice": "str", "k": "int64"})
    aggregate_frame = pd.DataFrame(aggregates, columns=list(AGGREGATE_COLUMNS))
    return Scores(per_user=per_user_frame, aggregates=aggregate_frame, reports=reports)


def _list_codes(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes (n, width) int64 into ``uniques``, -1 for padding; uniques (m,) object): the listed tracks, once.

    Every per-track lookup (catalogue row, vector) is then made for the m distinct tracks only.
    """
    codes, uniques = pd.factorize(ids.ravel())  # None (padding) -> -1
    return codes.astype(np.int64).reshape(ids.shape), np.asarray(uniques, dtype=object)


def _rows_of_codes(codes: np.ndarray, unique_rows: np.ndarray) -> np.ndarray:
    """``unique_rows[codes]`` with -1 where ``codes`` is -1 (padding). (n, width) -> (n, width) int64."""
    return np.append(np.asarray(unique_rows, dtype=np.int64), -1)[codes]  # code -1 picks the appended -1


def _beyond_values(
    ids: np.ndarray, ks: Sequence[int], catalogue: Catalogue, diversity: EmbeddingTable | None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(catalogue rows (n, width) of the lists, per-user Novelty, ARP, LongTailShare (and ILD) at every
    k: ``{"Novelty@10": (n,), ...}``) for the lists ``ids`` (n, width).

    The listed tracks are coded once (:func:`_list_codes`): catalogue rows and vectors are looked up
    for the distinct tracks only.
    """
    codes, list_ids = _list_codes(ids)
    rows = _rows_of_codes(codes, catalogue.rows(list_ids))
    popularity = np.append(catalogue.popularity, 0)  # the last row: a track outside the split
    is_tail = np.append(catalogue.is_tail, True)
    values = {}
    for k in ks:
        values[f"Novelty@{k}"] = beyond_metrics.novelty(rows, popularity, catalogue.n_train_users, k=k)
        values[f"ARP@{k}"] = beyond_metrics.average_popularity(rows, popularity, k=k)
        values[f"LongTailShare@{k}"] = beyond_metrics.long_tail_share(rows, is_tail, k=k)
    if diversity is not None:
        with_pairs = [k for k in ks if k >= 2]  # one track has no pair
        for k, column in _ild(codes, list_ids, with_pairs, diversity).items():
            values[f"ILD@{k}"] = column
    return rows, values


def _ild(codes: np.ndarray, list_ids: np.ndarray, ks: Sequence[int], table: EmbeddingTable) -> dict[int, np.ndarray]:
    """ILD at every k, from the unit vectors of the listed tracks in ``table`` (tracks without one: left out).

    Only the distinct listed tracks are looked up; vectors are scaled to unit length (float32, as the
    table) as they are gathered, list by list.
    """
    if not ks:
        return {}
    table_rows, found = table.lookup(list_ids.astype(str))
    rows = _rows_of_codes(codes, np.where(found, table_rows, -1))
    threads = min(2, available_cpus())  # two chunks at once take most of the memory bandwidth a gather gets
    return beyond_metrics.intra_list_diversities(rows, table.vectors, ks, threads=threads)


def over_seeds(aggregates: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Per (metric, k, slice): the mean over seeds of each seed's mean, with a 95% t-interval over seeds.

    ``aggregates``: one frame per seed (columns :data:`AGGREGATE_COLUMNS`). ``n_users`` is the
    mean of the seeds' user counts (they agree for one split). Columns :data:`OVER_SEEDS_COLUMNS`.
    """
    stacked = pd.concat(list(aggregates), ignore_index=True)
    rows = []
    for (name, k, slice_name), group in stacked.groupby(["metric", "k", "slice"], sort=False):
        means = group["mean"].to_numpy(np.float64)
        mean, low, high = metrics.metric_interval(name, means[~np.isnan(means)])
        rows.append((name, int(k), slice_name, mean, low, high, len(group), float(group["n_users"].mean())))
    return pd.DataFrame(rows, columns=list(OVER_SEEDS_COLUMNS))
