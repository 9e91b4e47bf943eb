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


# --- the user as the unit, across seeds ------------------------------------------------------------


def _seed_rows(seed, users, values):
    return pd.DataFrame({"seed": seed, "user_id": users, "value": np.asarray(values, dtype=np.float64)})


def test_a_user_under_two_seeds_counts_once_and_p_matches_scipy_on_per_user_means():
    from sonic.rouge.significance import paired_tests_over_seeds

    rng = np.random.default_rng(11)
    pool = [f"u{i}" for i in range(60)]
    first, second = pool[:40], pool[20:]  # users u20..u39 are drawn by both seeds
    a = pd.concat([_seed_rows(1, first, rng.random(40)), _seed_rows(2, second, rng.random(40))])
    b = a.assign(value=a["value"] - 0.03 + rng.normal(0, 0.1, len(a)))
    result = paired_tests_over_seeds(a, b)
    assert result.n_users == 60  # 80 (seed, user) pairs, 60 users

    # the reference: each user's mean over the seeds, computed here with plain pandas, then scipy
    mean_a = a.groupby("user_id")["value"].mean().sort_index()
    mean_b = b.groupby("user_id")["value"].mean().sort_index()
    t = scipy.stats.ttest_rel(mean_a.to_numpy(), mean_b.to_numpy())
    w = scipy.stats.wilcoxon(mean_a.to_numpy(), mean_b.to_numpy(), zero_method="wilcox", correction=False)
    np.testing.assert_allclose([result.t_statistic, result.t_p], [t.statistic, t.pvalue], rtol=1e-10)
    np.testing.assert_allclose([result.wilcoxon_statistic, result.wilcoxon_p], [w.statistic, w.pvalue], rtol=1e-10)
    np.testing.assert_allclose([result.mean_a, result.mean_b], [mean_a.mean(), mean_b.mean()])

    pooled = scipy.stats.ttest_rel(a["value"].to_numpy(), b["value"].to_numpy())  # the old, pooled way
    assert pooled.pvalue != pytest.approx(t.pvalue)


def test_pairs_match_on_seed_and_user():
    from sonic.rouge.significance import paired_tests_over_seeds

    a = pd.concat([_seed_rows(1, ["x", "y", "z"], [0.5, 0.2, 0.9]), _seed_rows(2, ["x"], [0.7])])
    b = pd.concat([_seed_rows(1, ["x", "y", "z"], [0.1, 0.3, 0.4]), _seed_rows(3, ["x"], [0.0])])
    result = paired_tests_over_seeds(a, b)  # seed 2 of a and seed 3 of b have no partner
    assert result.n_users == 3
    assert result.mean_a == pytest.approx((0.5 + 0.2 + 0.9) / 3)
    with pytest.raises(DataError, match="share no"):
        paired_tests_over_seeds(_seed_rows(1, ["x"], [1.0]), _seed_rows(2, ["x"], [1.0]))
    with pytest.raises(DataError, match="twice under seed 1"):
        paired_tests_over_seeds(_seed_rows(1, ["x", "x"], [1.0, 0.0]), _seed_rows(1, ["x"], [1.0]))


def test_user_means_average_each_user_over_seeds():
    from sonic.rouge.significance import user_means

    rows = pd.concat([_seed_rows(1, ["a", "b"], [1.0, 0.0]), _seed_rows(2, ["a", "c"], [0.0, np.nan])])
    means = user_means(rows)
    assert means.to_dict() == {"a": 0.5, "b": 0.0}  # c has no value


# --- intervals over users ----------------------------------------------------------------------------


def test_bootstrap_keeps_a_bounded_metric_inside_0_1_where_t_over_two_seeds_does_not():
    from sonic.rouge.significance import bootstrap_intervals

    rng = np.random.default_rng(5)
    users = 300
    hits = (rng.random((users, 2)) < [0.02, 0.10]).astype(np.float64)  # HitRate per user under two seeds
    seed_means = hits.mean(axis=0)
    _, t_low, _ = mean_interval(seed_means)  # the t-interval over 2 seeds (df 1)
    assert t_low < 0  # the data where the old interval left [0, 1]
    low, high = bootstrap_intervals(hits.mean(axis=1)[:, None])
    assert 0.0 <= low[0] <= hits.mean() <= high[0] <= 1.0
    # near the lower bound: one hit among many users
    rare = np.zeros((500, 1))
    rare[7] = 1.0
    low, high = bootstrap_intervals(rare)
    assert low[0] >= 0.0 and high[0] <= 1.0 and high[0] > 0


def test_bootstrap_matches_scipy_percentile_bootstrap():
    from sonic.rouge.significance import bootstrap_intervals

    values = np.random.default_rng(2).beta(0.5, 3.0, size=(400, 1))
    low, high = bootstrap_intervals(values, resamples=4000, seed=1)
    reference = scipy.stats.bootstrap((values[:, 0],), np.mean, n_resamples=4000, method="percentile",
                                      random_state=np.random.default_rng(9)).confidence_interval
    # two independent bootstraps of the same mean agree to within their Monte-Carlo error
    width = reference.high - reference.low
    assert low[0] == pytest.approx(reference.low, abs=0.05 * width)
    assert high[0] == pytest.approx(reference.high, abs=0.05 * width)
    again = bootstrap_intervals(values, resamples=4000, seed=1)
    np.testing.assert_array_equal(again[0], low)  # seeded: the same draws


def test_bootstrap_resamples_users_alike_across_columns_and_skips_nan():
    from sonic.rouge.significance import bootstrap_intervals

    values = np.array([[0.1, np.nan], [0.5, 0.5], [0.9, 0.9], [0.3, np.nan]])
    low, high = bootstrap_intervals(values, resamples=500)
    assert 0.1 <= low[0] <= high[0] <= 0.9 and 0.5 <= low[1] <= high[1] <= 0.9
    low, high = bootstrap_intervals(np.full((3, 1), np.nan))
    assert np.isnan(low[0]) and np.isnan(high[0])


# --- Holm against another hand -------------------------------------------------------------------------


def test_holm_on_the_worked_example_of_the_holm_bonferroni_article():
    # Wikipedia, "Holm-Bonferroni method", its example: four null hypotheses at alpha = 0.05 with unadjusted
    # p-values 0.01, 0.03, 0.04 and 0.005; "hypotheses one and four are rejected while hypotheses two and three
    # are not". Adjusted by hand: 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 (running max 0.06).
    adjusted = holm([0.01, 0.03, 0.04, 0.005])
    assert list(adjusted < 0.05) == [True, False, False, True]
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])


def test_holm_matches_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest", reason="statsmodels is not installed")
    p = np.random.default_rng(4).random(25) ** 3
    reject, expected, _, _ = multitest.multipletests(p, alpha=0.05, method="holm")
    np.testing.assert_allclose(holm(p), expected, rtol=1e-12)
    assert list(holm(p) < 0.05) == list(reject)
