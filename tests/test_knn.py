"""knn's weighting options, its two search paths, and save/load, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonic.errors import DataError, SonicError
from sonic.rouge.base import RECOMMENDERS
from sonic.rouge.models.knn import KNNRecommender
from sonic.tails.table import EmbeddingTable

# Heard tracks a = e1 and b = e2; candidates c = (1, 0, 1), d = (0, 1, 1).
TABLE = EmbeddingTable(
    np.array(["a", "b", "c", "d", "z"]),
    np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 1, 1], [0, 0, 1]], dtype=np.float32),
)
DAY0, DAY10 = pd.Timestamp("2019-01-01"), pd.Timestamp("2019-01-11")


def _train(rows):
    return pd.DataFrame(rows, columns=["user_id", "track_id", "timestamp", "count"])


# u plays a 10 times (one row) and b once; w (another user) makes c, d, z part of the catalogue.
TRAIN = _train([("u", "a", DAY0, 10), ("u", "b", DAY10, 1), ("w", "c", DAY0, 1), ("w", "d", DAY0, 1),
                ("w", "z", DAY0, 1)])


def _cosine(user, track):
    user, track = np.asarray(user, float), np.asarray(track, float)
    return user @ track / np.linalg.norm(user) / np.linalg.norm(track)


@pytest.mark.parametrize(
    ("options", "user_vector"),
    [
        ({}, [1, 1, 0]),  # plain mean of e1 and e2
        ({"count_weight": "count"}, [10, 1, 0]),
        ({"count_weight": "log"}, [1 + np.log(10), 1, 0]),
        ({"recency_half_life_days": 10.0}, [0.5, 1, 0]),  # a is 10 days older than u's last event
        ({"recency_half_life_days": 5.0, "count_weight": "count"}, [10 * 0.25, 1, 0]),
    ],
)
def test_weighting_gives_the_hand_computed_user_vector(options, user_vector):
    ids, scores = RECOMMENDERS.create("knn", **options).fit(TRAIN, item_embeddings=TABLE).recommend(["u"], 3)
    expected = {t: _cosine(user_vector, TABLE.vectors[i]) for i, t in enumerate(TABLE.track_ids) if t in "cdz"}
    order = sorted(expected, key=lambda t: -expected[t])
    assert ids[0].tolist() == order
    np.testing.assert_allclose(scores[0], [expected[t] for t in order], atol=1e-6)


def test_counts_add_up_over_repeated_rows_of_a_raw_log():
    raw = _train([("u", "a", DAY0, 1)] * 3 + [("u", "b", DAY0, 1)] + list(TRAIN.iloc[2:].itertuples(index=False)))
    ids, scores = RECOMMENDERS.create("knn", count_weight="count").fit(raw, item_embeddings=TABLE).recommend(["u"], 1)
    assert ids[0, 0] == "c"
    assert scores[0, 0] == pytest.approx(_cosine([3, 1, 0], [1, 0, 1]), abs=1e-6)


def test_recency_needs_timestamps():
    with pytest.raises(DataError, match="timestamp"):
        RECOMMENDERS.create("knn", recency_half_life_days=3.0).fit(TRAIN.drop(columns="timestamp"),
                                                                   item_embeddings=TABLE)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"count_weight": "plays"}, "count_weight must be one of none, count, log, got 'plays'"),
        ({"recency_half_life_days": 0}, "recency_half_life_days must be a positive number"),
        ({"search": "annoy"}, "search must be one of auto, dense, faiss"),
        ({"max_block_mb": 0}, "max_block_mb must be a positive integer"),
    ],
)
def test_bad_options_are_one_sentence(options, message):
    with pytest.raises(SonicError, match=message):
        RECOMMENDERS.create("knn", **options)


def _random_case(seed=5, n_users=60, n_tracks=300, dim=8):
    rng = np.random.default_rng(seed)
    train = pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, n_users, 2500)],
                          "track_id": [f"t{t}" for t in rng.integers(0, n_tracks, 2500)],
                          "count": rng.integers(1, 20, 2500)})
    table = EmbeddingTable(np.array([f"t{t}" for t in range(n_tracks)]),
                           rng.normal(size=(n_tracks, dim)).astype(np.float32))
    return train, table, sorted(train["user_id"].unique())


@pytest.mark.parametrize("exclude_seen", [True, False])
def test_dense_and_faiss_search_agree(exclude_seen):
    train, table, users = _random_case()
    lists = {}
    for search in ("dense", "faiss"):
        model = RECOMMENDERS.create("knn", search=search, batch_size=16, count_weight="log")
        lists[search] = model.fit(train, item_embeddings=table).recommend(users, 20, exclude_seen=exclude_seen)
        assert model.describe()["search"] == search
    np.testing.assert_array_equal(lists["dense"][0], lists["faiss"][0])
    np.testing.assert_allclose(lists["dense"][1], lists["faiss"][1], atol=1e-5)


def test_auto_search_falls_back_to_faiss_when_a_dense_block_is_too_large():
    train, table, _ = _random_case()
    small = RECOMMENDERS.create("knn", batch_size=512, max_block_mb=1).fit(train, item_embeddings=table)
    assert small.describe()["search"] == "dense"  # 512 users x 300 tracks x 4 bytes < 1 MB
    tight = RECOMMENDERS.create("knn", batch_size=4096, max_block_mb=1).fit(train, item_embeddings=table)
    assert tight.describe()["search"] == "faiss"  # 4096 x 300 x 4 bytes > 1 MB


def test_save_and_load_give_the_same_lists(tmp_path):
    train, table, users = _random_case()
    model = RECOMMENDERS.create("knn", recency_half_life_days=None, count_weight="count").fit(train,
                                                                                            item_embeddings=table)
    before = model.recommend(users, 10)
    model.save(tmp_path / "model")
    loaded = KNNRecommender.load(tmp_path / "model")
    after = loaded.recommend(users, 10)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert loaded.describe() == model.describe()
    with pytest.raises(DataError, match="is not a saved model"):
        KNNRecommender.load(tmp_path / "nothing")
