"""run_model end to end on a tiny split, in Python and through `python -m sonic run-model`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sonic.cream.data.split_files import write_split
from sonic.cream.data.splits import Split, SplitConfig
from sonic.errors import DataError, SonicError, UnknownNameError
from sonic.rouge.evaluate import evaluate
from sonic.rouge.run import RunResult, run_model
from sonic.tails.table import EmbeddingTable, write_embeddings

TRACKS = [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)]


@pytest.fixture
def split_dir(tmp_path):
    """u0..u3 like A tracks, v0..v3 like B tracks; each holds out one track of their group for val and test."""
    train, val, test = [], [], []
    for group, users in (("a", ["u0", "u1", "u2", "u3"]), ("b", ["v0", "v1", "v2", "v3"])):
        for i, user in enumerate(users):
            held_out = [f"{group}{i}", f"{group}{(i + 1) % 4}"]
            train += [(user, f"{group}{j}") for j in range(5) if f"{group}{j}" not in held_out]
            val.append((user, held_out[0]))
            test.append((user, held_out[1]))
    frames = {}
    for name, pairs in (("train", train), ("val", val), ("test", test)):
        frame = pd.DataFrame(pairs, columns=["user_id", "track_id"])
        frame["timestamp"] = pd.Timestamp("2019-01-01") if name == "train" else pd.Timestamp("2019-02-01")
        frame["count"] = np.int64(2)
        frames[name] = frame
    config = SplitConfig("toy", None, "2019-01-15", None)
    return write_split(Split(config=config, **frames), tmp_path / "split")


@pytest.fixture
def embeddings_dir(tmp_path):
    vectors = np.array([[1.0, 0.1 * i] for i in range(5)] + [[0.1 * i, 1.0] for i in range(5)], dtype=np.float32)
    directory = tmp_path / "embeddings"
    table = EmbeddingTable(np.array(TRACKS), vectors, {"embedder": "toy", "dim": 2})
    write_embeddings(table, directory / "toy.parquet")
    return directory


def test_run_model_writes_every_artifact(split_dir, embeddings_dir, tmp_path):
    result = run_model(
        "knn", split_dir, embedding="toy", embeddings_dir=embeddings_dir, mode="val", ks=(1, 3), out_dir=tmp_path / "r"
    )
    assert isinstance(result, RunResult)
    assert sorted(p.name for p in result.out_dir.iterdir()) == [
        "config.json", "metrics.csv", "metrics.json", "recommendations.parquet"
    ]  # fmt: skip

    config = json.loads(result.config_path.read_text())
    assert config["model"] == "knn" and config["mode"] == "val" and config["ks"] == [1, 3] and config["seed"] == 0
    assert config["embedding"]["manifest"] == {"embedder": "toy", "dim": 2}
    assert config["split"]["dir"] == str(split_dir) and config["split"]["config"]["protocol"] == "toy"
    assert "numpy" in config["versions"]

    recommendations = pd.read_parquet(result.recommendations_path)
    assert list(recommendations.columns) == ["user_id", "track_id", "rank", "score"]
    assert recommendations.groupby("user_id")["rank"].max().max() == 3
    val = pd.read_parquet(split_dir / "val.parquet")
    metrics = json.loads(result.metrics_path.read_text())
    assert metrics == evaluate(recommendations, val, ks=(1, 3)).means()
    # A user's only unseen same-group tracks are the two held out: knn must rank both first.
    assert metrics["HitRate@3"] == metrics["Recall@3"] == 1.0
    top_two = recommendations[recommendations["rank"] <= 2]
    assert len(top_two) == 16
    assert (top_two["track_id"].str[0] == top_two["user_id"].str[0].map({"u": "a", "v": "b"})).all()
    table = pd.read_csv(result.table_path)
    assert list(table.columns) == ["metric", "k", "mean", "ci_low", "ci_high", "n_users"]


@pytest.mark.parametrize("model_name", ["pop", "random"])
def test_baselines_run_without_an_embedding(split_dir, tmp_path, model_name):
    result = run_model(model_name, split_dir, mode="test", ks=(10,), out_dir=tmp_path / "run", seed=4)
    config = json.loads(result.config_path.read_text())
    assert config["embedding"] is None and config["seed"] == 4 and config["mode"] == "test"
    assert result.report.n_users == 8
    assert result.report.means()["HitRate@10"] == 1.0  # 10 >= every unseen track


def test_embedding_as_a_path(split_dir, embeddings_dir, tmp_path):
    result = run_model("knn", split_dir, embedding=embeddings_dir / "toy.parquet", ks=(2,), out_dir=tmp_path / "r")
    assert json.loads(result.config_path.read_text())["embedding"]["path"] == str(embeddings_dir / "toy.parquet")


KNOWN = "bert4rec, ease, elsa, knn, pop, random, snn"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"model_name": "x"}, UnknownNameError, f"^unknown recommender 'x'; known: {KNOWN}$"),
        ({"model_name": "knn"}, SonicError, "^knn needs --embedding"),
        ({"model_name": "pop", "mode": "train"}, SonicError, "mode must be 'val' or 'test', got 'train'"),
        ({"model_name": "pop", "ks": (0,)}, SonicError, "k must be one or more positive integers"),
        ({"model_name": "knn", "embedding": "mert"}, DataError, "embedding 'mert' is not a .parquet file"),
        ({"model_name": "knn", "embedding": "no.parquet"}, DataError, "embedding table 'no.parquet' does not exist"),
    ],
)
def test_bad_requests_raise_one_sonic_error(split_dir, tmp_path, kwargs, error, message):
    arguments = {"split_dir": split_dir, "out_dir": tmp_path / "run"} | kwargs
    with pytest.raises(error, match=message):
        run_model(arguments.pop("model_name"), arguments.pop("split_dir"), **arguments)


def test_unknown_embedding_name_lists_the_known_ones(split_dir, embeddings_dir, tmp_path):
    with pytest.raises(DataError, match=r"no embedding 'mert' in .*\(no mert.parquet\); known: toy$"):
        run_model("knn", split_dir, embedding="mert", embeddings_dir=embeddings_dir, out_dir=tmp_path / "run")


def test_split_dir_without_the_mode_file(split_dir, tmp_path):
    (split_dir / "test.parquet").unlink()
    with pytest.raises(DataError, match=r"split folder '.*' has no test.parquet, which toy splits need"):
        run_model("pop", split_dir, mode="test", out_dir=tmp_path / "run")


# --- through the command line --------------------------------------------------------------


def sonic(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sonic", *arguments], capture_output=True, text=True, timeout=120)


def test_cli_run_model(split_dir, embeddings_dir, tmp_path):
    out = tmp_path / "run"
    done = sonic("run-model", "--model-name", "knn", "--embedding", "toy", "--embeddings-dir", str(embeddings_dir),
                 "--split-dir", str(split_dir), "--mode", "test", "--k", "1", "--k", "3",
                 "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stdout and "NDCG" in done.stdout
    assert json.loads((out / "metrics.json").read_text())["HitRate@3"] == 1.0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--model-name", "x"], f"sonic: error: unknown recommender 'x'; known: {KNOWN}"),
        (["--model-name", "pop", "--split-dir", "missing"], "sonic: error: split folder 'missing' does not exist; write one with `sonic data-split`"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(split_dir, tmp_path, arguments, message):
    defaults = {"--split-dir": str(split_dir), "--out": str(tmp_path / "run")}
    for flag, value in defaults.items():
        if flag not in arguments:
            arguments = [*arguments, flag, value]
    done = sonic("run-model", *arguments)
    assert done.returncode == 2
    assert done.stderr == message + "\n"
    assert "Traceback" not in done.stdout + done.stderr
