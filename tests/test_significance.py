"""Paired tests against scipy on known data; Holm against a hand computation; the mean interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from sonic.errors import DataError
from sonic.rouge.metrics import mean_interval
from sonic.rouge.significance import PairedTest, holm, paired_tests


def _series(values, users):
    return pd.Series(np.asarray(values, dtype=np.float64), index=pd.Index(users, name="user_id"))


def test_paired_tests_match_scipy_on_known_data():
    rng = np.random.default_rng(3)
    users = [f"u{i}" for i in range(80)]
    a = rng.random(80)
    b = a - 0.05 + rng.normal(0, 0.1, 80)
    result = paired_tests(_series(a, users), _series(b, users))
    t = scipy.stats.ttest_rel(a, b)
    w = scipy.stats.wilcoxon(a, b, zero_method="wilcox", correction=False)
    assert isinstance(result, PairedTest)
    assert result.n_users == 80
    np.testing.assert_allclose([result.mean_a, result.mean_b, result.mean_diff], [a.mean(), b.mean(), (a - b).mean()])
    np.testing.assert_allclose([result.t_statistic, result.t_p], [t.statistic, t.pvalue], rtol=1e-10)
    np.testing.assert_allclose([result.wilcoxon_statistic, result.wilcoxon_p], [w.statistic, w.pvalue], rtol=1e-10)
    assert result.t_p < 0.05  # a real shift of 0.05 over 80 users with noise 0.1


def test_paired_tests_hand_computed_small_case():
    # differences a - b: +1, 0, +1, -1, 0, +1 (zeros dropped by Wilcoxon: ranks of |d| are all 2.5 for 4 values)
    a = _series([1, 0, 1, 0, 1, 1], list("abcdef"))
    b = _series([0, 0, 0, 1, 1, 0], list("abcdef"))
    result = paired_tests(a, b)
    diff = np.array([1, 0, 1, -1, 0, 1.0])
    expected_t = diff.mean() / (diff.std(ddof=1) / np.sqrt(6))
    np.testing.assert_allclose(result.t_statistic, expected_t)
    assert result.mean_diff == pytest.approx(2 / 6)
    # W = min(sum of positive ranks, sum of negative ranks) = min(3 * 2.5, 2.5) = 2.5
    assert result.wilcoxon_statistic == pytest.approx(2.5)
    np.testing.assert_allclose(result.wilcoxon_p, scipy.stats.wilcoxon(a.to_numpy(), b.to_numpy()).pvalue)


def test_paired_tests_join_on_shared_users_and_drop_nan():
    a = _series([0.5, 0.2, 0.9, np.nan], ["u1", "u2", "u3", "u4"])
    b = _series([0.1, 0.3, 0.4, 0.6, 0.7], ["u3", "u1", "u2", "u4", "u9"])
    result = paired_tests(a, b)
    assert result.n_users == 3  # u1, u2, u3; u4 is NaN in a, u9 only in b
    assert result.mean_a == pytest.approx((0.5 + 0.2 + 0.9) / 3)
    assert result.mean_b == pytest.approx((0.3 + 0.4 + 0.1) / 3)
    expected = scipy.stats.ttest_rel([0.5, 0.2, 0.9], [0.3, 0.4, 0.1])
    assert result.t_p == pytest.approx(expected.pvalue)


def test_identical_runs_give_p_one_and_no_warning():
    a = _series([0.1, 0.5, 0.0, 1.0], list("abcd"))
    result = paired_tests(a, a.copy())
    assert (result.t_statistic, result.t_p, result.wilcoxon_statistic, result.wilcoxon_p) == (0.0, 1.0, 0.0, 1.0)


def test_a_constant_nonzero_difference_is_certain():
    a = _series([0.3, 0.6, 0.9], list("abc"))
    result = paired_tests(a, a - 0.25)
    assert result.t_statistic == np.inf and result.t_p == 0.0


def test_paired_tests_without_shared_users_is_a_data_error():
    with pytest.raises(DataError, match="share no user"):
        paired_tests(_series([1.0], ["a"]), _series([1.0], ["b"]))


def test_paired_tests_reject_a_user_listed_twice():
    with pytest.raises(DataError, match="twice"):
        paired_tests(_series([1.0, 0.0], ["a", "a"]), _series([1.0], ["a"]))


def test_holm_by_hand():
    # sorted: 0.01 (x4 = 0.04), 0.03 (x3 = 0.09), 0.04 (x2 = 0.08 -> running max 0.09), 0.20 (x1 = 0.20)
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.20]), [0.04, 0.09, 0.09, 0.20])


def test_holm_caps_at_one_and_skips_nan():
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])
    adjusted = holm([np.nan, 0.02, 0.01])  # m = 2: 0.01 x2 = 0.02, 0.02 x1 = 0.02
    assert np.isnan(adjusted[0])
    np.testing.assert_allclose(adjusted[1:], [0.02, 0.02])
    assert holm([]).shape == (0,)


def test_holm_of_one_p_value_is_unchanged():
    np.testing.assert_allclose(holm([0.03]), [0.03])


@pytest.mark.parametrize("n", [2, 7, 200])
def test_mean_interval_matches_scipy(n):
    values = np.random.default_rng(n).normal(0.3, 0.1, size=n)
    low, high = scipy.stats.t.interval(0.95, n - 1, loc=values.mean(), scale=scipy.stats.sem(values))
    mean, got_low, got_high = mean_interval(values)
    np.testing.assert_allclose([mean, got_low, got_high], [values.mean(), low, high], rtol=1e-12)
    low90, high90 = scipy.stats.t.interval(0.90, n - 1, loc=values.mean(), scale=scipy.stats.sem(values))
    np.testing.assert_allclose(mean_interval(values, confidence=0.90)[1:], [low90, high90], rtol=1e-12)


def test_mean_interval_hand_computed():
    # values 1, 2, 3: mean 2, sd 1, sem 1/sqrt(3); with 2 degrees of freedom the t quantile has the
    # closed form t(q, 2) = (2q - 1) * sqrt(2 / (4q(1 - q))), here q = 0.975 (about 4.3027)
    mean, low, high = mean_interval(np.array([1.0, 2.0, 3.0]))
    q = 0.975
    half = (2 * q - 1) * np.sqrt(2 / (4 * q * (1 - q))) / np.sqrt(3)
    np.testing.assert_allclose([mean, low, high], [2.0, 2.0 - half, 2.0 + half], rtol=1e-12)


def test_mean_interval_of_one_value_has_nan_bounds():
    mean, low, high = mean_interval(np.array([0.4]))
    assert mean == 0.4 and np.isnan(low) and np.isnan(high)
    with pytest.raises(ValueError, match="confidence"):
        mean_interval(np.array([1.0, 2.0]), confidence=95)
