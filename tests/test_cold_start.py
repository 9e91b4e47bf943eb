"""Cold start: content models rank tracks nobody played (a cold copy of a played track ranks high); the
collaborative models are unable on the cold test, recorded as such; the candidate set is explicit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sonic.cream.data.split_files import write_split
from sonic.cream.data.splits import Split, SplitConfig
from sonic.rouge.base import RECOMMENDERS, load_recommender
from sonic.rouge.run import read_run, run_model
from sonic.tails.table import EmbeddingTable, write_embeddings

N_CLUSTERS, TRACKS_PER_CLUSTER, USERS_PER_CLUSTER, PLAYED, DIM = 6, 10, 8, 6, 16
#: Content models and the options that train them quickly on the toy data.
CONTENT = {
    "knn": {},
    "snn": {"max_epochs": 60, "patience": 60, "batch_size": 64, "hidden": 16},
    "bert4rec frozen": {"items": "frozen", "hidden": 16, "layers": 1, "heads": 1, "max_len": 12, "max_epochs": 40,
                        "patience": 40, "dropout": 0.0, "batch_size": 16},
    "bert4rec trainable": {"items": "trainable", "hidden": 16, "layers": 1, "heads": 1, "max_len": 12,
                           "max_epochs": 40, "patience": 40, "dropout": 0.0, "batch_size": 16},
}


def clustered(seed: int = 0):
    """Train events and a table: user ``c<i>u<j>`` plays ``PLAYED`` of the ``TRACKS_PER_CLUSTER`` tracks of cluster
    i, in time order; tracks are their cluster's centre plus small noise. The table also holds one cold copy per
    cluster, ``cold-<track>``: the vector of a track the cluster's first user played, a new id, never in train."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(N_CLUSTERS, DIM)) * 3
    ids, vectors, rows = [], [], []
    copies = {}
    for cluster in range(N_CLUSTERS):
        tracks = [f"c{cluster}t{t}" for t in range(TRACKS_PER_CLUSTER)]
        ids += tracks
        vectors += list(centres[cluster] + rng.normal(scale=0.3, size=(TRACKS_PER_CLUSTER, DIM)))
        for user in range(USERS_PER_CLUSTER):
            played = rng.choice(TRACKS_PER_CLUSTER, size=PLAYED, replace=False)
            for order, track in enumerate(played):
                rows.append((f"c{cluster}u{user}", tracks[track], pd.Timestamp("2019-01-01") + pd.Timedelta(hours=order)))
            if user == 0:
                copies[f"c{cluster}u0"] = tracks[played[0]]
    train = pd.DataFrame(rows, columns=["user_id", "track_id", "timestamp"]).assign(count=np.int64(1))
    table_vectors = np.array(vectors, dtype=np.float32)
    cold_ids = [f"cold-{track}" for track in copies.values()]
    cold_vectors = table_vectors[[ids.index(track) for track in copies.values()]]
    table = EmbeddingTable(np.array(ids + cold_ids), np.vstack([table_vectors, cold_vectors]), {"embedder": "toy"})
    return train, table, copies


def fitted(kind: str, train, table, **options):
    name = kind.split()[0]
    model = RECOMMENDERS.create(name, **(CONTENT[kind] | options))
    # snn's early stopping watches a loss on some pairs (training sees all of train); bert4rec's watches NDCG@10
    # of tracks not yet heard, which these train tracks never are, so it trains its max_epochs without one
    validation = train.groupby("user_id").tail(1) if name == "snn" else None
    return model.fit(train, validation=validation, item_embeddings=table, seed=0, device="cpu")


@pytest.mark.parametrize("kind", list(CONTENT))
def test_a_cold_copy_of_a_played_track_ranks_in_the_users_top_10(kind):
    if kind != "knn":
        pytest.importorskip("torch")
    train, table, copies = clustered()
    model = fitted(kind, train, table)
    assert model.cold_start
    users = sorted(copies)
    candidates = np.sort(table.track_ids)  # every track: the train catalogue and the cold copies
    ids, scores = model.recommend(users, 10, candidates=candidates)
    for row, user in enumerate(users):
        assert f"cold-{copies[user]}" in list(ids[row]), (kind, user, list(ids[row]))
        assert not set(ids[row]) & set(train.loc[train["user_id"] == user, "track_id"])  # seen tracks excluded
    # among the cold copies alone, the user's own cluster's copy comes first
    cold_only, _ = model.recommend(users, 1, candidates=[f"cold-{track}" for track in copies.values()])
    assert [ids[0] for ids in cold_only] == [f"cold-{copies[user]}" for user in users]
    # without candidates the model ranks its train catalogue, which has no cold track
    plain, _ = model.recommend(users, 10)
    assert not any(str(track).startswith("cold-") for track in plain.ravel() if track is not None)


@pytest.mark.parametrize("kind", [kind for kind in CONTENT if kind != "bert4rec trainable"])
def test_a_cold_copy_is_scored_like_its_original(kind):
    """The documented tolerance: knn and snn score a cold copy exactly as its original (float32 rounding), so it
    ranks beside it; frozen bert4rec gives the copy its content score with the mean of the train tracks'
    output biases in place of the original's own; trainable bert4rec is left out (its train tracks' vectors
    moved in training, the copy keeps the table's)."""
    if kind != "knn":
        pytest.importorskip("torch")
    train, table, copies = clustered()
    model = fitted(kind, train, table)
    users = sorted(copies)
    originals = list(copies.values())
    candidates = np.array(originals + [f"cold-{track}" for track in originals], dtype=object)
    ids, scores = model.recommend(users, len(candidates), exclude_seen=False, candidates=candidates)
    shift = np.zeros(len(originals))
    if kind.startswith("bert4rec"):
        bias = model._net.bias.detach().numpy()
        shift = bias.mean() - bias[np.searchsorted(model._seen.track_ids.astype(str), originals)]
    for row in range(len(users)):
        score = dict(zip(ids[row], scores[row]))
        rank = {track: position for position, track in enumerate(ids[row])}
        for track, offset in zip(originals, shift):
            assert score[f"cold-{track}"] == pytest.approx(score[track] + offset, abs=1e-5), (kind, track)
            if kind in ("knn", "snn"):
                assert abs(rank[f"cold-{track}"] - rank[track]) == 1  # side by side


@pytest.mark.parametrize("kind", list(CONTENT))
def test_a_saved_content_model_still_ranks_cold_tracks(kind, tmp_path):
    if kind != "knn":
        pytest.importorskip("torch")
    train, table, copies = clustered()
    model = fitted(kind, train, table, **({"max_epochs": 3} if kind != "knn" else {}))
    users, candidates = sorted(copies), np.sort(table.track_ids)
    before = model.recommend(users, 10, candidates=candidates)
    model.save(tmp_path / "model")
    after = load_recommender(tmp_path / "model").recommend(users, 10, candidates=candidates)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_allclose(before[1], after[1], rtol=1e-5)


def test_candidates_without_a_vector_are_left_out_and_random_ranks_any_candidate():
    train, table, copies = clustered()
    knn = RECOMMENDERS.create("knn").fit(train, item_embeddings=table)
    ids, _ = knn.recommend(["c0u0"], 5, candidates=["no-such-track", f"cold-{copies['c0u0']}"])
    assert list(ids[0][:2]) == [f"cold-{copies['c0u0']}", None]
    random = RECOMMENDERS.create("random").fit(train, seed=3)
    assert random.cold_start
    ids, _ = random.recommend(["c0u0", "c1u1"], 3, candidates=["x", "y", "z", "c0t0"])
    assert set(ids[1]) <= {"x", "y", "z", "c0t0"} and None not in set(ids[1])
    played = set(train.loc[train["user_id"] == "c0u0", "track_id"])
    assert not set(ids[0]) & played


@pytest.mark.parametrize("name", ["pop", "ease"])
def test_collaborative_models_say_they_cannot_score_a_cold_track(name):
    assert RECOMMENDERS.create(name).cold_start is False


def test_elsa_cannot_score_a_cold_track():
    pytest.importorskip("torch")
    assert RECOMMENDERS.create("elsa").cold_start is False


@pytest.fixture
def split_and_table(tmp_path):
    """The clustered data as a split folder: val/test hold one more track of the user's cluster, the cold test
    the cold copy (for the first user of each cluster)."""
    train, table, copies = clustered()
    last = train.sort_values("timestamp").groupby("user_id").tail(1)
    val = last[last["user_id"].str.endswith(("u1", "u2", "u3"))]
    test = last[~last.index.isin(val.index)]
    train = train.drop(index=last.index)
    cold = pd.DataFrame({"user_id": list(copies), "track_id": [f"cold-{t}" for t in copies.values()]})
    cold = cold.assign(timestamp=pd.Timestamp("2019-02-01"), count=np.int64(1))
    config = SplitConfig("toy", None, "2019-01-15", None, keep_cold=True)
    split_dir = write_split(Split(train=train, val=val, test=test, cold_test=cold, config=config), tmp_path / "split")
    write_embeddings(table, tmp_path / "embeddings" / "toy.parquet")
    return split_dir, tmp_path / "embeddings"


@pytest.mark.parametrize("rule", ["cold", "all"])
def test_run_model_records_each_slices_candidates_and_marks_unable_models(split_and_table, tmp_path, rule):
    split_dir, embeddings = split_and_table
    modes = ("val", "test", "cold_test")
    knn = run_model("knn", split_dir, embedding="toy", embeddings_dir=embeddings, mode=modes, ks=(1, 10),
                    out_dir=tmp_path / "knn", cold_candidates=rule)
    slices = json.loads((tmp_path / "knn" / "config.json").read_text())["slices"]
    n_tracks = N_CLUSTERS * TRACKS_PER_CLUSTER
    assert slices["val"] == {"candidates": "train", "status": "scored", "n_candidates": n_tracks}
    assert slices["test"]["candidates"] == "train"
    expected = N_CLUSTERS if rule == "cold" else n_tracks + N_CLUSTERS
    assert slices["cold_test"] == {"candidates": rule, "status": "scored", "n_candidates": expected,
                                   "n_candidates_scorable": expected}
    hit = knn.metrics.set_index(["metric", "k", "slice"])["mean"]
    assert hit[("HitRate", 10, "cold_test")] == 1.0  # the copy of a played track is among the top 10
    recommendations = pd.read_parquet(tmp_path / "knn" / "recommendations.parquet")
    cold_lists = recommendations[recommendations["candidates"] == rule]
    if rule == "cold":
        assert cold_lists["track_id"].str.startswith("cold-").all()
    assert not recommendations.loc[recommendations["candidates"] == "train", "track_id"].str.startswith("cold-").any()

    pop = run_model("pop", split_dir, mode=modes, ks=(1, 10), out_dir=tmp_path / "pop", cold_candidates=rule)
    assert pop.config["slices"]["cold_test"]["status"] == "unable"
    cold_rows = pop.metrics[pop.metrics["slice"] == "cold_test"]
    assert len(cold_rows) and (cold_rows["status"] == "unable").all() and cold_rows["mean"].isna().all()
    assert (pop.metrics.loc[pop.metrics["slice"] != "cold_test", "status"] == "scored").all()
    assert "cold_test" not in set(pop.per_user["slice"]) and pop.slices == ["val", "test"]
    again = read_run(tmp_path / "pop")  # the run folder reads back with its unable slice
    assert again.slices == ["val", "test"] and set(again.reports) == {"val", "test"}
    assert (again.metrics.loc[again.metrics["slice"] == "cold_test", "status"] == "unable").all()

    random = run_model("random", split_dir, mode=modes, ks=(1, 10), out_dir=tmp_path / "random", cold_candidates=rule)
    assert random.config["slices"]["cold_test"]["status"] == "scored"
    chance = random.metrics.set_index(["metric", "k", "slice"])["mean"][("HitRate", 1, "cold_test")]
    assert chance < 1.0


def test_cold_candidates_must_be_cold_or_all(split_and_table, tmp_path):
    from sonic.errors import SonicError

    split_dir, _ = split_and_table
    with pytest.raises(SonicError, match="cold candidates must be one of cold, all, got 'hot'"):
        run_model("pop", split_dir, mode="cold_test", out_dir=tmp_path / "r", cold_candidates="hot")
