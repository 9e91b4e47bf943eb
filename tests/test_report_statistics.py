"""The report's statistics on small frames: labelled intervals inside a metric's bounds, rankings whose
"best" needs a test, tables sorted as they say, and gaps that are rows rather than crashes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from sonic.rouge.metrics import mean_interval
from sonic.study.report import statistics
from sonic.study.report.page import href
from sonic.study.report.sections import wide


def _per_user(model, embedding, seed, users, values, *, split="test", metric="HitRate", k=10):
    return pd.DataFrame({"model": model, "embedding": embedding, "split": split, "seed": seed,
                         "user_id": users, "metric": metric, "k": k, "value": np.asarray(values, np.float64)})


def _results(per_user: pd.DataFrame) -> pd.DataFrame:
    """The store's per-run rows of these per-user values (mean over each seed's users)."""
    keys = ["model", "embedding", "split", "seed", "metric", "k"]
    frame = per_user.groupby(keys, as_index=False)["value"].agg(mean="mean", n_users="count")
    return frame.assign(run=frame["model"] + "-" + frame["embedding"] + "-seed" + frame["seed"].astype(str))


def test_two_seeds_get_bootstrap_intervals_inside_0_1_where_t_over_seeds_leaves_them():
    rng = np.random.default_rng(1)
    users = [f"u{i}" for i in range(200)]
    per_user = pd.concat([
        _per_user("knn", "mfcc_104", 1, users[:150], rng.random(150) < 0.01),
        _per_user("knn", "mfcc_104", 2, users[50:], rng.random(150) < 0.08),
    ])  # fmt: skip
    results = _results(per_user)
    _, t_low, _ = mean_interval(results["mean"].to_numpy())  # the old interval: t over 2 seeds, df 1
    assert t_low < 0
    board = statistics.leaderboard(results, per_user)
    (row,) = board.to_dict("records")
    assert row["ci_method"] == statistics.BOOTSTRAP_OVER_USERS and np.isnan(row["ci_df"])
    assert 0.0 <= row["ci_low"] <= row["mean"] <= row["ci_high"] <= 1.0
    assert row["n_users"] == 200 and row["n_seeds"] == 2  # u50..u149 counted once
    by_user = per_user.groupby("user_id")["value"].mean()
    assert row["mean"] == pytest.approx(by_user.mean())
    assert "percentile bootstrap over users (2000 resamples; 200 users" in statistics.describe_interval(board)


def test_five_seeds_get_the_t_interval_over_seeds_with_its_degrees_of_freedom():
    rng = np.random.default_rng(2)
    users = [f"u{i}" for i in range(30)]
    per_user = pd.concat([_per_user("pop", "-", seed, users, rng.random(30)) for seed in range(5)])
    results = _results(per_user)
    (row,) = statistics.leaderboard(results, per_user).to_dict("records")
    means = results["mean"].to_numpy()
    low, high = scipy.stats.t.interval(0.95, 4, loc=means.mean(), scale=scipy.stats.sem(means))
    assert row["ci_method"] == statistics.T_OVER_SEEDS and row["ci_df"] == 4
    np.testing.assert_allclose([row["mean"], row["ci_low"], row["ci_high"]], [means.mean(), low, high])


def test_a_value_without_per_user_rows_has_no_interval():
    per_user = _per_user("knn", "mfcc_104", 1, ["a", "b"], [0.5, 0.7])
    results = pd.concat([_results(per_user), _results(per_user).assign(metric="Coverage", mean=0.3)])
    board = statistics.leaderboard(results, per_user).set_index("metric")
    assert board.loc["Coverage", "ci_method"] == statistics.NO_INTERVAL
    assert np.isnan(board.loc["Coverage", "ci_low"]) and board.loc["Coverage", "mean"] == 0.3


def _two_entries(shift, noise, n=80, seed=0):
    rng = np.random.default_rng(seed)
    users = [f"u{i}" for i in range(n)]
    level = rng.random(n)
    return pd.concat([
        _per_user("knn", "a", 1, users, level + shift + rng.normal(0, noise, n), metric="NDCG"),
        _per_user("knn", "b", 1, users, level + rng.normal(0, noise, n), metric="NDCG"),
        _per_user("knn", "c", 1, users, level - 0.3 + rng.normal(0, noise, n), metric="NDCG"),
    ])  # fmt: skip


def test_best_needs_the_top_to_beat_the_runner_up():
    values = statistics.UserValues(_two_entries(shift=0.2, noise=0.02), "NDCG", 10)
    ranking = statistics.rank(values, "test", [("knn", "c"), ("knn", "b"), ("knn", "a")], "with knn")
    assert list(ranking.order["label"]) == ["knn / a", "knn / b", "knn / c"]
    tests = statistics.adjust(ranking.tests(values))
    verdict = statistics.verdict(ranking, tests)
    assert verdict.best == "knn / a" and verdict.tied == ("knn / a",)
    assert verdict.runner_up["b"] == "knn / b" and verdict.runner_up["t_p_holm"] < 0.05

    close = statistics.UserValues(_two_entries(shift=0.001, noise=0.2), "NDCG", 10)
    ranking = statistics.rank(close, "test", [("knn", "a"), ("knn", "b"), ("knn", "c")], "with knn")
    verdict = statistics.verdict(ranking, statistics.adjust(ranking.tests(close)))
    assert verdict.best is None and set(verdict.tied) == {"knn / a", "knn / b"}  # c is clearly behind


def test_holm_runs_over_the_family_and_gaps_are_rows():
    values = statistics.UserValues(_two_entries(shift=0.05, noise=0.1), "NDCG", 10)
    rows = [statistics.paired(values, "test", ("knn", "a"), ("knn", "b"), "q3"),
            statistics.paired(values, "test", ("knn", "a"), ("knn", "c"), "q3"),
            statistics.paired(values, "test", ("knn", "a"), ("snn", "a"), "q3")]  # fmt: skip
    tests = statistics.adjust(rows)
    assert tests.loc[2, "gap"] == "no per-user NDCG@10 of snn / a on test in the store"
    assert np.isnan(tests.loc[2, "t_p_holm"])
    p = tests.loc[:1, "t_p"].to_numpy()
    expected = np.minimum(1, np.maximum.accumulate(np.sort(p) * [2, 1]))[np.argsort(np.argsort(p))]
    np.testing.assert_allclose(tests.loc[:1, "t_p_holm"], expected)

    other_seed = _per_user("snn", "a", 2, ["u0", "u1"], [0.1, 0.2], metric="NDCG")
    values = statistics.UserValues(pd.concat([_two_entries(0.0, 0.1), other_seed]), "NDCG", 10)
    row = statistics.paired(values, "test", ("knn", "a"), ("snn", "a"), "q1")
    assert row["gap"] == "knn / a and snn / a share no user under a common seed on test"


def test_the_wide_table_sorts_by_the_metric_it_names():
    board = pd.DataFrame([
        ("knn", "a", "HitRate", 0.9, np.nan, np.nan), ("knn", "a", "NDCG", 0.1, 0.05, 0.15),
        ("knn", "b", "HitRate", 0.5, np.nan, np.nan), ("knn", "b", "NDCG", 0.3, 0.25, 0.35),
    ], columns=["model", "embedding", "metric", "mean", "ci_low", "ci_high"])  # fmt: skip
    table = wide(board, sort_by="NDCG")
    assert list(table["embedding"]) == ["b", "a"]  # by NDCG, though a leads on HitRate
    assert table.loc[0, "NDCG"] == "0.3000 [0.2500, 0.3500]" and table.loc[0, "HitRate"] == "0.5000"


def test_file_links_are_quoted_segment_by_segment():
    assert href("gallery/a b/#1?%.mel.png") == "gallery/a%20b/%231%3F%25.mel.png"
    assert href("figures/q1-backends.png") == "figures/q1-backends.png"
