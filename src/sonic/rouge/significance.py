"""Paired significance between two runs scored on the same users, and Holm's correction.

Two runs are compared user by user: for a metric (say NDCG@10) each run gives one value per
user, and the test asks whether the per-user differences are centred on zero. Both tests of the
literature are given: the paired t-test (mean difference) and the Wilcoxon signed-rank test
(ranks of the differences, robust to the heavy tails of per-user metrics). When a family of
comparisons is made (several metrics, cut-offs or model pairs), :func:`holm` adjusts the
p-values so the family-wise error rate stays at the chosen level.

**The user is the unit of analysis.** When a study's seeds redraw its val/test users from one pool,
a user can be evaluated under several seeds against the same ground truth; counting each (seed,
user) as its own pair would count that user several times and shrink every p-value.
:func:`paired_tests_over_seeds` matches two configurations' values on (seed, user), averages each
user's matched values over their seeds (:func:`user_means`) and tests those means: each user once.
:func:`bootstrap_intervals` gives intervals over users the same way (a percentile bootstrap, which
keeps the interval of a metric bounded in [0, 1] inside [0, 1] by construction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from sonic.errors import DataError


@dataclass(frozen=True)
class PairedTest:
    """The paired tests on the users both runs have (values finite in both).

    ``mean_diff`` = mean(a - b). ``t_statistic``/``t_p``: ``scipy.stats.ttest_rel(a, b)``
    (two-sided). ``wilcoxon_statistic``/``wilcoxon_p``: ``scipy.stats.wilcoxon(a, b)``
    (two-sided, zero differences dropped as Wilcoxon proposed, no continuity correction; the
    exact distribution for small samples without ties, the normal approximation otherwise).
    When every difference is zero both statistics are 0 and both p-values 1; with fewer than two
    users the t-test is undefined (NaN).
    """

    n_users: int
    mean_a: float
    mean_b: float
    mean_diff: float
    t_statistic: float
    t_p: float
    wilcoxon_statistic: float
    wilcoxon_p: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_tests(a: pd.Series, b: pd.Series) -> PairedTest:
    """Paired t-test and Wilcoxon signed-rank test of per-user values ``a`` against ``b``.

    ``a`` and ``b`` are float Series indexed by ``user_id``; they are joined on the users both
    have, and a user whose value is NaN in either is left out. No shared user is a
    :class:`DataError` (a paired test needs the same users in both runs).
    """
    from scipy import stats

    a, b = _as_series(a, "a"), _as_series(b, "b")
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    if joined.empty:
        raise DataError(
            f"the two sets of per-user values share no user ({len(a)} and {len(b)} users); "
            "a paired test needs the same users evaluated in both runs"
        )
    values_a = joined["a"].to_numpy(np.float64)
    values_b = joined["b"].to_numpy(np.float64)
    diff = values_a - values_b
    n = len(diff)
    t_statistic, t_p = _paired_t(diff, stats)
    if not diff.any():
        w_statistic, w_p = 0.0, 1.0
    else:
        result = stats.wilcoxon(values_a, values_b, zero_method="wilcox", correction=False, method="auto")
        w_statistic, w_p = float(result.statistic), float(result.pvalue)
    return PairedTest(
        n_users=n,
        mean_a=float(values_a.mean()),
        mean_b=float(values_b.mean()),
        mean_diff=float(diff.mean()),
        t_statistic=t_statistic,
        t_p=t_p,
        wilcoxon_statistic=w_statistic,
        wilcoxon_p=w_p,
    )


def user_means(values: pd.DataFrame) -> pd.Series:
    """One value per user: the mean of each user's rows (one row per seed that evaluated the user).

    ``values`` has the columns ``user_id`` and ``value`` (any others, such as ``seed``, are ignored);
    rows whose value is NaN are left out. Returns a float64 Series indexed by ``user_id`` (as
    strings), sorted by user id.
    """
    frame = values.loc[:, ["user_id", "value"]].dropna(subset=["value"])
    frame = frame.assign(user_id=frame["user_id"].astype(str), value=frame["value"].astype(np.float64))
    return frame.groupby("user_id", sort=True)["value"].mean()


def paired_tests_over_seeds(a: pd.DataFrame, b: pd.DataFrame) -> PairedTest:
    """:func:`paired_tests` of two configurations evaluated under one or more seeds, each user counted once.

    ``a`` and ``b`` have the columns ``seed``, ``user_id`` and ``value``, one row per (seed, user)
    each. Rows are matched on the (seed, user) pairs both hold with finite values; each user's
    matched values are averaged over their seeds (:func:`user_means`), and the paired tests run on
    those per-user means, so ``n_users`` counts distinct users. A user evaluated under seed 1 in
    ``a`` but only under seed 2 in ``b`` is not matched (their rankings came from different
    training data). No shared (seed, user) is a :class:`DataError`.
    """
    for frame, name in ((a, "a"), (b, "b")):
        missing = {"seed", "user_id", "value"} - set(frame.columns)
        if missing:
            raise DataError(f"per-user values {name} need the columns seed, user_id and value; missing {sorted(missing)}")
    keys = ["seed", "user_id"]
    left = a.loc[:, [*keys, "value"]].assign(user_id=lambda f: f["user_id"].astype(str)).dropna(subset=["value"])
    right = b.loc[:, [*keys, "value"]].assign(user_id=lambda f: f["user_id"].astype(str)).dropna(subset=["value"])
    for frame, name in ((left, "a"), (right, "b")):
        if frame.duplicated(keys).any():
            seed, user = frame.loc[frame.duplicated(keys), keys].iloc[0]
            raise DataError(f"per-user values {name} list user '{user}' twice under seed {seed}; one value per "
                            "seed and user is needed")
    matched = left.merge(right, on=keys, suffixes=("_a", "_b"))
    if matched.empty:
        raise DataError(
            f"the two sets of per-user values share no (seed, user) ({len(left)} and {len(right)} rows); "
            "a paired test needs the same users evaluated under the same seeds in both"
        )
    means_a = user_means(matched.rename(columns={"value_a": "value"}))
    means_b = user_means(matched.rename(columns={"value_b": "value"}))
    return paired_tests(means_a, means_b)


def bootstrap_intervals(
    values: np.ndarray, *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap intervals of column means, resampling users (rows).

    ``values`` (n_users, n_columns) float: one row per user (already averaged over seeds, see
    :func:`user_means`), one column per configuration; NaN where a user has no value in a column
    (left out of that column's means). Each of ``resamples`` draws takes n_users rows with
    replacement (the same draw for every column) and computes each column's mean; the interval is
    the ((1 - confidence) / 2, (1 + confidence) / 2) quantiles of those means (the percentile
    method, Efron & Tibshirani 1993, ch. 13). A resampled mean lies between the smallest and the
    largest value, so a metric bounded in [0, 1] keeps its interval inside [0, 1]. The draws come
    from ``numpy.random.default_rng(seed)``: the same input gives the same interval. Returns
    (low, high), each (n_columns,) float64; NaN for a column with no value.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must be (n_users, n_columns), got shape {values.shape}")
    n_users, n_columns = values.shape
    low, high = np.full(n_columns, np.nan), np.full(n_columns, np.nan)
    if n_users == 0 or n_columns == 0:
        return low, high
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_users, np.full(n_users, 1.0 / n_users), size=resamples).astype(np.float64)
    sums = counts @ filled  # (resamples, n_columns)
    sizes = counts @ present.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / sizes  # NaN where a draw holds no user with a value
    tail = (1.0 - confidence) / 2.0
    has_value = present.any(axis=0)
    if has_value.any():
        kept = means[:, has_value]
        with np.errstate(invalid="ignore"):
            low[has_value] = np.nanquantile(kept, tail, axis=0)
            high[has_value] = np.nanquantile(kept, 1.0 - tail, axis=0)
    return low, high


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values, in the order given.

    With the m finite p-values sorted ascending, p_(1) <= ... <= p_(m):
    adjusted_(i) = min(1, max_{j <= i} (m - j + 1) * p_(j)). NaN entries stay NaN and do not
    count in m. ``p_values`` (m,) -> (m,) float64.
    """
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    if ((p < 0) | (p > 1)).any():
        raise ValueError(f"p-values must lie in [0, 1], got {p[(p < 0) | (p > 1)][0]}")
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    m = len(finite)
    if m == 0:
        return adjusted
    order = finite[np.argsort(p[finite], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def _paired_t(diff: np.ndarray, stats: Any) -> tuple[float, float]:
    """(t, two-sided p) of the differences; the degenerate cases without scipy's warnings."""
    if len(diff) < 2:
        return float("nan"), float("nan")
    if np.all(diff == diff[0]):  # no spread: t is 0 (no difference) or infinite (a sure one)
        return (0.0, 1.0) if diff[0] == 0 else (float(np.sign(diff[0]) * np.inf), 0.0)
    result = stats.ttest_1samp(diff, 0.0)
    return float(result.statistic), float(result.pvalue)


def _as_series(values: pd.Series, name: str) -> pd.Series:
    if not isinstance(values, pd.Series):
        kind = type(values).__name__
        raise DataError(f"per-user values {name} must be a pandas Series indexed by user_id, got {kind}")
    if values.index.has_duplicates:
        user = values.index[values.index.duplicated()][0]
        raise DataError(f"per-user values {name} list user '{user}' twice; one value per user is needed")
    values = values.astype(np.float64)
    values.index = values.index.astype(str)
    return values
