"""sonic recommend: a saved run's lists, with no retraining, equal to the run's own and to the fitted model's.

One small generated split (leave-last-out shaped: val is each evaluated user's second-to-last track,
test their last) and a clustered embedding table; every model is fitted once by run_model (which saves
it) and once here in the test's process with the same inputs and seed. Users of four kinds:

- ``both``: in val and test (the run listed them twice; its test list used their val events as history)
- ``val_only``: in val only; ``test_only``: in test only, without val events
- ``train_only``: train users the run never evaluated
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from cli_runner import sonic

from sonic.cream.data.split_files import write_split
from sonic.cream.data.splits import Split, SplitConfig
from sonic.errors import DataError, SonicError
from sonic.rouge import RECOMMENDERS, load_run
from sonic.rouge.run import run_model
from sonic.tails.table import EmbeddingTable, read_embeddings, write_embeddings

GROUPS, TRACKS_PER_GROUP, DIM = 4, 12, 8
USERS = {"both": [f"b{i}" for i in range(8)], "val_only": [f"v{i}" for i in range(4)],
         "test_only": [f"t{i}" for i in range(4)], "train_only": [f"r{i}" for i in range(6)]}  # fmt: skip
MODELS = {
    "knn": {},
    "snn": {"max_epochs": 4, "threads": 1, "negatives": 5},
    "bert4rec": {"hidden": 16, "layers": 1, "heads": 1, "max_len": 12, "max_epochs": 3, "threads": 1},
    "ease": {"l2": 10.0},
    "elsa": {"factors": 8, "epochs": 3, "threads": 1},
    "pop": {},
    "random": {},
}
CONTENT = {"knn", "snn", "bert4rec"}
K = 10


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(split folder, embedding table path, {kind: users}) of one generated study."""
    root = tmp_path_factory.mktemp("serve")
    rng = np.random.default_rng(7)
    tracks = [f"g{g}_{i:02d}" for g in range(GROUPS) for i in range(TRACKS_PER_GROUP)]
    centres = rng.standard_normal((GROUPS, DIM))
    vectors = np.repeat(centres, TRACKS_PER_GROUP, axis=0) + 0.4 * rng.standard_normal((len(tracks), DIM))
    table_path = write_embeddings(EmbeddingTable(np.array(tracks), vectors.astype(np.float32),
                                                 {"embedder": "toy", "dim": DIM}), root / "emb" / "toy.parquet")
    parts = {"train": [], "val": [], "test": []}
    start = pd.Timestamp("2020-01-01")
    for kind, users in USERS.items():
        for n, user in enumerate(users):
            group = n % GROUPS
            own = [t for t in tracks if t.startswith(f"g{group}_")]
            other = [t for t in tracks if not t.startswith(f"g{group}_")]
            listened = list(rng.choice(own, 7, replace=False)) + list(rng.choice(other, 2, replace=False))
            rng.shuffle(listened)
            times = start + pd.to_timedelta(np.sort(rng.choice(10_000, len(listened), replace=False)), unit="min")
            events = list(zip([user] * len(listened), listened, times))
            held = {"both": 2, "val_only": 1, "test_only": 1, "train_only": 0}[kind]
            parts["train"] += events[: len(events) - held]
            if kind in ("both", "val_only"):
                parts["val"].append(events[len(events) - held])
            if kind in ("both", "test_only"):
                parts["test"].append(events[-1])
    frames = {}
    for name, rows in parts.items():
        frame = pd.DataFrame(rows, columns=["user_id", "track_id", "timestamp"])
        frame["count"] = np.int64(1)
        frames[name] = frame
    split = write_split(Split(config=SplitConfig("leave-last-out", None, None, None), **frames), root / "split")
    return split, table_path, USERS


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """{model: (run folder, the model fitted in this process)}."""
    split, table_path, _ = data
    root = tmp_path_factory.mktemp("runs")
    train = pd.read_parquet(split / "train.parquet")
    val = pd.read_parquet(split / "val.parquet")
    table = read_embeddings(table_path)
    fitted = {}
    for name, options in MODELS.items():
        embedding = table_path if name in CONTENT else None
        result = run_model(name, split, embedding=embedding, mode=("val", "test"), ks=(K,), out_dir=root / name,
                           seed=3, options=options)
        model = RECOMMENDERS.create(name, **options).fit(train, validation=val, item_embeddings=table if embedding
                                                         else None, seed=3)  # fmt: skip
        fitted[name] = (result.out_dir, model)
    return fitted


def run_lists(run_dir, users, *, history: bool | None) -> dict[str, list[str]]:
    """The run's own top-K of ``users`` from its recommendations.parquet (the lists made with or without history)."""
    lists = pd.read_parquet(run_dir / "recommendations.parquet")
    if history is not None and "history" in lists.columns:
        lists = lists[lists["history"] == history]
    lists = lists[lists["user_id"].isin(users)].sort_values(["user_id", "rank"])
    return {user: list(group["track_id"]) for user, group in lists.groupby("user_id")}


def as_lists(frame: pd.DataFrame) -> dict[str, list[str]]:
    frame = frame.sort_values(["user_id", "rank"])
    return {user: list(group["track_id"]) for user, group in frame.groupby("user_id")}


def model_lists(model, users) -> dict[str, list[str]]:
    ids, _ = model.recommend(list(users), K)
    return {user: [t for t in row if t is not None] for user, row in zip(users, ids)}


@pytest.mark.parametrize("name", list(MODELS))
def test_evaluated_users_get_the_runs_own_lists(name, runs, data):
    run_dir, _ = runs[name]
    users = data[2]
    served = load_run(run_dir)
    both, val_only, test_only = users["both"][:3], users["val_only"][:3], users["test_only"][:3]
    # the run listed `both` users twice; the list a user gets now is the one made with their val events
    assert as_lists(served.recommend(both, K)) == run_lists(run_dir, both, history=True)
    assert as_lists(served.recommend(val_only, K)) == run_lists(run_dir, val_only, history=False)
    assert as_lists(served.recommend(test_only, K)) == run_lists(run_dir, test_only, history=True)
    assert as_lists(served.recommend(both, K, val_history="never")) == run_lists(run_dir, both, history=False)


@pytest.mark.parametrize("name", list(MODELS))
def test_train_users_never_evaluated_get_the_fitted_models_lists(name, runs, data):
    run_dir, model = runs[name]
    evaluated = data[2]["both"][:3] + data[2]["val_only"][:3]
    # the fit in this process is the run's fit (same inputs, same seed): it gives the run's lists...
    assert model_lists(model, data[2]["val_only"]) == run_lists(run_dir, data[2]["val_only"], history=None)
    # ...so the saved model read back must give the fitted model's lists to users the run never listed
    users = data[2]["train_only"][:3]
    frame = load_run(run_dir).recommend(users, K)
    assert as_lists(frame) == model_lists(model, users)
    assert list(frame.columns) == ["user_id", "track_id", "rank", "score"]
    assert not set(users) & set(evaluated)
    ids, scores = model.recommend(users, K)
    got = frame.sort_values(["user_id", "rank"])["score"].to_numpy()
    assert got == pytest.approx(scores[pd.notna(ids)].astype(np.float32), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", ["knn", "bert4rec", "ease", "elsa", "pop"])
def test_a_users_own_train_history_gives_their_list(name, runs, data):
    """knn, bert4rec, ease, elsa and pop form a listener from a history exactly as fit forms a train user."""
    run_dir, _ = runs[name]
    split = data[0]
    served = load_run(run_dir)
    users = data[2]["train_only"][:2] + data[2]["both"][:2]
    train = pd.read_parquet(split / "train.parquet")
    history = train[train["user_id"].isin(users)].assign(user_id=lambda f: "new-" + f["user_id"])
    from_history = served.recommend_history(history, K)
    expected = as_lists(served.recommend(users, K, val_history="never"))
    assert as_lists(from_history) == {f"new-{user}": tracks for user, tracks in expected.items()}
    assert not from_history.attrs["warnings"]


def test_snn_forms_a_new_listener_without_training(runs, data):
    import torch

    run_dir, _ = runs["snn"]
    served = load_run(run_dir)
    before = {key: value.clone() for key, value in served.model._net.state_dict().items()}
    history = pd.DataFrame({"user_id": ["new"] * 3, "track_id": ["g0_00", "g0_01", "g0_02"]})
    frame = served.recommend_history(history, K)
    assert len(frame) == K and not set(frame["track_id"]) & set(history["track_id"])
    assert all(torch.equal(before[key], value) for key, value in served.model._net.state_dict().items())
    # the listener is the mean of its tracks' standardised vectors through the shared layer (module docstring)
    net = served.model._net
    rows = [list(served.model._seen.track_ids).index(track) for track in history["track_id"]]
    with torch.no_grad():
        user = torch.nn.functional.normalize(torch.relu(net.shared(net.items[rows].mean(0, keepdim=True))), dim=-1)
        cosines = (user @ net.item_space().T)[0].numpy()
    cosines[rows] = -np.inf
    best = served.model._seen.track_ids[np.argsort(-cosines, kind="stable")[:K]]
    assert list(frame.sort_values("rank")["track_id"]) == list(best)


def test_history_tracks_outside_the_catalogue_are_named(runs):
    served = load_run(runs["knn"][0])
    history = pd.DataFrame({"user_id": ["x", "x", "y"], "track_id": ["g1_00", "nowhere", "nowhere"]})
    frame = served.recommend_history(history, 5)
    assert set(frame["user_id"]) == {"x"}
    assert frame.attrs["warnings"] == [
        "1 track of the listening history is not in the model's catalogue; left out",
        "no list for 1 listener: none of their history tracks is in the catalogue",
    ]
    with pytest.raises(DataError, match="none of the 1 tracks of the listening history"):
        served.recommend_history(history[history["track_id"] == "nowhere"], 5)
    with pytest.raises(SonicError, match="random cannot recommend from a listening history; models that can: "):
        load_run(runs["random"][0]).recommend_history(history, 5)


def test_an_unknown_user_is_one_sentence(runs):
    served = load_run(runs["ease"][0])
    with pytest.raises(DataError, match=r"user 'stranger' is not one of the 22 train users of run '.*ease'; "
                                        r"for a new listener give their listening history \(--history FILE\)"):
        served.recommend(["b0", "stranger"], K)


def test_a_moved_split_is_one_sentence_and_can_be_given(runs, data, tmp_path):
    run_dir, _ = runs["knn"]
    moved_run = shutil.copytree(run_dir, tmp_path / "run")
    config = json.loads((moved_run / "config.json").read_text())
    config["split"]["dir"] = str(tmp_path / "gone")
    (moved_run / "config.json").write_text(json.dumps(config))
    served = load_run(moved_run)
    # users the run scored from train alone need no split...
    assert as_lists(served.recommend(["r0"], K)) == as_lists(load_run(run_dir).recommend(["r0"], K))
    # ...users it scored with their validation events do
    with pytest.raises(DataError, match="was fitted on split folder '.*gone', which is not there; give its new place"):
        served.recommend(["b0"], K)
    again = load_run(moved_run, split_dir=data[0])
    assert as_lists(again.recommend(["b0"], K)) == run_lists(run_dir, ["b0"], history=True)
    other = shutil.copytree(data[0], tmp_path / "other")
    settings = json.loads((other / "split.json").read_text())
    settings["config"]["seed"] = 99
    (other / "split.json").write_text(json.dumps(settings))
    with pytest.raises(DataError, match="is not the split of run"):
        load_run(moved_run, split_dir=other).recommend(["b0"], K)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(DataError, match="is not a run folder"):
        load_run(tmp_path)


# ------------------------------------------------------------------------------------------------ CLI


def test_recommend_command_writes_lists_and_refuses_a_foreign_file(runs, data, tmp_path):
    run_dir, model = runs["knn"]
    out = tmp_path / "lists.parquet"
    result = sonic("recommend", run_dir, "--user", "r0", "--user", "b1", "--k", "5", "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"wrote 10 recommendations for 2 users to {out}" in result.stdout
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["user_id", "track_id", "rank", "score"]
    assert as_lists(frame) == {**{u: t[:5] for u, t in run_lists(run_dir, ["b1"], history=True).items()},
                               "r0": model_lists(model, ["r0"])["r0"][:5]}  # fmt: skip
    manifest = json.loads((tmp_path / "lists.manifest.json").read_text())
    assert manifest["artifact"] == "recommendations" and manifest["model"] == "knn" and manifest["file"] == out.name
    # sonic's own earlier output is replaced; a file sonic did not write is not
    users_file = tmp_path / "users.csv"
    pd.DataFrame({"user_id": ["r1", "r2"]}).to_csv(users_file, index=False)
    assert sonic("recommend", run_dir, "--users", users_file, "--out", out).returncode == 0
    assert set(pd.read_parquet(out)["user_id"]) == {"r1", "r2"}
    foreign = tmp_path / "mine.csv"
    foreign.write_text("precious\n")
    refused = sonic("recommend", run_dir, "--user", "r0", "--out", foreign)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == (f"sonic: error: '{foreign}' exists and was not written by sonic as "
                                      "recommendations; choose another --out (nothing was changed)")
    assert foreign.read_text() == "precious\n"


def test_recommend_command_from_a_history_file(runs, data, tmp_path):
    run_dir, _ = runs["knn"]
    train = pd.read_parquet(data[0] / "train.parquet")
    history = tmp_path / "history.csv"
    train[train["user_id"] == "r3"].to_csv(history, index=False)
    out = tmp_path / "lists.csv"
    result = sonic("recommend", run_dir, "--history", history, "--out", out)
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(out, dtype={"user_id": str, "track_id": str})
    assert as_lists(frame) == as_lists(load_run(run_dir).recommend(["r3"], K))
    no_time = tmp_path / "history.parquet"
    train[train["user_id"] == "r3"][["user_id", "track_id"]].to_parquet(no_time)
    assert sonic("recommend", run_dir, "--history", no_time, "--out", out).returncode == 0
    assert as_lists(pd.read_csv(out, dtype={"user_id": str, "track_id": str})) == as_lists(frame)
    stray = tmp_path / "stray.csv"
    pd.DataFrame({"user_id": ["n", "n"], "track_id": ["g0_00", "elsewhere"]}).to_csv(stray, index=False)
    warned = sonic("recommend", run_dir, "--history", stray, "--k", "3", "--out", out)
    assert warned.returncode == 0 and "wrote 3 recommendations for 1 user to" in warned.stdout
    assert warned.stderr == "sonic: warning: 1 track of the listening history is not in the model's catalogue; left out\n"


def test_recommend_command_mistakes_are_one_sentence(runs, tmp_path):
    run_dir, _ = runs["knn"]
    out = tmp_path / "x.parquet"
    cases = {
        ("--user", "stranger"): "user 'stranger' is not one of the 22 train users",
        (): "name the users to recommend for",
        ("--user", "r0", "--val-history", "sometimes"): "val_history must be one of auto, always, never",
    }
    for arguments, message in cases.items():
        result = sonic("recommend", run_dir, *arguments, "--out", out)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    wrong_suffix = sonic("recommend", run_dir, "--user", "r0", "--out", tmp_path / "x.json")
    assert wrong_suffix.returncode == 2 and "must end in .parquet or .csv" in wrong_suffix.stderr
    assert not out.exists()
