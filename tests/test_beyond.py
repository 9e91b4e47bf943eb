"""Beyond-accuracy metrics on hand-computed cases, and their scoring of whole runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonic.rouge import beyond
from sonic.rouge.shared import rows_in, sorted_codes
from sonic.rouge.scoring import Catalogue, over_seeds, score_lists
from sonic.rouge.shared import sorted_unique, unique_keys, unique_pairs
from sonic.tails.table import EmbeddingTable

# Catalogue of 5 tracks; popularity = distinct train users per track, 4 train users.
POPULARITY = np.array([4, 2, 1, 0, 1])
# user 0: [0, 1, 2]; user 1: [3, 4, pad]; user 2: empty list
ROWS = np.array([[0, 1, 2], [3, 4, -1], [-1, -1, -1]])


def test_coverage_by_hand():
    assert beyond.coverage(ROWS, 5, k=1) == pytest.approx(2 / 5)  # tracks 0 and 3
    assert beyond.coverage(ROWS, 5) == pytest.approx(5 / 5)
    assert beyond.coverage(np.array([[0, 7]]), 5) == pytest.approx(1 / 5)  # row 7 is outside the catalogue
    assert np.isnan(beyond.coverage(ROWS, 0))


def test_novelty_by_hand():
    # -log2((pop + 1) / (4 + 1)): track 0 -> log2(5/5) = 0, track 1 -> log2(5/3), track 2 -> log2(5/2),
    # track 3 -> log2(5/1), track 4 -> log2(5/2)
    got = beyond.novelty(ROWS, POPULARITY, 4)
    expected_0 = (0 + np.log2(5 / 3) + np.log2(5 / 2)) / 3
    expected_1 = (np.log2(5) + np.log2(5 / 2)) / 2
    np.testing.assert_allclose(got[:2], [expected_0, expected_1])
    assert np.isnan(got[2])
    np.testing.assert_allclose(beyond.novelty(ROWS, POPULARITY, 4, k=1)[:2], [0.0, np.log2(5)])


def test_average_popularity_by_hand():
    got = beyond.average_popularity(ROWS, POPULARITY, k=2)
    np.testing.assert_allclose(got[:2], [(4 + 2) / 2, (0 + 1) / 2])
    assert np.isnan(got[2])


def test_tail_mask_by_hand():
    # 4 tracks with listeners: head = ceil(0.2 * 4) = 1 track (popularity 4)
    assert beyond.tail_mask(POPULARITY).tolist() == [False, True, True, True, True]
    # head 50% of 4 = 2 tracks (4 and 2); ties at the edge stay together
    assert beyond.tail_mask(POPULARITY, head_fraction=0.5).tolist() == [False, False, True, True, True]
    assert beyond.tail_mask(np.array([3, 3, 3, 1, 0]), head_fraction=0.2).tolist() == [False, False, False, True, True]
    assert beyond.tail_mask(np.array([0, 0])).tolist() == [True, True]


def test_long_tail_share_by_hand():
    tail = beyond.tail_mask(POPULARITY)
    got = beyond.long_tail_share(ROWS, tail)
    np.testing.assert_allclose(got[:2], [2 / 3, 2 / 2])
    np.testing.assert_allclose(beyond.long_tail_share(ROWS, tail, k=1)[:2], [0.0, 1.0])


def test_intra_list_diversity_by_hand():
    # user 0: e1, e2, e1 -> cosines (e1,e2)=0, (e1,e1)=1, (e2,e1)=0 -> mean 1/3 -> ILD 2/3
    # user 1: e1, (-e1 scaled by 3) -> cosine -1 -> ILD 2; third position invalid
    # user 2: one valid vector -> NaN
    e1, e2 = [1.0, 0.0], [0.0, 2.0]
    vectors = np.array([[e1, e2, e1], [e1, [-3.0, 0.0], e2], [e1, e2, e2]])
    valid = np.array([[True, True, True], [True, True, False], [True, False, False]])
    got = beyond.intra_list_diversity(vectors, valid)
    np.testing.assert_allclose(got[:2], [2 / 3, 2.0])
    assert np.isnan(got[2])
    np.testing.assert_allclose(beyond.intra_list_diversity(vectors, valid, k=2)[:2], [1.0, 2.0])


@pytest.mark.parametrize("k", [2, 4, 7])
def test_intra_list_diversity_of_table_rows_equals_the_gathered_one(k):
    rng = np.random.default_rng(4)
    table = rng.normal(size=(30, 8)).astype(np.float32)
    table /= np.linalg.norm(table, axis=1, keepdims=True)
    table[[3, 11]] = 0.0  # tracks without a direction
    rows = rng.integers(0, 30, size=(40, 7))
    rows[rng.random((40, 7)) < 0.2] = -1  # positions without a vector
    rows[0] = [3, 11, -1, 5, -1, -1, -1]  # one valid track: NaN
    expected = beyond.intra_list_diversity(table[np.maximum(rows, 0)], rows >= 0, k=k, unit=True)
    got = beyond.intra_list_diversity_of_rows(rows, table, k=k)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
    assert np.isnan(got[0]) and np.isfinite(got).sum() > 15  # most users have two valid tracks
    # every k in one pass, a few users at a time (chunks that do not divide the 40 users)
    several = beyond.intra_list_diversities(rows, table, [7, k, 2], unit=True, chunk_users=6, threads=3)
    assert sorted(several) == sorted({2, k, 7})
    for each in several:
        reference = beyond.intra_list_diversity(table[np.maximum(rows, 0)], rows >= 0, k=each, unit=True)
        np.testing.assert_allclose(several[each], reference, rtol=1e-9, atol=1e-9)


def test_intra_list_diversities_scale_raw_table_rows_like_a_pairwise_loop():
    rng = np.random.default_rng(5)
    table = rng.normal(size=(25, 6)).astype(np.float32) * rng.uniform(0.1, 9.0, size=(25, 1)).astype(np.float32)
    table[4] = 0.0  # no direction: left out
    rows = rng.integers(0, 25, size=(30, 5))
    rows[rng.random((30, 5)) < 0.2] = -1
    got = beyond.intra_list_diversities(rows, table, [3, 5], chunk_users=4, threads=2)
    for k in (3, 5):
        for user in range(30):
            chosen = [table[row] / np.linalg.norm(table[row]) for row in rows[user, :k] if row >= 0 and row != 4]
            pairs = [1 - a @ b for i, a in enumerate(chosen) for b in chosen[i + 1 :]]
            if pairs:
                assert got[k][user] == pytest.approx(np.mean(pairs), rel=1e-6)
            else:
                assert np.isnan(got[k][user])


def test_intra_list_diversity_matches_pairwise_loop():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 5, 4))
    valid = rng.random((6, 5)) > 0.2
    got = beyond.intra_list_diversity(vectors, valid)
    for user in range(6):
        chosen = vectors[user][valid[user]]
        chosen = chosen / np.linalg.norm(chosen, axis=1, keepdims=True)
        pairs = [1 - chosen[i] @ chosen[j] for i in range(len(chosen)) for j in range(i + 1, len(chosen))]
        if pairs:
            assert got[user] == pytest.approx(np.mean(pairs))
        else:
            assert np.isnan(got[user])


def test_sorted_unique_equals_numpy_unique():
    keys = np.random.default_rng(1).integers(0, 1000, size=5000)
    np.testing.assert_array_equal(sorted_unique(keys), np.unique(keys))
    assert sorted_unique(np.array([], dtype=np.int64)).shape == (0,)


def test_unique_keys_and_pairs_equal_numpy_unique():
    rng = np.random.default_rng(3)
    rows, columns = rng.integers(0, 40, size=6000), rng.integers(0, 30, size=6000)
    rows[:300], columns[:300] = 7, 4  # one pair 300 times: a sum of bools never wraps to zero
    keys = rows.astype(np.int64) * 30 + columns
    np.testing.assert_array_equal(unique_keys(rows, columns, 45, 30), np.unique(keys))
    pairs = unique_pairs(rows, columns, 45, 30)
    np.testing.assert_array_equal(np.diff(pairs.indptr), np.bincount(np.unique(keys) // 30, minlength=45))
    assert unique_keys(np.zeros(0, np.int64), np.zeros(0, np.int64), 3, 5).shape == (0,)


@pytest.mark.parametrize("dtype", ["str", object])
def test_sorted_codes_and_rows_in_equal_the_pandas_answers(dtype):
    rng = np.random.default_rng(2)
    names = np.array([f"t{n}" for n in rng.integers(0, 300, size=4000)], dtype=object)
    names[[5, 17]] = None  # missing ids: code -1, row -1
    values = pd.Series(names, dtype=dtype) if dtype == "str" else pd.Series(names)
    codes, uniques = sorted_codes(values)
    expected_codes, expected_uniques = pd.factorize(values, sort=True)
    np.testing.assert_array_equal(codes, expected_codes)
    np.testing.assert_array_equal(uniques, np.asarray(expected_uniques, dtype=object))
    assert codes.dtype == np.int64 and codes[5] == -1
    ids = np.array(sorted({f"t{n}" for n in range(0, 400, 3)}) + ["zz"], dtype=object)
    rows = rows_in(ids, values)
    np.testing.assert_array_equal(rows, pd.Index(ids).get_indexer(values.to_numpy(dtype=object)))
    assert rows[17] == -1 and (rows >= 0).any() and (rows == -1).sum() > 2
    empty_codes, empty_uniques = sorted_codes(pd.Series([], dtype="str"))
    assert empty_codes.shape == (0,) and empty_uniques.shape == (0,)


def _frame(pairs):
    return pd.DataFrame(pairs, columns=["user_id", "track_id"])


def test_score_lists_on_a_small_run():
    # train: u1 {a, b}, u2 {a}, u3 {a, c}: popularity a=3, b=1, c=1; test adds d (cold)
    train = _frame([("u1", "a"), ("u1", "b"), ("u1", "b"), ("u2", "a"), ("u3", "a"), ("u3", "c")])
    test = _frame([("u1", "c"), ("u2", "b"), ("u2", "d")])
    catalogue = Catalogue.from_split(train, [test])
    assert catalogue.track_ids.tolist() == ["a", "b", "c", "d"]
    assert catalogue.popularity.tolist() == [3, 1, 1, 0] and catalogue.n_train_users == 3
    assert catalogue.is_tail.tolist() == [False, True, True, True]  # head = ceil(0.2 * 3) = 1 track

    users = np.array(["u1", "u2", "u3"], dtype=object)
    ids = np.array([["c", "x"], ["d", "c"], ["b", None]], dtype=object)  # x: not in the split
    scores = np.array([[0.9, 0.5], [0.8, 0.7], [0.6, np.nan]], dtype=np.float32)
    table = EmbeddingTable(np.array(["b", "c", "d"]), np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32))
    result = score_lists(users, ids, scores, {"test": test}, (1, 2), catalogue, diversity=table)

    per_user = result.per_user.set_index(["slice", "metric", "k", "user_id"])["value"]
    assert set(result.per_user["user_id"]) == {"u1", "u2"}  # test users only
    assert per_user[("test", "HitRate", 1, "u1")] == 1.0 and per_user[("test", "Recall", 2, "u2")] == 0.5
    # Novelty@2 of u2: tracks d (pop 0) and c (pop 1): (log2(4/1) + log2(4/2)) / 2 = 1.5
    assert per_user[("test", "Novelty", 2, "u2")] == pytest.approx(1.5)
    # u1's x is outside the split: popularity 0, tail
    assert per_user[("test", "ARP", 2, "u1")] == pytest.approx(0.5)
    assert per_user[("test", "LongTailShare", 2, "u1")] == pytest.approx(1.0)
    # ILD@2 of u2: d=(1,1), c=(0,1): 1 - 1/sqrt(2); u1 has one track with a vector: NaN
    assert per_user[("test", "ILD", 2, "u2")] == pytest.approx(1 - 1 / np.sqrt(2))
    assert np.isnan(per_user[("test", "ILD", 2, "u1")])

    aggregates = result.aggregates.set_index(["metric", "k", "slice"])
    # Coverage@2 over the test users' lists: c, d (x is outside) of 4 split tracks
    assert aggregates.loc[("Coverage", 2, "test"), "mean"] == pytest.approx(2 / 4)
    assert aggregates.loc[("ILD", 2, "test"), "n_users"] == 1  # the NaN user is left out
    assert aggregates.loc[("HitRate", 2, "test"), "mean"] == pytest.approx(1.0)
    assert aggregates.loc[("NDCG", 1, "test"), "n_users"] == 2
    assert list(result.reports) == ["test"]


def test_over_seeds_is_a_t_interval_over_seed_means():
    seeds = [
        pd.DataFrame([("NDCG", 10, "test", m, 0, 0, 50)], columns=["metric", "k", "slice", "mean", "ci_low",
                                                                 "ci_high", "n_users"])
        for m in (0.1, 0.2, 0.3)
    ]
    got = over_seeds(seeds).iloc[0]
    half = 4.302652729749462 * 0.1 / np.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert got["mean"] == pytest.approx(0.2) and got["n_seeds"] == 3
    assert 0.2 - half < 0  # NDCG lies in [0, 1]: the interval's lower bound is cut at 0
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((0.0, 0.2 + half))
