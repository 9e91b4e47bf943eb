"""evaluate(): the report, input validation, file loading and the `sonic evaluate` command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rs_metrics

from sonic.cli import main
from sonic.errors import DataError, SonicError
from sonic.rouge.evaluate import MetricsReport, _list_order, evaluate, load_ground_truth, load_recommendations

RECS = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "track_id": ["a", "b", "a"], "rank": [1, 2, 1]})
TRUTH = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "track_id": ["b", "c", "a"]})


def test_report_means_and_table():
    report = evaluate(RECS, TRUTH, ks=[2, 1, 2])
    assert isinstance(report, MetricsReport)
    assert report.ks == (1, 2)
    assert list(report.means()) == [
        f"{name}@{k}" for name in ("HitRate", "Precision", "Recall", "MRR", "NDCG") for k in (1, 2)
    ]
    assert report.means()["HitRate@2"] == pytest.approx(1 / 3)
    assert report.means()["MRR@2"] == pytest.approx(0.5 / 3)
    table = report.table()
    assert list(table.columns) == ["metric", "k", "mean", "ci_low", "ci_high", "n_users"]
    assert len(table) == 10 and (table["n_users"] == 3).all()
    row = table[(table["metric"] == "HitRate") & (table["k"] == 2)].iloc[0]
    assert row["mean"] == pytest.approx(1 / 3)
    assert row["ci_low"] < row["mean"] < row["ci_high"]


def test_extra_truth_columns_are_ignored_and_users_outside_the_truth_dropped():
    truth = TRUTH.assign(timestamp=pd.Timestamp("2019-01-01"), count=3)
    recs = pd.concat([RECS, pd.DataFrame({"user_id": ["stranger"], "track_id": ["b"], "rank": [1]})])
    assert evaluate(recs, truth, ks=(2,)).means() == evaluate(RECS, TRUTH, ks=(2,)).means()
    assert evaluate(recs, truth, ks=(2,)).user_ids.tolist() == ["u1", "u2", "u3"]


def test_ranks_need_not_be_contiguous():
    gappy = RECS.assign(rank=[10, 30, 5])
    assert evaluate(gappy, TRUTH, ks=(2,)).means() == evaluate(RECS, TRUTH, ks=(2,)).means()


def test_integer_ids_match_string_ids():
    recs = pd.DataFrame({"user_id": [1, 1], "track_id": [7, 8], "score": [0.2, 0.9]})
    truth = pd.DataFrame({"user_id": ["1"], "track_id": ["8"]})
    assert evaluate(recs, truth, ks=(1,)).means()["HitRate@1"] == 1.0


def test_empty_recommendations_score_zero():
    empty = RECS.iloc[:0]
    assert set(evaluate(empty, TRUTH, ks=(3,)).means().values()) == {0.0}


@pytest.mark.parametrize(
    ("recommendations", "truth", "message"),
    [
        (RECS.drop(columns="track_id"), TRUTH, "recommendations has no column 'track_id'"),
        (RECS.drop(columns="rank"), TRUTH, "recommendations has neither a 'rank' nor a 'score' column"),
        (RECS.assign(rank=["1", "2", "1"]), TRUTH, "recommendations has a non-numeric 'rank' column"),
        (RECS.drop(columns="rank").assign(score=[0.5, np.nan, 1]), TRUTH, "1 rows whose 'score' is missing or inf"),
        (RECS.assign(rank=[1, np.inf, 2]), TRUTH, "has 1 rows whose 'rank' is missing or infinite"),
        (pd.concat([RECS, RECS.iloc[:1]]), TRUTH, "lists track 'a' twice for user 'u1'"),
        (RECS.assign(user_id=["u1", None, "u2"]), TRUTH, "recommendations has 1 rows without a user_id"),
        (RECS, TRUTH.drop(columns="user_id"), "ground truth has no column 'user_id'"),
        (RECS, TRUTH.iloc[:0], "ground truth holds no rows"),
    ],
)
def test_bad_frames_raise_one_data_error(recommendations, truth, message):
    with pytest.raises(DataError, match=message):
        evaluate(recommendations, truth, ks=(10,))


@pytest.mark.parametrize("n_users", [30, 2**62])  # the second forces the lexsort fallback
@pytest.mark.parametrize("values", ["ranks", "scores"])
def test_list_order_equals_lexsort(n_users, values):
    rng = np.random.default_rng(1)
    users, tracks = rng.integers(0, 30, 2000), rng.permutation(2000)  # (user, track) pairs unique
    order_values = rng.integers(1, 60, 2000).astype(float) if values == "ranks" else rng.random(2000).round(2)
    expected = np.lexsort((tracks, order_values, users))
    np.testing.assert_array_equal(_list_order(users, order_values, tracks, n_users, 2000), expected)


@pytest.mark.parametrize("ks", [(), (0,), (10, -1), (2.5,)])
def test_bad_ks_are_refused(ks):
    with pytest.raises(SonicError, match="k must be one or more positive integers"):
        evaluate(RECS, TRUTH, ks=ks)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_loaders_read_ids_as_strings(tmp_path, suffix):
    frame = pd.DataFrame({"user_id": ["007", "12"], "track_id": ["0001", "x"], "rank": [1, 2]})
    path = tmp_path / f"recs{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, sep="\t" if suffix == ".tsv" else ",", index=False)
    loaded = load_recommendations(path)
    assert loaded["user_id"].tolist() == ["007", "12"]
    assert loaded["track_id"].tolist() == ["0001", "x"]


def test_loaders_turn_integer_parquet_ids_into_strings(tmp_path):
    pd.DataFrame({"user_id": [5, 6], "track_id": [1, 2]}).to_parquet(tmp_path / "truth.parquet")
    assert load_ground_truth(tmp_path / "truth.parquet")["user_id"].tolist() == ["5", "6"]


def test_loaders_name_the_missing_or_unknown_file(tmp_path):
    with pytest.raises(DataError, match=r"recommendations file '.*nope.csv' does not exist"):
        load_recommendations(tmp_path / "nope.csv")
    (tmp_path / "truth.json").write_text("{}")
    with pytest.raises(DataError, match=r"ground-truth file '.*truth.json' is not a known table format"):
        load_ground_truth(tmp_path / "truth.json")


def run_cli(argv: list[str]) -> int:
    """Run ``sonic`` in-process; its exit status (the command line always exits)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code


def test_cli_evaluate_writes_the_rs_metrics_values(tmp_path, capsys):
    rng = np.random.default_rng(7)
    users = [f"u{i}" for i in range(60)]
    recs = pd.DataFrame(
        [(u, f"t{t}", float(s)) for u in users for t, s in zip(rng.choice(40, 20, replace=False), rng.random(20))],
        columns=["user_id", "track_id", "score"],
    )
    # Every user has a list, so rs_metrics' precision is defined for all of them.
    truth = pd.DataFrame({"user_id": rng.choice(users, 400), "track_id": [f"t{t}" for t in rng.integers(0, 15, 400)]})
    recs.to_csv(tmp_path / "recs.csv", index=False)
    truth.to_csv(tmp_path / "truth.tsv", sep="\t", index=False)
    output = tmp_path / "metrics.json"

    code = run_cli(["evaluate", "--recommendations", str(tmp_path / "recs.csv"), "--ground-truth",
                    str(tmp_path / "truth.tsv"), "--k", "5", "--k", "10", "--output", str(output)])  # fmt: skip

    assert code == 0
    written = json.loads(output.read_text())
    printed = capsys.readouterr().out
    assert "NDCG" in printed and f"wrote {output}" in printed
    ranked = recs.sort_values(["user_id", "score", "track_id"], ascending=[True, False, True])
    reference = {"HitRate": rs_metrics.hitrate, "Precision": rs_metrics.precision, "Recall": rs_metrics.recall,
                 "MRR": rs_metrics.mrr, "NDCG": rs_metrics.ndcg}  # fmt: skip
    assert len(written) == 10
    for name, function in reference.items():
        for k in (5, 10):
            expected = function(truth, ranked, k=k, item_col="track_id")
            assert written[f"{name}@{k}"] == pytest.approx(expected, abs=1e-9), f"{name}@{k}"


def test_cli_evaluate_reports_a_bad_file_in_one_line(tmp_path, capsys):
    RECS.drop(columns="rank").to_csv(tmp_path / "recs.csv", index=False)
    TRUTH.to_csv(tmp_path / "truth.csv", index=False)
    code = run_cli(["evaluate", "--recommendations", str(tmp_path / "recs.csv"), "--ground-truth",
                    str(tmp_path / "truth.csv"), "--output", str(tmp_path / "m.json")])  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith(f"sonic: error: recommendations file '{tmp_path / 'recs.csv'}' has neither a 'rank'")
