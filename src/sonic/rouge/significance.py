"""Paired significance between two runs scored on the same users, and Holm's correction.

Two runs are compared user by user: for a metric (say NDCG@10) each run gives one value per
user, and the test asks whether the per-user differences are centred on zero. Both tests of the
literature are given: the paired t-test (mean difference) and the Wilcoxon signed-rank test
(ranks of the differences, robust to the heavy tails of per-user metrics). When a family of
comparisons is made (several metrics, cut-offs or model pairs), :func:`holm` adjusts the
p-values so the family-wise error rate stays at the chosen level.
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
