"""run_model end to end on a tiny split: the run folder, slices, options, seeds, compare, the CLI."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sonic.cli import main
from sonic.cream.data.split_files import write_split
from sonic.cream.data.splits import Split, SplitConfig
from sonic.errors import DataError, SonicError, UnknownNameError
from sonic.files import BOOKKEEPING, read_marker
from sonic.rouge import base
from sonic.rouge.compare import COMPARE_COLUMNS, compare_runs
from sonic.rouge.evaluate import evaluate
from sonic.rouge.run import RunResult, read_run, run_model, run_models
from sonic.tails.table import EmbeddingTable, write_embeddings

TRACKS = [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)]
COLD = ["a_cold", "b_cold"]  # never in train; only the embedding table knows them
KNOWN = ", ".join(base.RECOMMENDERS.names()) + "; aliases: bert = bert4rec"


@pytest.fixture
def split_dir(tmp_path):
    """u0..u3 like A tracks, v0..v3 like B tracks; each holds out one track of their group for val and test.

    The cold test gives u0 and v0 the cold track of their group.
    """
    train, val, test = [], [], []
    for group, users in (("a", ["u0", "u1", "u2", "u3"]), ("b", ["v0", "v1", "v2", "v3"])):
        for i, user in enumerate(users):
            held_out = [f"{group}{i}", f"{group}{(i + 1) % 4}"]
            train += [(user, f"{group}{j}") for j in range(5) if f"{group}{j}" not in held_out]
            val.append((user, held_out[0]))
            test.append((user, held_out[1]))
    frames = {}
    for name, pairs in (("train", train), ("val", val), ("test", test), ("cold_test", [("u0", "a_cold"),
                                                                                        ("v0", "b_cold")])):
        frame = pd.DataFrame(pairs, columns=["user_id", "track_id"])
        frame["timestamp"] = pd.Timestamp("2019-01-01") if name == "train" else pd.Timestamp("2019-02-01")
        frame["count"] = np.int64(2)
        frames[name] = frame
    config = SplitConfig("toy", None, "2019-01-15", None, keep_cold=True)
    return write_split(Split(config=config, **frames), tmp_path / "split")


@pytest.fixture
def embeddings_dir(tmp_path):
    vectors = [[1.0, 0.1 * i] for i in range(5)] + [[0.1 * i, 1.0] for i in range(5)] + [[1.0, 0.05], [0.05, 1.0]]
    directory = tmp_path / "embeddings"
    table = EmbeddingTable(np.array(TRACKS + COLD), np.array(vectors, dtype=np.float32), {"embedder": "toy", "dim": 2})
    write_embeddings(table, directory / "toy.parquet")
    other = EmbeddingTable(np.array(TRACKS + COLD), np.eye(12, dtype=np.float32), {"embedder": "onehot"})
    write_embeddings(other, directory / "onehot.parquet")
    return directory


def _knn(split_dir, embeddings_dir, out, **kwargs):
    arguments = {"embedding": "toy", "embeddings_dir": embeddings_dir, "mode": "val", "ks": (1, 3)} | kwargs
    return run_model("knn", split_dir, out_dir=out, **arguments)


def test_run_model_writes_the_run_folder(split_dir, embeddings_dir, tmp_path):
    result = _knn(split_dir, embeddings_dir, tmp_path / "r")
    assert isinstance(result, RunResult)
    assert sorted(p.name for p in result.out_dir.iterdir() if p.name not in BOOKKEEPING) == [
        "config.json", "metrics.json", "model", "per_user.parquet", "recommendations.parquet"
    ]  # fmt: skip
    assert read_marker(result.out_dir)["kind"] == "run"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left

    config = json.loads((result.out_dir / "config.json").read_text())
    assert config["model"] == "knn" and config["modes"] == ["val"] and config["ks"] == [1, 3] and config["seed"] == 0
    assert config["options"] == {} and config["shuffle"] is False and config["device"] == "auto"
    assert config["embedding"]["manifest"] == {"embedder": "toy", "dim": 2}
    assert config["split"]["dir"] == str(split_dir)
    assert config["split"]["settings"]["config"]["protocol"] == "toy"  # the split's split.json
    assert "numpy" in config["versions"] and "sonic" in config["versions"]

    recommendations = pd.read_parquet(result.out_dir / "recommendations.parquet")
    assert list(recommendations.columns) == ["user_id", "track_id", "rank", "score"]
    assert recommendations.groupby("user_id")["rank"].max().max() == 3
    val = pd.read_parquet(split_dir / "val.parquet")
    expected = evaluate(recommendations, val, ks=(1, 3)).means()

    per_user = pd.read_parquet(result.out_dir / "per_user.parquet")
    assert list(per_user.columns) == ["user_id", "metric", "k", "value", "slice"]
    assert set(per_user["metric"]) == {"HitRate", "Precision", "Recall", "MRR", "NDCG", "Novelty", "ARP",
                                       "LongTailShare", "ILD"}
    assert per_user["user_id"].nunique() == 8 and set(per_user["slice"]) == {"val"}

    metrics = pd.DataFrame(json.loads((result.out_dir / "metrics.json").read_text())["metrics"])
    assert list(metrics.columns) == ["metric", "k", "slice", "mean", "ci_low", "ci_high", "n_users", "status"]
    assert set(metrics["status"]) == {"scored"}
    means = {f"{m}@{k}": v for m, k, v in metrics[["metric", "k", "mean"]].itertuples(index=False)}
    for key, value in expected.items():
        assert means[key] == pytest.approx(value)
    # A user's only unseen same-group tracks are the two held out: knn must rank both first.
    assert means["HitRate@3"] == means["Recall@3"] == 1.0
    assert 0 < means["Coverage@3"] <= 1 and "ILD@3" in means
    top_two = recommendations[recommendations["rank"] <= 2]
    assert (top_two["track_id"].str[0] == top_two["user_id"].str[0].map({"u": "a", "v": "b"})).all()
    assert result.report.means() == pytest.approx(expected)

    again = read_run(result.out_dir)
    pd.testing.assert_frame_equal(again.per_user, result.per_user)
    assert again.report.table().equals(result.report.table())


def test_cold_test_can_be_evaluated(split_dir, embeddings_dir, tmp_path):
    # Defect 7 (issue 9): `run-model --mode cold_test` was refused ("mode must be 'val' or 'test'").
    result = _knn(split_dir, embeddings_dir, tmp_path / "r", mode=("test", "cold_test"), options={"catalogue": "all"})
    assert result.slices == ["test", "cold_test"]
    metrics = result.metrics.set_index(["metric", "k", "slice"])
    assert metrics.loc[("HitRate", 3, "cold_test"), "n_users"] == 2
    # with the whole table as catalogue, the cold track of the user's group is among the top 3
    assert metrics.loc[("HitRate", 3, "cold_test"), "mean"] == 1.0
    assert set(result.per_user["slice"]) == {"test", "cold_test"}
    assert json.loads((result.out_dir / "config.json").read_text())["options"] == {"catalogue": "all"}


def test_string_options_are_typed_by_the_models_dataclass(split_dir, embeddings_dir, tmp_path):
    result = _knn(split_dir, embeddings_dir, tmp_path / "r",
                  options={"batch_size": "3", "recency_half_life_days": "7.5", "count_weight": "log"})
    assert result.config["options"] == {"batch_size": 3, "recency_half_life_days": 7.5, "count_weight": "log"}
    assert result.model_info["config"]["batch_size"] == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"nope": "1"}, r"^unknown option 'nope' for knn; known: catalogue, batch_size, count_weight, "),
        ({"batch_size": "many"}, r"^option 'batch_size' of knn must be an integer, got 'many'$"),
        ({"catalogue": "some"}, r"^option 'catalogue' of knn must be one of train, all, got 'some'$"),
    ],
)
def test_bad_options_are_one_sentence(split_dir, embeddings_dir, tmp_path, options, message):
    with pytest.raises(SonicError, match=message):
        _knn(split_dir, embeddings_dir, tmp_path / "r", options=options)
    assert not (tmp_path / "r").exists()


def test_several_seeds_and_embeddings_give_run_folders_and_an_over_seeds_mean(split_dir, embeddings_dir, tmp_path):
    out = tmp_path / "runs"
    result = run_models("random", split_dir, embeddings=[None], seeds=[1, 2, 3], out_dir=out, mode="test", ks=(2,))
    assert [run.out_dir for run in result.runs] == [out / "none" / f"seed-{s}" for s in (1, 2, 3)]
    over = pd.read_csv(out / "none" / "over_seeds.csv").set_index(["metric", "k", "slice"])
    seed_means = [run.metrics.set_index(["metric", "k", "slice"]).loc[("NDCG", 2, "test"), "mean"]
                  for run in result.runs]
    assert over.loc[("NDCG", 2, "test"), "mean"] == pytest.approx(np.mean(seed_means))
    assert over.loc[("NDCG", 2, "test"), "n_seeds"] == 3

    both = run_models("knn", split_dir, embeddings=["toy", "onehot"], seeds=[0], out_dir=tmp_path / "e",
                      embeddings_dir=embeddings_dir, ks=(2,))
    assert [run.out_dir.parent.name for run in both.runs] == ["toy", "onehot"]
    assert both.runs[1].config["embedding"]["manifest"] == {"embedder": "onehot"}


def test_a_rerun_reuses_finished_runs(split_dir, tmp_path):
    out = tmp_path / "runs"
    first = run_models("random", split_dir, seeds=[1, 2], out_dir=out, mode="test", ks=(2,))
    stamp = (out / "none" / "seed-1" / "config.json").stat().st_mtime_ns
    (out / "none" / "seed-2" / "metrics.json").unlink()  # as if killed while writing seed 2
    second = run_models("random", split_dir, seeds=[1, 2], out_dir=out, mode="test", ks=(2,))
    assert (out / "none" / "seed-1" / "config.json").stat().st_mtime_ns == stamp  # not run again
    for a, b in zip(first.runs, second.runs):
        pd.testing.assert_frame_equal(a.per_user, b.per_user)
    changed = run_models("random", split_dir, seeds=[1], out_dir=out / "none" / "seed-1", mode="test", ks=(3,))
    assert changed.runs[0].config["ks"] == [3]  # another request: run again


def test_without_beyond_only_the_accuracy_metrics_are_scored(split_dir, embeddings_dir, tmp_path, capsys):
    full = _knn(split_dir, embeddings_dir, tmp_path / "full", mode=("val", "test"))
    accuracy = _knn(split_dir, embeddings_dir, tmp_path / "accuracy", mode=("val", "test"), beyond=False)
    assert accuracy.config["beyond"] is False and full.config["beyond"] is True
    assert set(accuracy.per_user["metric"]) == {"HitRate", "Precision", "Recall", "MRR", "NDCG"}
    assert set(accuracy.metrics["metric"]) == {"HitRate", "Precision", "Recall", "MRR", "NDCG"}
    # the same lists and the same accuracy values as the run that also scores beyond accuracy
    pd.testing.assert_frame_equal(pd.read_parquet(accuracy.out_dir / "recommendations.parquet"),
                                  pd.read_parquet(full.out_dir / "recommendations.parquet"))
    kept = full.per_user[full.per_user["metric"].isin(set(accuracy.per_user["metric"]))].reset_index(drop=True)
    pd.testing.assert_frame_equal(accuracy.per_user, kept)
    # a finished full run is reused for the same request, also one written before the switch existed ...
    config_path = full.out_dir / "config.json"
    config_path.write_text(json.dumps({k: v for k, v in json.loads(config_path.read_text()).items() if k != "beyond"}))
    stamp = config_path.stat().st_mtime_ns
    request = {"embeddings": ["toy"], "embeddings_dir": embeddings_dir, "mode": ("val", "test"), "ks": (1, 3)}
    run_models("knn", split_dir, out_dir=full.out_dir, **request)
    assert config_path.stat().st_mtime_ns == stamp
    # ... but not for an accuracy-only request
    again = run_models("knn", split_dir, out_dir=full.out_dir, beyond=False, **request).runs[0]
    assert "ILD" not in set(again.per_user["metric"]) and again.config["beyond"] is False
    assert _sonic("run-model", "--model-name", "knn", "--embedding", "toy", "--embeddings-dir", str(embeddings_dir),
                  "--split-dir", str(split_dir), "--mode", "test", "--k", "3", "--no-beyond",
                  "--out", str(tmp_path / "cli")) == 0
    assert "Coverage" not in capsys.readouterr().out
    assert set(pd.read_parquet(tmp_path / "cli" / "per_user.parquet")["metric"]) == {"HitRate", "Precision",
                                                                                      "Recall", "MRR", "NDCG"}


def test_shuffle_is_refused_for_a_model_without_content(split_dir, embeddings_dir, tmp_path):
    with pytest.raises(SonicError, match="^--shuffle is a control for content models; pop does not use"):
        run_model("pop", split_dir, embedding="toy", embeddings_dir=embeddings_dir, shuffle=True, out_dir=tmp_path)
    with pytest.raises(SonicError, match="^--shuffle permutes embeddings across tracks; knn was given no"):
        run_model("knn", split_dir, shuffle=True, out_dir=tmp_path / "r")


def test_shuffle_control_records_itself_and_changes_the_lists(split_dir, embeddings_dir, tmp_path):
    plain = _knn(split_dir, embeddings_dir, tmp_path / "plain", ks=(3,))
    control = _knn(split_dir, embeddings_dir, tmp_path / "shuffled", ks=(3,), shuffle=True, seed=3)
    assert control.config["shuffle"] is True
    plain_lists = pd.read_parquet(plain.out_dir / "recommendations.parquet")
    control_lists = pd.read_parquet(control.out_dir / "recommendations.parquet")
    assert not plain_lists["track_id"].equals(control_lists["track_id"])


def test_a_fusion_name_is_fused_or_refused_in_one_sentence(split_dir, embeddings_dir, tmp_path):
    if importlib.util.find_spec("sonic.tails.fusion") is None:
        with pytest.raises(SonicError, match=r"^embedding 'toy\+onehot' is a fusion, and this installation has no"):
            _knn(split_dir, embeddings_dir, tmp_path / "r", embedding="toy+onehot")
    else:
        result = _knn(split_dir, embeddings_dir, tmp_path / "r", embedding="toy+onehot")
        assert result.config["embedding"]["parts"] == ["toy", "onehot"]


@pytest.mark.parametrize("model_name", ["pop", "random"])
def test_baselines_run_without_an_embedding(split_dir, tmp_path, model_name):
    result = run_model(model_name, split_dir, mode="test", ks=(10,), out_dir=tmp_path / "run", seed=4)
    assert result.config["embedding"] is None and result.config["seed"] == 4 and result.config["modes"] == ["test"]
    assert result.report.n_users == 8
    assert result.report.means()["HitRate@10"] == 1.0  # 10 >= every unseen track
    assert "ILD" not in set(result.per_user["metric"])  # no embedding space given


def test_embedding_as_a_path(split_dir, embeddings_dir, tmp_path):
    result = run_model("knn", split_dir, embedding=embeddings_dir / "toy.parquet", ks=(2,), out_dir=tmp_path / "r")
    assert result.config["embedding"]["path"] == str(embeddings_dir / "toy.parquet")


def test_users_without_train_events_get_empty_lists_and_a_warning(split_dir, tmp_path):
    test = pd.read_parquet(split_dir / "test.parquet")
    extra = test.iloc[:1].assign(user_id="stranger")
    pd.concat([test, extra]).to_parquet(split_dir / "test.parquet", index=False)
    result = run_model("pop", split_dir, mode="test", ks=(2,), out_dir=tmp_path / "r")
    assert result.warnings == ("1 of 9 evaluated users have no train events (e.g. 'stranger'); "
                               "they get empty lists and score 0",)
    assert (tmp_path / "r" / "warnings.txt").read_text().startswith("1 of 9 evaluated users")
    values = result.per_user.query("user_id == 'stranger' and metric == 'HitRate'")["value"]
    assert values.tolist() == [0.0]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"model_name": "x"}, UnknownNameError, f"^unknown recommender 'x'; known: {KNOWN}$"),
        ({"model_name": "knn"}, SonicError, "^knn needs --embedding"),
        ({"model_name": "pop", "mode": "train"}, DataError, "has no train events to evaluate; it holds: cold_test, "),
        ({"model_name": "pop", "mode": "hot"}, DataError, "no hot events to evaluate; it holds: cold_test, test, val"),
        ({"model_name": "pop", "ks": (0,)}, SonicError, "k must be one or more positive integers"),
        ({"model_name": "pop", "mode": ()}, SonicError, "name at least one split file"),
        ({"model_name": "knn", "embedding": "mert"}, DataError, "embedding 'mert' is not a .parquet file"),
        ({"model_name": "knn", "embedding": "no.parquet"}, DataError, "embedding table 'no.parquet' does not exist"),
    ],
)
def test_bad_requests_raise_one_sonic_error(split_dir, tmp_path, kwargs, error, message):
    arguments = {"split_dir": split_dir, "out_dir": tmp_path / "run"} | kwargs
    with pytest.raises(error, match=message):
        run_model(arguments.pop("model_name"), arguments.pop("split_dir"), **arguments)
    assert not (tmp_path / "run").exists()


def test_unknown_embedding_name_lists_the_known_ones(split_dir, embeddings_dir, tmp_path):
    with pytest.raises(DataError, match=r"no embedding 'mert' in .*\(no mert.parquet\); known: onehot, toy$"):
        run_model("knn", split_dir, embedding="mert", embeddings_dir=embeddings_dir, out_dir=tmp_path / "run")


def test_an_out_folder_that_is_not_a_run_is_left_alone(split_dir, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(SonicError, match="holds 'notes.txt', which sonic did not write; give a new or empty folder"):
        run_model("pop", split_dir, out_dir=tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


# --- compare -------------------------------------------------------------------------------


def test_compare_runs_pairs_users_and_holm_corrects(split_dir, embeddings_dir, tmp_path):
    knn = _knn(split_dir, embeddings_dir, tmp_path / "knn", mode="test", ks=(1, 3))
    pop = run_model("pop", split_dir, mode="test", ks=(1, 3), out_dir=tmp_path / "pop")
    table = compare_runs([knn.out_dir, pop.out_dir])
    assert list(table.columns) == list(COMPARE_COLUMNS)
    assert len(table) == 10  # 5 metrics x 2 ks, one pair
    row = table.set_index(["metric", "k"]).loc[("HitRate", 3)]
    knn_values = knn.per_user.query("metric == 'HitRate' and k == 3").set_index("user_id")["value"]
    pop_values = pop.per_user.query("metric == 'HitRate' and k == 3").set_index("user_id")["value"]
    assert row["n_users"] == 8 and row["mean_a"] == pytest.approx(knn_values.mean())
    assert row["mean_diff"] == pytest.approx((knn_values - pop_values.loc[knn_values.index]).mean())
    from sonic.rouge.significance import holm

    np.testing.assert_allclose(table["t_p_holm"], holm(table["t_p"]))
    assert (table["wilcoxon_p_holm"] >= table["wilcoxon_p"] - 1e-15).all()

    only = compare_runs([knn.out_dir, pop.out_dir], metrics=["NDCG", "Novelty"], ks=[3])
    assert only[["metric", "k"]].values.tolist() == [["NDCG", 3], ["Novelty", 3]]


def test_compare_refuses_runs_on_different_splits(split_dir, embeddings_dir, tmp_path):
    a = run_model("pop", split_dir, mode="test", ks=(1,), out_dir=tmp_path / "a")
    settings = json.loads((split_dir / "split.json").read_text())
    settings["config"]["seed"] = 7
    (split_dir / "split.json").write_text(json.dumps(settings))
    b = run_model("pop", split_dir, mode="test", ks=(1,), out_dir=tmp_path / "b")
    with pytest.raises(SonicError, match="were evaluated on different splits"):
        compare_runs([a.out_dir, b.out_dir])
    with pytest.raises(DataError, match="is not a run folder"):
        compare_runs([a.out_dir, tmp_path])


# --- through the command line --------------------------------------------------------------


def _sonic(*arguments) -> int:
    """``sonic ARGUMENTS`` in this process; the exit status (typer exits even on success)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(arguments))
    return exit_info.value.code


def test_cli_run_model_and_compare_in_process(split_dir, embeddings_dir, tmp_path, capsys):
    common = ["--split-dir", str(split_dir), "--mode", "test", "--mode", "cold_test", "--k", "1", "--k", "3"]
    assert _sonic("run-model", "--model-name", "knn", "--embedding", "toy", "--embeddings-dir", str(embeddings_dir),
                  "--option", "catalogue=all", "--out", str(tmp_path / "knn"), *common) == 0
    printed = capsys.readouterr().out
    assert f"wrote {tmp_path / 'knn'}" in printed and "NDCG" in printed and "cold_test" in printed
    assert _sonic("run-model", "--model-name", "random", "--out", str(tmp_path / "random"), "--seed", "1", "--seed",
                  "2", *common) == 0
    printed = capsys.readouterr().out
    assert "mean over 2 seeds" in printed and (tmp_path / "random" / "none" / "over_seeds.csv").is_file()
    assert _sonic("compare", str(tmp_path / "knn"), str(tmp_path / "random" / "none" / "seed-1"), "--slice",
                  "cold_test", "--output", str(tmp_path / "cmp.csv")) == 0
    printed = capsys.readouterr().out
    assert "t_p_holm" in printed and "10 tests; p_holm" in printed
    assert len(pd.read_csv(tmp_path / "cmp.csv")) == 10
    # popularity cannot score a cold track: its cold slice is unable, and comparing there says so
    assert _sonic("run-model", "--model-name", "pop", "--out", str(tmp_path / "pop"), *common) == 0
    assert "unable" in capsys.readouterr().out
    assert _sonic("compare", str(tmp_path / "knn"), str(tmp_path / "pop"), "--slice", "cold_test") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{tmp_path / 'pop'} is unable on cold_test" in error


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--model-name", "x"], f"sonic: error: unknown recommender 'x'; known: {KNOWN}"),
        (["--model-name", "pop", "--split-dir", "missing"],
         "sonic: error: split folder 'missing' does not exist; write one with `sonic data-split`"),
        (["--model-name", "pop", "--option", "x"],
         "sonic: error: option 'x' is not key=value (e.g. --option catalogue=all)"),
        (["--model-name", "pop", "--option", "x=1"], "sonic: error: unknown option 'x' for pop; known: none"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(split_dir, tmp_path, capsys, arguments, message):
    defaults = {"--split-dir": str(split_dir), "--out": str(tmp_path / "run")}
    for flag, value in defaults.items():
        if flag not in arguments:
            arguments = [*arguments, flag, value]
    assert _sonic("run-model", *arguments) == 2
    captured = capsys.readouterr()
    assert captured.err == message + "\n"


def test_cli_entry_point_runs_cold_test(split_dir, embeddings_dir, tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "sonic", "run-model", "--model-name", "knn", "--embedding", "toy",
                           "--embeddings-dir", str(embeddings_dir), "--split-dir", str(split_dir), "--mode",
                           "cold_test", "--option", "catalogue=all", "--k", "3", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    metrics = pd.DataFrame(json.loads((out / "metrics.json").read_text())["metrics"]).set_index(["metric", "k"])
    assert metrics.loc[("HitRate", 3), "mean"] == 1.0


def test_later_slices_are_predicted_with_the_validation_events_as_history(tmp_path):
    # leave-last-out shape: every user has a val track and a later test track
    train = [(u, t) for u in ("u0", "u1", "u2") for t in ("t0", "t1")] + [("u3", "t2"), ("u3", "t3"), ("u4", "t3")]
    frames = {"train": train, "val": [("u0", "t2"), ("u1", "t3")], "test": [("u0", "t3"), ("u1", "t2")]}
    split = {}
    for name, pairs in frames.items():
        frame = pd.DataFrame(pairs, columns=["user_id", "track_id"])
        frame["timestamp"], frame["count"] = pd.Timestamp("2019-01-01"), np.int64(1)
        split[name] = frame
    folder = write_split(Split(config=SplitConfig("toy", None, "2019-01-15", None), **split), tmp_path / "split")
    result = run_model("pop", folder, mode=("val", "test"), ks=(1,), out_dir=tmp_path / "run")
    lists = pd.read_parquet(tmp_path / "run" / "recommendations.parquet")
    assert list(lists.columns) == ["user_id", "track_id", "rank", "score", "history"]
    by = lists.set_index(["user_id", "history"])["track_id"]
    # pop ranks t3 (2 listeners) above t2 (1): without history u0 gets t3; with its val track t2 as
    # history u1 (val t3) cannot get t3 again and gets t2, its test track
    assert by[("u0", False)] == "t3" and by[("u1", True)] == "t2"
    metrics = result.metrics.set_index(["metric", "k", "slice"])["mean"]
    assert metrics[("HitRate", 1, "test")] == 1.0  # u0: t3 (t2 is now seen), u1: t2
    assert metrics[("HitRate", 1, "val")] == 0.5  # u0: t3 is not its val track t2; u1: t3 is
