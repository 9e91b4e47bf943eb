"""Contract tests over every registered recommender, plus each one's known answer."""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd
import pytest

from sonic.errors import DataError, SonicError, UnknownNameError
from sonic.rouge.base import RECOMMENDERS, Recommender, load_recommender, shuffled
from sonic.tails.table import EmbeddingTable

# Checkerboard: users u0..u5 listen to group A tracks, v0..v5 to group B tracks.
# u_i has heard every A track but a_i, v_i every B track but b_i. b5 is the hit: besides
# v0..v4, u0..u3 heard it too, so its 9 listeners beat every other track's 5 or 6.
# Embeddings put A tracks near (1, 0) and B tracks near (0, 1).
GROUP = 6
A = [f"a{i}" for i in range(GROUP)]
B = [f"b{i}" for i in range(GROUP)]
U = [f"u{i}" for i in range(GROUP)]
V = [f"v{i}" for i in range(GROUP)]


def checkerboard() -> tuple[pd.DataFrame, EmbeddingTable]:
    pairs = [(U[i], a) for i in range(GROUP) for a in A if a != A[i]]
    pairs += [(V[i], b) for i in range(GROUP) for b in B if b != B[i]]
    pairs += [(U[i], "b5") for i in range(4)]
    train = pd.DataFrame(pairs, columns=["user_id", "track_id"])
    train["timestamp"] = pd.Timestamp("2019-01-01")
    train["count"] = np.int64(1)
    rng = np.random.default_rng(0)
    a_vectors = np.column_stack([np.ones(GROUP), np.linspace(0, 0.2, GROUP), rng.normal(0, 0.01, (GROUP, 2))])
    b_vectors = np.column_stack([np.linspace(0, 0.2, GROUP), np.ones(GROUP), rng.normal(0, 0.01, (GROUP, 2))])
    table = EmbeddingTable(np.array(A + B), np.vstack([a_vectors, b_vectors]).astype(np.float32), {"embedder": "toy"})
    return train, table


# Options that make the trained models quick on toy data (their defaults suit real catalogues).
QUICK = {
    "snn": {"hidden": 32, "lr": 0.01, "threads": 1},
    "elsa": {"factors": 8, "epochs": 40, "lr": 0.05, "threads": 1},
    "bert4rec": {"hidden": 16, "dropout": 0.0, "lr": 0.01, "batch_size": 8, "max_epochs": 12, "threads": 1},
}


def create(name: str, **options) -> Recommender:
    return RECOMMENDERS.create(name, **{**QUICK.get(name, {}), **options})


@functools.lru_cache(maxsize=None)
def fitted(name: str, seed: int = 0) -> Recommender:
    """Fitted on the checkerboard (cached: recommending does not change a model)."""
    train, table = checkerboard()
    return create(name).fit(train, item_embeddings=table, seed=seed)


def sequences(group_size: int = 8, copies: int = 3, seed: int = 0) -> tuple[pd.DataFrame, EmbeddingTable, dict]:
    """A checkerboard of sequences: users of group a heard every a-track but one, in a random order
    (likewise b); the track they have not heard is the known best. Returns train, vectors, best."""
    rng = np.random.default_rng(seed)
    rows, best = [], {}
    for group in "ab":
        for j in range(group_size * copies):
            user, missing = f"{group}user{j}", j % group_size
            rows += [(user, f"{group}{t}") for t in rng.permutation(group_size) if t != missing]
            best[user] = f"{group}{missing}"
    train = pd.DataFrame(rows, columns=["user_id", "track_id"])
    train["timestamp"] = pd.Timestamp("2019-01-01") + pd.to_timedelta(np.arange(len(train)), unit="min")
    spread = np.linspace(0, 0.2, group_size)
    ones = np.ones(group_size)
    vectors = np.vstack([np.column_stack([ones, spread]), np.column_stack([spread, ones])])
    tracks = np.array([f"{g}{i}" for g in "ab" for i in range(group_size)])
    return train, EmbeddingTable(tracks, vectors.astype(np.float32), {"embedder": "toy"}), best


NAMES = RECOMMENDERS.names()
#: Recommenders that do not personalise; their own known answers say what they find.
NOT_PERSONAL = {"random", "pop"}


# --- shared contract -----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_is_a_recommender_with_its_registered_name(name):
    model = RECOMMENDERS.create(name)
    assert isinstance(model, Recommender)
    assert model.name == name


@pytest.mark.parametrize("name", NAMES)
def test_a_cold_start_model_ranks_exactly_the_candidates_it_is_given(name):
    model = fitted(name)
    assert model.cold_start is (name in {"random", "knn", "snn", "bert4rec"})  # bert4rec: content items (frozen)
    if not model.cold_start:
        return
    candidates = ["a0", "a1", "b0", "b1", "b5"]  # u0 heard a1 and b5; a0 is the one A track u0 has not heard
    ids, scores = model.recommend(U + V, 5, candidates=candidates)
    for row, user in enumerate(U + V):
        listed = [track for track in ids[row] if track is not None]
        heard = {a for a in A if a != A[int(user[1])]} if user.startswith("u") else {b for b in B if b != B[int(user[1])]}
        heard |= {"b5"} if user in U[:4] else set()
        assert set(listed) == set(candidates) - heard, (name, user, listed)  # every unheard candidate, no other
        assert np.isnan(scores[row, len(listed):]).all()


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_and_best_first(name):
    ids, scores = fitted(name).recommend(U + V, 3)
    assert ids.shape == scores.shape == (2 * GROUP, 3)
    assert ids.dtype == object and scores.dtype == np.float32
    assert all(isinstance(track, str) for track in ids.ravel())
    assert (np.diff(scores, axis=1) <= 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_seen_tracks_are_never_returned(name):
    train, _ = checkerboard()
    ids, _ = fitted(name).recommend(U + V, 2 * GROUP)
    seen = set(zip(train["user_id"], train["track_id"]))
    returned = {(user, track) for user, row in zip(U + V, ids) for track in row if track is not None}
    assert returned and not returned & seen


@pytest.mark.parametrize("name", NAMES)
def test_k_beyond_the_catalogue_pads_at_the_end(name):
    train, _ = checkerboard()
    ids, scores = fitted(name).recommend(["u5", "v0"], 40)
    for user, row, row_scores in zip(["u5", "v0"], ids, scores):
        unseen = 2 * GROUP - train["track_id"][train["user_id"] == user].nunique()
        assert all(track is not None for track in row[:unseen])
        assert all(track is None for track in row[unseen:])
        assert np.isfinite(row_scores[:unseen]).all() and np.isnan(row_scores[unseen:]).all()
        assert len(set(row[:unseen])) == unseen


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_lists(name):
    first, first_scores = fitted(name, seed=3).recommend(U + V, 5)
    again, again_scores = fitted(name, seed=3).recommend(U + V, 5)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first_scores, again_scores)


@pytest.mark.parametrize("name", NAMES)
def test_a_user_gets_the_same_list_alone_or_among_others(name):
    model = fitted(name)
    together, _ = model.recommend(U + V, 4)
    alone, _ = model.recommend(["v2"], 4)
    np.testing.assert_array_equal(alone[0], together[GROUP + 2])


@pytest.mark.parametrize("name", NAMES)
def test_unknown_user_is_a_data_error_naming_it(name):
    with pytest.raises(DataError, match="user 'nobody' is not in the train events"):
        fitted(name).recommend(["u0", "nobody"], 3)


@pytest.mark.parametrize("name", NAMES)
def test_bad_k_and_unknown_option_are_refused(name):
    with pytest.raises(SonicError, match="k must be a positive integer, got 0"):
        fitted(name).recommend(["u0"], 0)
    with pytest.raises(SonicError, match=f"unknown option 'colour' for {name}; known:"):
        RECOMMENDERS.create(name, colour="blue")


@pytest.mark.parametrize("name", NAMES)
def test_describe_is_json_for_the_manifest(name):
    description = fitted(name).describe()
    assert description["name"] == name
    json.dumps(description)


@pytest.mark.parametrize("name", NAMES)
def test_known_answer(name):
    assert name in KNOWN_ANSWERS, f"recommender {name!r} has no known-answer check; add one to KNOWN_ANSWERS"
    KNOWN_ANSWERS[name]()


def test_unknown_recommender_lists_the_known_ones():
    known = ", ".join(RECOMMENDERS.names())
    with pytest.raises(UnknownNameError, match=f"^unknown recommender 'x'; known: {known}; aliases: bert = bert4rec$"):
        RECOMMENDERS.create("x")


@pytest.mark.parametrize("name", sorted(set(NAMES) - NOT_PERSONAL))
def test_every_personal_recommender_finds_the_known_best_track(name):
    train, table, best = sequences()
    model = create(name).fit(train, item_embeddings=table, seed=0)
    users = sorted(best)
    ids, _ = model.recommend(users, 1)
    found = [user for user, row in zip(users, ids) if row[0] == best[user]]
    assert len(found) == len(users), f"{name} found {len(found)} of {len(users)}"


@pytest.mark.parametrize("name", NAMES)
def test_save_and_load_give_the_same_recommendations(name, tmp_path):
    train, _ = checkerboard()
    model = fitted(name)
    history = pd.DataFrame({"user_id": ["u0", "v1"], "track_id": ["a0", "b5"]})
    before, before_scores = model.recommend(U + V, 5, history=history)
    folder = model.save(tmp_path / "model")
    for loaded in (type(model).load(folder), load_recommender(folder)):
        assert type(loaded) is type(model) and loaded.config == model.config
        after, after_scores = loaded.recommend(U + V, 5, history=history)
        np.testing.assert_array_equal(after, before)
        np.testing.assert_allclose(after_scores, before_scores, rtol=1e-6, atol=1e-7)
    assert loaded.describe()["name"] == name
    model.save(folder)  # a second save replaces the folder whole
    assert sorted(p.name for p in folder.parent.iterdir()) == ["model"]


@pytest.mark.parametrize("name", NAMES)
def test_history_tracks_are_excluded_too(name):
    history = pd.DataFrame({"user_id": ["u4", "u4", "nobody"], "track_id": ["a4", "b0", "a0"]})
    ids, _ = fitted(name).recommend(["u4"], 2 * GROUP, history=history)
    listed = [track for track in ids[0] if track is not None]
    assert listed and not {"a4", "b0"} & set(listed)


@pytest.mark.parametrize("name", NAMES)
def test_fit_takes_the_protocol_keywords_and_content_models_need_vectors(name):
    train, table = checkerboard()
    model = create(name)
    assert isinstance(model.content, bool)
    if model.content:
        with pytest.raises(SonicError, match="--embedding"):
            create(name).fit(train)
    fitted_model = model.fit(train, validation=train.iloc[:3], item_embeddings=table, device="cpu", seed=1)
    assert fitted_model is model
    assert model.curve is None or {"epoch", "train_loss", "seconds"} <= set(model.curve.columns)


def test_shuffled_permutes_vectors_across_tracks_with_a_seed():
    _, table = checkerboard()
    first, again, other = shuffled(table, 3), shuffled(table, 3), shuffled(table, 4)
    np.testing.assert_array_equal(first.track_ids, table.track_ids)
    np.testing.assert_array_equal(first.vectors, again.vectors)
    assert not np.array_equal(first.vectors, other.vectors)
    assert not np.array_equal(first.vectors, table.vectors)
    # the same rows, in another order: sort each table's rows to compare the multisets
    np.testing.assert_array_equal(np.sort(first.vectors, axis=0), np.sort(table.vectors, axis=0))
    assert first.manifest["shuffled"]["seed"] == 3 and first.manifest["embedder"] == "toy"
    with pytest.raises(SonicError, match="shuffle seed must be an integer"):
        shuffled(table, "x")


# --- known answers -------------------------------------------------------------------------


def knn_ranks_the_held_out_same_group_track_first():
    ids, _ = fitted("knn").recommend(U + V, 2 * GROUP)
    for user, row in zip(U + V, ids):
        held_out = ("a" if user[0] == "u" else "b") + user[1:]
        assert row[0] == held_out, user
        if user in ("u4", "u5"):  # unseen: a_i, then all of B
            assert set(row[1 : 1 + GROUP]) == set(B)


def pop_recommends_the_most_listened_unseen_track():
    ids, scores = fitted("pop").recommend(["v5", "u4", "u5", "u0", "v0"], 2)
    assert ids[:3, 0].tolist() == ["b5", "b5", "b5"]  # 9 listeners
    assert scores[0, 0] == 9
    # u0 has heard b5: a0 (5 listeners) ties with b0..b4 (5 listeners, 1 play each): track_id decides.
    assert ids[3].tolist() == ["a0", "b0"]
    assert ids[4].tolist() == ["a0", "a1"]  # v0 ties the same way; A tracks sort first


def random_is_reproducible_and_uniform():
    n_users, n_tracks = 3000, 10
    users = [f"user{i}" for i in range(n_users)]
    train = pd.DataFrame({"user_id": users, "track_id": [f"t{i % n_tracks}" for i in range(n_users)]})
    model = RECOMMENDERS.create("random").fit(train, seed=1)
    first, _ = model.recommend(train["user_id"], 1)
    again, _ = RECOMMENDERS.create("random").fit(train, seed=1).recommend(train["user_id"], 1)
    other, _ = RECOMMENDERS.create("random").fit(train, seed=2).recommend(train["user_id"], 1)
    np.testing.assert_array_equal(first, again)
    assert (first != other).mean() > 0.5
    # Each user sees one of 10 tracks; the first pick is uniform over the other 9.
    counts = pd.Series(first[:, 0]).value_counts().reindex([f"t{i}" for i in range(n_tracks)]).to_numpy()
    expected = n_users / n_tracks  # every track is excluded for 1/10 of users, so equal shares
    assert counts.sum() == n_users
    chi_square = ((counts - expected) ** 2 / expected).sum()
    assert chi_square < 27.9, counts  # chi-square(9 dof) 0.999 quantile


def ease_matches_the_closed_form():
    train, _ = checkerboard()
    model = fitted("ease")
    tracks = A + B
    x = np.zeros((2 * GROUP, 2 * GROUP))
    users = U + V
    for user, track in zip(train["user_id"], train["track_id"]):
        x[users.index(user), tracks.index(track)] = 1
    p = np.linalg.inv(x.T @ x + 500.0 * np.eye(2 * GROUP))
    b = np.eye(2 * GROUP) - p / np.diag(p)
    scores = x @ b
    ids, got = model.recommend(users, 3)
    for row, user in enumerate(users):
        unseen = np.sort(scores[row][x[row] == 0])[::-1]
        np.testing.assert_allclose(got[row], unseen[:3], rtol=1e-4, atol=1e-6)  # the top 3 unseen scores
        listed = [tracks.index(track) for track in ids[row]]
        assert (x[row, listed] == 0).all(), user
        np.testing.assert_allclose(scores[row, listed], got[row], rtol=1e-4, atol=1e-6)  # each its own score


def held_out_same_group_track_first(name):
    def check():
        ids, _ = fitted(name).recommend(U + V, 1)
        assert ids[:, 0].tolist() == A + B

    return check


def bert4rec_on_ids_alone_finds_the_known_best_track():
    # The content-free variant learns the groups from co-occurrence in the sequences alone.
    train, _, best = sequences()
    model = create("bert4rec", items="ids").fit(train, seed=0)
    assert not model.content
    users = sorted(best)
    ids, _ = model.recommend(users, 1)
    assert ids[:, 0].tolist() == [best[user] for user in users]


KNOWN_ANSWERS = {
    "knn": knn_ranks_the_held_out_same_group_track_first,
    "pop": pop_recommends_the_most_listened_unseen_track,
    "random": random_is_reproducible_and_uniform,
    "ease": ease_matches_the_closed_form,
    "elsa": held_out_same_group_track_first("elsa"),
    "snn": held_out_same_group_track_first("snn"),
    "bert4rec": bert4rec_on_ids_alone_finds_the_known_best_track,
}


# --- knn specifics -------------------------------------------------------------------------


def test_knn_needs_embeddings():
    train, _ = checkerboard()
    with pytest.raises(SonicError, match="^knn needs --embedding"):
        RECOMMENDERS.create("knn").fit(train)


def test_knn_counts_tracks_and_users_without_vectors():
    train, table = checkerboard()
    train = pd.concat([train, pd.DataFrame({"user_id": ["w", "w", "u0"], "track_id": ["zz1", "zz2", "zz1"]})])
    model = RECOMMENDERS.create("knn").fit(train, item_embeddings=table)
    info = model.describe()
    assert info["train_tracks_without_vector"] == 2
    assert info["users_without_vector"] == 1
    assert len(info["warnings"]) == 2 and info["warnings"][0].startswith("2 of 14 train tracks have no vector")
    ids, scores = model.recommend(["w", "u0"], 3)
    assert ids[0].tolist() == [None, None, None] and np.isnan(scores[0]).all()
    assert ids[1, 0] == "a0"


def test_knn_refuses_a_table_without_any_train_track():
    train, _ = checkerboard()
    table = EmbeddingTable(np.array(["x", "y"]), np.eye(2, dtype=np.float32))
    with pytest.raises(DataError, match=r"none of the 12 train tracks \(e.g. 'a0'\) has a vector"):
        RECOMMENDERS.create("knn").fit(train, item_embeddings=table)


def test_knn_catalogue_all_reaches_tracks_outside_train():
    train, table = checkerboard()
    cold = EmbeddingTable(
        np.append(table.track_ids, "a_new"), np.vstack([table.vectors, [[1, 0, 0, 0]]]).astype(np.float32)
    )
    train_only, _ = RECOMMENDERS.create("knn").fit(train, item_embeddings=cold).recommend(["u5"], 3)
    everything, _ = RECOMMENDERS.create("knn", catalogue="all").fit(train, item_embeddings=cold).recommend(["u5"], 3)
    assert "a_new" not in train_only[0] and "a_new" in everything[0][:2]


def test_knn_equals_brute_force_cosine_on_random_data():
    rng = np.random.default_rng(5)
    n_users, n_tracks, dim, k = 40, 200, 8, 15
    train = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in rng.integers(0, n_users, 1500)],
            "track_id": [f"t{t}" for t in rng.integers(0, n_tracks, 1500)],
        }
    )
    track_ids = np.array([f"t{t}" for t in range(n_tracks)])
    vectors = rng.normal(size=(n_tracks, dim)).astype(np.float32)
    model = RECOMMENDERS.create("knn", batch_size=7).fit(train, item_embeddings=EmbeddingTable(track_ids, vectors))
    users = sorted(train["user_id"].unique())
    ids, scores = model.recommend(users, k)

    catalogue = np.array(sorted(train["track_id"].unique()))
    items = vectors[[int(t[1:]) for t in catalogue]].astype(np.float64)
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    for user, row, row_scores in zip(users, ids, scores):
        heard = set(train["track_id"][train["user_id"] == user])
        mean = vectors[[int(t[1:]) for t in heard]].astype(np.float64).mean(axis=0)
        cosines = items @ (mean / np.linalg.norm(mean))
        candidates = [i for i in np.argsort(-cosines) if catalogue[i] not in heard][:k]
        assert row.tolist() == catalogue[candidates].tolist(), user
        np.testing.assert_allclose(row_scores, cosines[candidates], atol=1e-5)
