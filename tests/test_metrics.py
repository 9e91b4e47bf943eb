"""Metrics: hand-computed cases, agreement with rs_metrics 0.6.0, the t-interval."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import rs_metrics
import scipy.stats

from sonic.rouge import metrics
from sonic.rouge.evaluate import evaluate

LOG2_3, LOG2_5 = np.log2(3.0), np.log2(5.0)

# Two users, width 4.
# user 0: list [a, b, c, d], truth rows {b, d, e}       -> hits at positions 1 and 3
# user 1: list [x, z] (short), truth rows [x, x, y]    -> hit at position 0, x counted twice
HITS = np.array([[False, True, False, True], [True, False, False, False]])
HIT_ROWS = np.array([[0, 1, 0, 1], [2, 0, 0, 0]])
LIST_LENGTHS = np.array([4, 2])
N_UNIQUE = np.array([3, 2])
N_ROWS = np.array([3, 3])


def test_hit_rate_by_hand():
    assert metrics.hit_rate(HITS, k=1).tolist() == [0.0, 1.0]
    assert metrics.hit_rate(HITS).tolist() == [1.0, 1.0]


def test_precision_divides_by_the_cut_list_length():
    assert metrics.precision(HITS, LIST_LENGTHS, k=1).tolist() == [0.0, 1.0]
    assert metrics.precision(HITS, LIST_LENGTHS, k=2).tolist() == [0.5, 0.5]
    assert metrics.precision(HITS, LIST_LENGTHS, k=4).tolist() == [0.5, 0.5]  # user 1: 1 hit / 2 shown


def test_precision_of_an_empty_list_is_zero():
    assert metrics.precision(np.zeros((1, 3), bool), np.array([0])).tolist() == [0.0]


def test_recall_counts_truth_rows_with_duplicates():
    np.testing.assert_allclose(metrics.recall(HIT_ROWS, N_ROWS, k=2), [1 / 3, 2 / 3])
    np.testing.assert_allclose(metrics.recall(HIT_ROWS, N_ROWS, k=4), [2 / 3, 2 / 3])


def test_mrr_by_hand():
    np.testing.assert_allclose(metrics.mrr(HITS, k=1), [0.0, 1.0])
    np.testing.assert_allclose(metrics.mrr(HITS), [0.5, 1.0])


def test_ndcg_by_hand():
    # user 0 @2: DCG = 1/log2(3); ideal of min(3, 2) = 2 hits = 1 + 1/log2(3)
    # user 0 @4: DCG = 1/log2(3) + 1/log2(5); ideal of 3 hits = 1 + 1/log2(3) + 1/2
    # user 1 @4: DCG = 1; ideal of 2 unique = 1 + 1/log2(3); @1: 1 / 1
    np.testing.assert_allclose(metrics.ndcg(HITS, N_UNIQUE, k=1), [0.0, 1.0])
    np.testing.assert_allclose(
        metrics.ndcg(HITS, N_UNIQUE, k=2), [(1 / LOG2_3) / (1 + 1 / LOG2_3), 1 / (1 + 1 / LOG2_3)]
    )
    np.testing.assert_allclose(
        metrics.ndcg(HITS, N_UNIQUE, k=4),
        [(1 / LOG2_3 + 1 / LOG2_5) / (1 + 1 / LOG2_3 + 0.5), 1 / (1 + 1 / LOG2_3)],
    )


def test_no_relevant_tracks_gives_nan_recall_and_ndcg():
    hits = np.zeros((1, 2), bool)
    assert np.isnan(metrics.recall(hits.astype(int), np.array([0]))).all()
    assert np.isnan(metrics.ndcg(hits, np.array([0]))).all()


def test_k_beyond_the_array_width_is_refused():
    with pytest.raises(ValueError, match="k must be between 1 and the array width 4"):
        metrics.hit_rate(HITS, k=5)


def test_evaluate_matches_the_hand_computed_arrays():
    recommendations = pd.DataFrame(
        {
            "user_id": ["u0"] * 4 + ["u1"] * 2 + ["nobody"],
            "track_id": ["a", "b", "c", "d", "x", "z", "a"],
            "rank": [1, 2, 3, 4, 1, 2, 1],
        }
    )
    truth = pd.DataFrame({"user_id": ["u0", "u0", "u0", "u1", "u1", "u1", "u2"], "track_id": list("bdexxyq")})
    means = evaluate(recommendations, truth, ks=(2, 4)).means()
    # u2 has no recommendations: 0 everywhere, and counts in every mean.
    assert means["HitRate@2"] == pytest.approx((1 + 1 + 0) / 3)
    assert means["Precision@4"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert means["Recall@2"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert means["MRR@4"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert means["NDCG@4"] == pytest.approx(((1 / LOG2_3 + 1 / LOG2_5) / (1.5 + 1 / LOG2_3) + 1 / (1 + 1 / LOG2_3)) / 3)


# --- agreement with rs_metrics -------------------------------------------------------------

REFERENCE = {
    "HitRate": rs_metrics.hitrate,
    "Precision": rs_metrics.precision,
    "Recall": rs_metrics.recall,
    "MRR": rs_metrics.mrr,
    "NDCG": rs_metrics.ndcg,
}


def random_case(seed: int, n_users: int = 300, n_tracks: int = 120) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lists of 0..60 tracks (some shorter than k), truths with duplicates, users without lists."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        if rng.random() < 0.1:
            continue  # this user gets no recommendations at all
        length = int(rng.integers(0, 61))
        for rank, track in enumerate(rng.choice(n_tracks, size=length, replace=False), start=1):
            rows.append((f"u{user}", f"t{track}", rank))
    recommendations = pd.DataFrame(rows, columns=["user_id", "track_id", "rank"])
    n_truth = n_users * 8
    truth = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in rng.integers(0, n_users, n_truth)],
            "track_id": [f"t{t}" for t in rng.integers(0, n_tracks // 3, n_truth)],  # small pool: many duplicates
        }
    )
    return recommendations, truth


def rs_reference(name: str, truth: dict, ranked: dict, k: int) -> np.ndarray:
    """Per-user rs_metrics values from ``{user: [tracks]}`` dicts, ``ranked`` lists best first.

    rs_metrics takes the mean of an empty array for the precision of a user without a list,
    which warns and gives NaN; the warning is silenced here and NaN compared separately.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        values = REFERENCE[name](truth, ranked, k=k, apply_mean=False)
    return np.asarray(values, dtype=np.float64)


@pytest.mark.parametrize("seed", range(6))
def test_evaluate_equals_rs_metrics_on_random_cases(seed):
    recommendations, truth = random_case(seed)
    assert truth.duplicated().any()
    shuffled = recommendations.sample(frac=1.0, random_state=seed)  # evaluate must order by rank itself
    report = evaluate(shuffled, truth, ks=(1, 5, 10, 50))
    per_user = report.per_user()
    assert per_user["user_id"].tolist() == sorted(truth["user_id"].unique())
    without_list = ~per_user["user_id"].isin(recommendations["user_id"]).to_numpy()
    assert without_list.any()
    # rs_metrics' own conversion (groupby, row order kept), once instead of once per call.
    truth_lists = rs_metrics.pandas_to_dict(truth, item_col="track_id")
    ranked_lists = rs_metrics.pandas_to_dict(recommendations, item_col="track_id")
    for k in (1, 5, 10, 50):
        for name in REFERENCE:
            ours = per_user[f"{name}@{k}"].to_numpy()
            theirs = rs_reference(name, truth_lists, ranked_lists, k)
            defined = ~np.isnan(theirs)
            np.testing.assert_allclose(ours[defined], theirs[defined], rtol=0, atol=1e-9, err_msg=f"{name}@{k}")
            if name == "Precision":
                np.testing.assert_array_equal(~defined, without_list)
                assert (ours[~defined] == 0).all()
            else:
                assert defined.all()


def test_scores_order_like_ranks_with_ties_broken_by_track_id():
    truth = pd.DataFrame({"user_id": ["u", "u"], "track_id": ["c", "z"]})
    by_score = pd.DataFrame({"user_id": ["u"] * 4, "track_id": ["z", "b", "c", "a"], "score": [0.9, 0.5, 0.5, 0.1]})
    by_rank = pd.DataFrame({"user_id": ["u"] * 4, "track_id": ["z", "b", "c", "a"], "rank": [1, 2, 3, 4]})
    assert evaluate(by_score, truth, ks=(2, 4)).means() == evaluate(by_rank, truth, ks=(2, 4)).means()
    assert evaluate(by_score, truth, ks=(2,)).means()["MRR@2"] == 1.0
    assert evaluate(by_score, truth, ks=(2,)).means()["Precision@2"] == 0.5  # b beats c on the tie


# --- confidence interval -------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 5, 100])
def test_confidence_interval_matches_scipy(n):
    values = np.random.default_rng(n).normal(0.3, 0.1, size=n)
    expected = scipy.stats.t.interval(0.95, n - 1, loc=values.mean(), scale=scipy.stats.sem(values))
    np.testing.assert_allclose(metrics.confidence_interval(values), expected, rtol=1e-12)


def test_confidence_interval_of_one_value_is_nan_and_of_constants_is_the_mean():
    assert all(np.isnan(metrics.confidence_interval(np.array([0.4]))))
    assert metrics.confidence_interval(np.full(7, 0.25)) == (0.25, 0.25)


def test_an_accuracy_metrics_interval_is_cut_at_zero_and_one_and_others_are_not():
    from scipy import stats

    from sonic.rouge.metrics import metric_interval

    rare = np.zeros(117)
    rare[:2] = [0.4, 0.3]  # most users score 0: the t-interval reaches below 0
    low, high = stats.t.interval(0.95, len(rare) - 1, loc=rare.mean(), scale=stats.sem(rare))
    assert low < 0
    mean, cut_low, cut_high = metric_interval("NDCG", rare)
    assert mean == pytest.approx(rare.mean()) and cut_low == 0.0 and cut_high == pytest.approx(high)
    near_one = 1.0 - rare
    _, cut_low, cut_high = metric_interval("HitRate", near_one)
    assert cut_high == 1.0 and cut_low == pytest.approx(1.0 - high)
    _, other_low, _ = metric_interval("ARP", rare)  # not bounded in [0, 1]: the whole interval
    assert other_low == pytest.approx(low)
