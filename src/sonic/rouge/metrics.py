"""Ranking metrics as pure, vectorised functions over per-user arrays.

Every function scores all users at once from arrays built by
:func:`sonic.rouge.evaluate.evaluate`, one row per user:

- ``hits`` (n_users, width) bool: position ``i`` (0-based) of the user's list is a relevant track.
- ``list_lengths`` (n_users,) int: how many tracks the user's list holds (may be below ``width``).
- ``n_relevant_unique`` (n_users,) int: distinct relevant tracks of the user.
- ``hit_rows`` (n_users, width) int: how many ground-truth *rows* the track at position ``i``
  matches (0 where it is not relevant; above 1 where the truth lists a track twice).
- ``n_relevant_rows`` (n_users,) int: ground-truth rows of the user, duplicates included.

Each function takes ``k`` (default: ``width``) and scores the first ``k`` positions, so one set of
arrays built at the largest k serves every smaller k. The definitions are those of ``rs_metrics``
0.6.0, the library behind the published tables (REFERENCE section 5); each returns (n_users,)
float64. The one deliberate difference: precision of an empty list is 0, where ``rs_metrics``
gives NaN (the mean of an empty array).
"""

from __future__ import annotations

import numpy as np

METRIC_NAMES = ("HitRate", "Precision", "Recall", "MRR", "NDCG")


def hit_rate(hits: np.ndarray, *, k: int | None = None) -> np.ndarray:
    """HitRate@k = 1 if any of the first k positions is relevant, else 0.

    ``hits`` (n_users, width) bool -> (n_users,) float64.
    """
    hits = _prefix(hits, k)
    return hits.any(axis=1).astype(np.float64)


def precision(hits: np.ndarray, list_lengths: np.ndarray, *, k: int | None = None) -> np.ndarray:
    """Precision@k = (relevant among the first k) / min(list_length, k); 0 for an empty list.

    The denominator is the length of the list as cut to k, not k itself (as ``rs_metrics``).
    ``hits`` (n_users, width) bool, ``list_lengths`` (n_users,) int -> (n_users,) float64.
    """
    hits = _prefix(hits, k)
    shown = np.minimum(np.asarray(list_lengths), hits.shape[1])
    n_hits = hits.sum(axis=1)
    return np.divide(n_hits, shown, out=np.zeros(len(hits), np.float64), where=shown > 0)


def recall(hit_rows: np.ndarray, n_relevant_rows: np.ndarray, *, k: int | None = None) -> np.ndarray:
    """Recall@k = (ground-truth rows whose track is in the first k) / (ground-truth rows).

    Counted over truth *rows*, as ``rs_metrics`` does: a track listed twice in the truth counts
    twice in the numerator when recommended and twice in the denominator. NaN for a user
    without truth rows. ``hit_rows`` (n_users, width) int, ``n_relevant_rows`` (n_users,) int ->
    (n_users,) float64.
    """
    hit_rows = _prefix(hit_rows, k)
    return _divide_or_nan(hit_rows.sum(axis=1), np.asarray(n_relevant_rows))


def mrr(hits: np.ndarray, *, k: int | None = None) -> np.ndarray:
    """MRR@k = 1 / (1 + index of the first relevant position among the first k); 0 if none.

    ``hits`` (n_users, width) bool -> (n_users,) float64.
    """
    hits = _prefix(hits, k)
    first = hits.argmax(axis=1)
    return np.where(hits.any(axis=1), 1.0 / (first + 1.0), 0.0)


def ndcg(hits: np.ndarray, n_relevant_unique: np.ndarray, *, k: int | None = None) -> np.ndarray:
    """NDCG@k = DCG@k / IDCG@k with binary gains.

    DCG@k = sum_{i<k} hits[i] / log2(i + 2) (i from 0); IDCG@k is the DCG of
    min(n_relevant_unique, k) hits at the top. NaN for a user without relevant tracks.
    ``hits`` (n_users, width) bool, ``n_relevant_unique`` (n_users,) int -> (n_users,) float64.
    """
    hits = _prefix(hits, k)
    width = hits.shape[1]
    discounts = 1.0 / np.log2(np.arange(width) + 2.0)  # (width,)
    dcg = hits @ discounts
    ideal_table = np.concatenate([[0.0], np.cumsum(discounts)])  # ideal_table[m] = IDCG of m hits
    idcg = ideal_table[np.minimum(np.asarray(n_relevant_unique), width)]
    return _divide_or_nan(dcg, idcg)


def mean_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its Student-t interval.

    low, high = mean -/+ t((1 + confidence) / 2, n - 1) * std(ddof=1) / sqrt(n). ``values`` (n,)
    float: per-user values of one metric (the interval over users), or one run's mean per seed
    (the interval over seeds, the published way). With fewer than two values the spread is
    unknown and both bounds are NaN (a zero-width interval would claim a certainty one value
    cannot give); with no values the mean is NaN too.
    """
    from scipy.special import stdtrit  # the t quantile; scipy.stats alone takes seconds to import

    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    n = len(values)
    mean = float(values.mean()) if n else float("nan")
    if n < 2:
        return mean, float("nan"), float("nan")
    half_width = stdtrit(n - 1, (1.0 + confidence) / 2.0) * values.std(ddof=1) / np.sqrt(n)
    return mean, float(mean - half_width), float(mean + half_width)


def metric_interval(name: str, values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """:func:`mean_interval` of metric ``name``'s values, its bounds cut at 0 and 1 for the accuracy metrics
    (:data:`METRIC_NAMES`, each in [0, 1]): the mean lies there, so the cut interval covers it as often
    as the uncut one, and no bound claims a value the metric cannot take."""
    mean, low, high = mean_interval(values, confidence)
    if name in METRIC_NAMES and np.isfinite(low):
        low, high = max(low, 0.0), min(high, 1.0)
    return mean, low, high


def confidence_interval(values: np.ndarray, *, level: float = 0.95) -> tuple[float, float]:
    """(low, high) of :func:`mean_interval`."""
    _, low, high = mean_interval(values, level)
    return low, high


def _prefix(array: np.ndarray, k: int | None) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"per-position arrays must be (n_users, width), got shape {array.shape}")
    if k is None:
        return array
    if not 1 <= k <= array.shape[1]:
        raise ValueError(f"k must be between 1 and the array width {array.shape[1]}, got {k}")
    return array[:, :k]


def _divide_or_nan(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.full(len(numerator), np.nan)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)
