"""Score recommendation lists against ground truth: per-user metrics, means and t-intervals.

The recommendations frame has ``user_id``, ``track_id`` and either ``rank`` (1 = best) or
``score`` (higher = better); with both, ``rank`` decides. Ties (equal rank or score) are broken
by ``track_id`` so the order is deterministic. The ground-truth frame has ``user_id`` and
``track_id``; other columns are ignored and a track listed twice for a user counts twice in
recall, as in ``rs_metrics``. Users are those of the ground truth; a user without
recommendations scores 0 on every metric (``rs_metrics`` gives NaN precision there).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sonic.errors import DataError, SonicError
from sonic.rouge import metrics


@dataclass(frozen=True)
class MetricsReport:
    """Per-user metric values for every k.

    ``user_ids`` (n_users,) str, sorted; ``values`` maps a flat key such as ``"NDCG@10"`` to
    (n_users,) float64 in the order of ``user_ids``; ``ks`` the cut-offs, ascending.
    """

    user_ids: np.ndarray
    ks: tuple[int, ...]
    values: Mapping[str, np.ndarray]

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def means(self) -> dict[str, float]:
        """Flat means: ``{"HitRate@10": ..., "Precision@10": ..., ..., "NDCG@50": ...}``."""
        return {key: float(np.mean(column)) for key, column in self.values.items()}

    def table(self) -> pd.DataFrame:
        """One row per (metric, k): columns metric, k, mean, ci_low, ci_high (95% t), n_users."""
        rows = []
        for name in metrics.METRIC_NAMES:
            for k in self.ks:
                column = self.values[f"{name}@{k}"]
                mean, low, high = metrics.metric_interval(name, column)
                rows.append((name, k, mean, low, high, self.n_users))
        return pd.DataFrame(rows, columns=["metric", "k", "mean", "ci_low", "ci_high", "n_users"])

    def per_user(self) -> pd.DataFrame:
        """The per-user values as a frame: ``user_id`` then one column per flat key."""
        return pd.DataFrame({"user_id": self.user_ids, **self.values})


def evaluate(
    recommendations: pd.DataFrame,
    ground_truth: pd.DataFrame,
    ks: Iterable[int] = (10,),
    *,
    recommendations_source: str = "recommendations",
    truth_source: str = "ground truth",
) -> MetricsReport:
    """HitRate, Precision, Recall, MRR and NDCG at every k in ``ks`` for every ground-truth user.

    The ``*_source`` names (a file path, say) appear in the :class:`DataError` raised for a
    missing column, an empty ground truth, a missing id, a non-numeric or missing rank/score,
    or a (user_id, track_id) pair recommended twice.
    """
    ks = check_ks(ks)
    order_column = _check_recommendations(recommendations, recommendations_source)
    _check_truth(ground_truth, truth_source)
    arrays = hit_arrays(recommendations, ground_truth, order_column, width=max(ks), source=recommendations_source)
    scorers = {
        "HitRate": lambda k: metrics.hit_rate(arrays.hits, k=k),
        "Precision": lambda k: metrics.precision(arrays.hits, arrays.list_lengths, k=k),
        "Recall": lambda k: metrics.recall(arrays.hit_rows, arrays.n_relevant_rows, k=k),
        "MRR": lambda k: metrics.mrr(arrays.hits, k=k),
        "NDCG": lambda k: metrics.ndcg(arrays.hits, arrays.n_relevant_unique, k=k),
    }
    values = {f"{name}@{k}": score(k) for name, score in scorers.items() for k in ks}
    return MetricsReport(user_ids=arrays.user_ids, ks=ks, values=values)


def write_means(report: MetricsReport, output: str | os.PathLike) -> Path:
    """Write ``report.means()`` as JSON to ``output`` atomically; an existing file that is not such a
    file of sonic's (a JSON object of ``Metric@k`` numbers) is refused, never written over."""
    from sonic.files import output_file, write_json

    with output_file(output, "metrics file", recognise=_is_means_file) as path:
        return write_json(path, report.means())


def _is_means_file(path: Path) -> bool:
    import json

    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(payload, dict) and all("@" in str(key) and isinstance(value, (int, float))
                                             for key, value in payload.items())  # fmt: skip


def evaluate_files(
    recommendations_path: str | os.PathLike, truth_path: str | os.PathLike, ks: Iterable[int] = (10,)
) -> MetricsReport:
    """:func:`evaluate` on two files (csv, tsv or Parquet); errors name the file."""
    ks = check_ks(ks)  # before reading anything
    return evaluate(
        load_recommendations(recommendations_path),
        load_ground_truth(truth_path),
        ks,
        recommendations_source=f"recommendations file '{recommendations_path}'",
        truth_source=f"ground-truth file '{truth_path}'",
    )


def load_recommendations(path: str | os.PathLike) -> pd.DataFrame:
    """Read a recommendations file (csv, tsv or Parquet) with ``user_id``/``track_id`` as strings."""
    return _read_frame(Path(path), "recommendations")


def load_ground_truth(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ground-truth file (csv, tsv or Parquet, e.g. a split's test.parquet), ids as strings."""
    return _read_frame(Path(path), "ground-truth")


def _read_frame(path: Path, what: str) -> pd.DataFrame:
    from sonic.cream.data import read_table

    return read_table(path, what=what)


def check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    """The cut-offs as a sorted tuple of distinct positive ints; anything else is a :class:`SonicError`."""
    ks = tuple(ks)
    bad = [k for k in ks if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1]
    if not ks or bad:
        raise SonicError(f"k must be one or more positive integers, got {list(ks)}")
    return tuple(sorted({int(k) for k in ks}))


def _check_recommendations(frame: pd.DataFrame, source: str) -> str:
    _require_columns(frame, ("user_id", "track_id"), source, "and rank or score")
    order_column = "rank" if "rank" in frame.columns else "score" if "score" in frame.columns else None
    if order_column is None:
        found = ", ".join(map(str, frame.columns))
        raise DataError(f"{source} has neither a 'rank' nor a 'score' column; found: {found}")
    column = frame[order_column]
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        raise DataError(f"{source} has a non-numeric '{order_column}' column (dtype {column.dtype})")
    unusable = ~np.isfinite(column.to_numpy(dtype=np.float64, na_value=np.nan))
    if unusable.any():
        raise DataError(f"{source} has {int(unusable.sum())} rows whose '{order_column}' is missing or infinite")
    _require_ids(frame, source)
    return order_column


def _check_truth(frame: pd.DataFrame, source: str) -> None:
    _require_columns(frame, ("user_id", "track_id"), source)
    if len(frame) == 0:
        raise DataError(f"{source} holds no rows; there is nothing to evaluate against")
    _require_ids(frame, source)


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], source: str, extra: str = "") -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns)) or "none"
        need = ", ".join(columns) + (f" {extra}" if extra else "")
        raise DataError(f"{source} has no column {missing[0]!r}; found: {found}; need {need}")


def _require_ids(frame: pd.DataFrame, source: str) -> None:
    for column in ("user_id", "track_id"):
        if frame[column].isna().any():
            raise DataError(f"{source} has {int(frame[column].isna().sum())} rows without a {column}")


def _ids_as_str(column: pd.Series) -> pd.Series:
    """Ids as strings; whole floats (``12.0``, from a csv column with gaps) become ``"12"``."""
    if pd.api.types.is_string_dtype(column) and not pd.api.types.is_object_dtype(column):
        return column
    if pd.api.types.is_float_dtype(column) and column.notna().all() and (column % 1 == 0).all():
        column = column.astype(np.int64)
    return column.astype("str")


@dataclass(frozen=True)
class HitArrays:
    """The inputs of :mod:`sonic.rouge.metrics`, one row per ground-truth user (sorted ids).

    ``hits`` (n_users, width) bool and ``hit_rows`` (n_users, width) int64 follow each user's
    list in rank order; ``list_lengths``, ``n_relevant_unique``, ``n_relevant_rows`` are (n_users,).
    """

    user_ids: np.ndarray
    hits: np.ndarray
    hit_rows: np.ndarray
    list_lengths: np.ndarray
    n_relevant_unique: np.ndarray
    n_relevant_rows: np.ndarray


def hit_arrays(
    recommendations: pd.DataFrame, truth: pd.DataFrame, order_column: str, *, width: int, source: str
) -> HitArrays:
    """Per-user arrays from validated frames, vectorised (factorised ids and int64 pair keys).

    A pair key is ``user_code * n_tracks + track_code``; track codes come from one sorted
    vocabulary of both frames, so ordering by code is ordering by track_id (the tie-break).
    """
    truth_user_codes, user_ids = pd.factorize(_ids_as_str(truth["user_id"]), sort=True)
    n_users, n_truth = len(user_ids), len(truth)
    track_ids = pd.concat([_ids_as_str(truth["track_id"]), _ids_as_str(recommendations["track_id"])])
    track_codes, track_vocabulary = pd.factorize(track_ids, sort=True)
    n_tracks = len(track_vocabulary)
    truth_keys = truth_user_codes.astype(np.int64) * n_tracks + track_codes[:n_truth]
    relevant_keys, multiplicity = np.unique(truth_keys, return_counts=True)  # sorted (pair,), rows per pair

    rec_user_codes, rec_users = pd.factorize(_ids_as_str(recommendations["user_id"]))
    rec_tracks = track_codes[n_truth:].astype(np.int64)
    _reject_repeats(rec_user_codes.astype(np.int64) * n_tracks + rec_tracks, recommendations, source)
    rec_user = pd.Index(user_ids).get_indexer(rec_users)[rec_user_codes].astype(np.int64)  # -1: not in truth
    known = rec_user >= 0
    rec_user, rec_tracks = rec_user[known], rec_tracks[known]
    order_values = recommendations[order_column].to_numpy(dtype=np.float64, na_value=np.nan)[known]
    if order_column == "score":
        order_values = -order_values  # higher score = earlier
    order = _list_order(rec_user, order_values, rec_tracks, n_users, n_tracks)
    rec_user, rec_tracks = rec_user[order], rec_tracks[order]
    positions = _positions_within_groups(rec_user)
    shown = positions < width
    rec_user, rec_tracks, positions = rec_user[shown], rec_tracks[shown], positions[shown]

    rec_keys = rec_user * n_tracks + rec_tracks
    found_at = np.minimum(np.searchsorted(relevant_keys, rec_keys), len(relevant_keys) - 1)
    hit_rows = np.zeros((n_users, width), dtype=np.int64)
    hit_rows[rec_user, positions] = np.where(relevant_keys[found_at] == rec_keys, multiplicity[found_at], 0)
    return HitArrays(
        user_ids=np.asarray(user_ids, dtype=object),
        hits=hit_rows > 0,
        hit_rows=hit_rows,
        list_lengths=np.bincount(rec_user, minlength=n_users),
        n_relevant_unique=np.bincount(relevant_keys // n_tracks, minlength=n_users),
        n_relevant_rows=np.bincount(truth_user_codes, minlength=n_users),
    )


def _reject_repeats(keys: np.ndarray, recommendations: pd.DataFrame, source: str) -> None:
    repeated = pd.Index(keys).duplicated()
    if repeated.any():
        row = recommendations.iloc[int(np.argmax(repeated))]
        raise DataError(
            f"{source} lists track '{row['track_id']}' twice for user '{row['user_id']}'; "
            "each (user_id, track_id) pair may appear once"
        )


def _list_order(users: np.ndarray, values: np.ndarray, tracks: np.ndarray, n_users: int, n_tracks: int) -> np.ndarray:
    """Row order by user, then value (ascending), then track code: what ``np.lexsort`` gives.

    Sorting one int64 key ``(user, dense level of value, track)`` is several times faster than
    ``lexsort`` over three arrays; the key is unique because (user, track) pairs are.
    """
    levels, n_levels = _dense_levels(values)
    if n_users * n_levels * n_tracks >= 2**63:  # Python ints: the key would overflow int64
        return np.lexsort((tracks, levels, users))
    return np.argsort((users * n_levels + levels) * n_tracks + tracks)


def _dense_levels(values: np.ndarray) -> tuple[np.ndarray, int]:
    """(levels, n_levels): int64 codes ordered like ``values``; small whole numbers (ranks) map directly."""
    if len(values) == 0:
        return np.zeros(0, np.int64), 1
    low, high = values.min(), values.max()
    if high - low <= 4 * len(values) and (values % 1 == 0).all():
        return (values - low).astype(np.int64), int(high - low) + 1
    order = np.argsort(values)
    levels = np.empty(len(values), np.int64)
    levels[order] = np.concatenate([[0], np.cumsum(np.diff(values[order]) != 0)])
    return levels, int(levels[order[-1]]) + 1


def _positions_within_groups(sorted_groups: np.ndarray) -> np.ndarray:
    """0-based position of each element within its run of equal values: [7, 7, 9] -> [0, 1, 0]."""
    n = len(sorted_groups)
    starts = np.ones(n, dtype=bool)
    starts[1:] = sorted_groups[1:] != sorted_groups[:-1]
    index = np.arange(n)
    return index - np.maximum.accumulate(np.where(starts, index, 0))
