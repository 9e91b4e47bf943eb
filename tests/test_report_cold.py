"""The report's cold-start sections on a store with known per-user values: UNABLE rows marked (never zero,
never a gap), content models against chance on cold tracks, each model against its shuffle control on hot and
cold tracks, and the users grouped by the length of their train history."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from sonic.cream.data.split_files import write_split
from sonic.cream.data.splits import Split, SplitConfig
from sonic.study import store
from sonic.study.report import write_report

pytestmark = pytest.mark.slow  # matplotlib draws a dozen figures

USERS = {"test": range(0, 60), "cold_test": range(30, 90), "val": range(90, 100)}
#: Per-user NDCG level of each (model, split): knn is far above chance on cold tracks, its control is chance.
LEVEL = {("random", "test"): 0.1, ("random", "cold_test"): 0.2, ("pop", "test"): 0.3,
         ("knn", "test"): 0.5, ("knn", "cold_test"): 0.6, ("knn-shuffled", "test"): 0.45,
         ("knn-shuffled", "cold_test"): 0.2}  # fmt: skip
STUDY = (
    'title = "Cold study"\n[data]\nevents = "events.tsv"\n[split]\nprotocol = "tamm2025"\n'
    '[embeddings]\nnames = ["mfcc_104"]\n[[recommenders]]\nname = "random"\n[[recommenders]]\nname = "pop"\n'
    '[[recommenders]]\nname = "knn"\n[[recommenders]]\nname = "knn"\nlabel = "knn-shuffled"\nshuffle = true\n'
    '[evaluation]\nmodes = ["val", "test", "cold_test"]\nks = [5, 10]\nseeds = [1]\n[report]\nk = 10\n'
    'gallery_tracks = 0\n'
)


def history_length(number: int) -> int:
    return 2 + number % 9  # 2..10 train tracks


def write_run(root, label, recommender, embedding, shuffle, split_dir):
    rng = np.random.default_rng([ord(character) for character in label])
    per_user, aggregates = [], []
    for split, users in USERS.items():
        level = LEVEL.get((label, split))
        if split == "val":
            level = 0.3
        if level is None:  # pop on the cold test: unable
            for metric in ("NDCG", "HitRate"):
                for k in (5, 10):
                    aggregates.append((metric, k, split, np.nan, np.nan, np.nan, 0, "unable"))
            continue
        numbers = np.array(list(users))
        for metric in ("NDCG", "HitRate"):
            for k in (5, 10):
                values = np.clip(level + rng.normal(0, 0.1, len(numbers)), 0, 1)
                per_user.append(pd.DataFrame({"user_id": [f"u{n}" for n in numbers], "metric": metric, "k": k,
                                              "value": values, "slice": split}))
                aggregates.append((metric, k, split, values.mean(), values.mean() - 0.05, values.mean() + 0.05,
                                   len(values), "scored"))
    name = f"{label}-{embedding}-seed1"
    record = {"label": label, "recommender": recommender, "options": {}, "shuffle": shuffle, "embedding": embedding,
              "embedding_manifest": "", "split_dir": str(split_dir), "split_seed": 1, "modes": list(USERS),
              "seed": 1, "ks": [5, 10], "run_dir": str(root / "runs" / name), "hash": "0" * 64, "warnings": [],
              "slices": {"val": {"candidates": "train", "status": "scored", "n_candidates": 50},
                         "test": {"candidates": "train", "status": "scored", "n_candidates": 50},
                         "cold_test": {"candidates": "cold", "status": "unable" if label == "pop" else "scored",
                                       "n_candidates": 12}}}  # fmt: skip
    columns = ["metric", "k", "slice", "mean", "ci_low", "ci_high", "n_users", "status"]
    store.write_run(root / "results", name, record, pd.concat(per_user, ignore_index=True),
                    pd.DataFrame(aggregates, columns=columns))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("cold") / "study"
    root.mkdir()
    (root / "study.toml").write_text(STUDY)
    train = pd.DataFrame([(f"u{n}", f"t{t}") for n in range(100) for t in range(history_length(n))],
                         columns=["user_id", "track_id"]).assign(timestamp=pd.Timestamp("2019-01-01"), count=1)
    held = pd.DataFrame({"user_id": ["u0"], "track_id": ["t99"], "timestamp": pd.Timestamp("2019-02-01"), "count": 1})
    split_dir = write_split(Split(train=train, val=held, test=held, cold_test=held.assign(track_id="new"),
                                  config=SplitConfig("toy", None, "2019-01-15", None, keep_cold=True)), root / "split")
    for label, recommender, embedding, shuffle in (("random", "random", "-", False), ("pop", "pop", "-", False),
                                                   ("knn", "knn", "mfcc_104", False),
                                                   ("knn-shuffled", "knn", "mfcc_104", True)):
        write_run(root, label, recommender, embedding, shuffle, split_dir)
    index = write_report(root, root / "report")
    page = index.read_text()
    import html

    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script)>.*?</\1>", "", page,
                                                                            flags=re.S))))
    return index.parent, text


def test_the_cold_section_marks_unable_models_and_tests_content_models_against_chance(report):
    folder, text = report
    assert "pop cannot score a track nobody played in train" in text and "UNABLE" in text
    assert "The results store has no per-user values" not in text  # an unable slice is no gap
    assert "the cold test ranks the cold tracks alone (the tracks of the cold test, none played in train) (12 tracks)" in text
    tests = pd.read_csv(folder / "data" / "cold-tests.csv")
    assert list(zip(tests["a"], tests["b"], tests["split"])) == [("knn / mfcc_104", "random", "cold_test")]
    assert tests["t_p_holm"].iloc[0] < 0.001
    assert "On the cold test (NDCG@10), knn / mfcc_104 (0." in text and "is higher than chance, random" in text
    board = pd.read_csv(folder / "data" / "leaderboard.csv")
    unable = board[(board["model"] == "pop") & (board["split"] == "cold_test")]
    assert len(unable) and (unable["status"] == "unable").all() and unable["mean"].isna().all()


def test_the_identity_control_is_tested_on_hot_and_cold_tracks_apart(report):
    folder, text = report
    tests = pd.read_csv(folder / "data" / "content-effect-tests.csv")
    effect = tests[tests["family"] == "content effect"].set_index("split")
    assert set(effect.index) == {"test", "cold_test"}
    assert effect.loc["cold_test", "mean_diff"] == pytest.approx(0.4, abs=0.05)  # knn 0.6 against its control 0.2
    assert effect.loc["cold_test", "t_p_holm"] < 0.001
    assert effect.loc["test", "mean_diff"] == pytest.approx(0.05, abs=0.05)
    chance = tests[tests["family"] == "control against chance"]
    assert list(chance["split"]) == ["cold_test"] and chance["t_p_holm"].iloc[0] > 0.05  # the control is at chance
    assert re.search(r"knn / mfcc_104 on the cold test \(NDCG@10\): content effect \+0\.[34]\d+ \(0\.\d+ against "
                     r"0\.\d+ shuffled\); paired t-test over 60 users, Holm-adjusted p < 0\.0001: the content helps", text)
    assert re.search(r"knn-shuffled / mfcc_104 on the cold test \(NDCG@10\) scores 0\.\d+, not told apart from chance "
                     r"\(random, 0\.\d+\); paired t-test over 60 users, Holm-adjusted p = 0\.\d+", text)
    assert set(tests["t_p_holm"]) and (tests["t_p_holm"] >= tests["t_p"] - 1e-12).all()  # Holm never lowers a p
    # the questions compare models, not controls
    assert "knn-shuffled" not in set(pd.read_csv(folder / "data" / "q1-tests.csv")[["a", "b"]].values.ravel())


def test_users_are_grouped_by_their_train_history_length(report):
    folder, text = report
    history = pd.read_csv(folder / "data" / "by-history.csv")
    assert set(history["split"]) == {"test", "cold_test"}
    for split in ("test", "cold_test"):  # each slice's own terciles, named by their ranges
        groups = sorted(set(history.loc[history["split"] == split, "group"]))
        assert [group.split(" ")[1] for group in groups] == ["short", "medium", "long"]
    sizes = history[(history["split"] == "test") & (history["label"] == "random")].set_index("group")["n_users"]
    assert sizes.sum() == 60 and sizes.max() - sizes.min() <= 1  # three near-equal groups of the 60 test users
    assert ((history["ci_low"] >= 0) & (history["ci_high"] <= 1)).all()
    assert "knn-shuffled" not in set(history["label"])


def test_the_questions_say_where_hot_and_cold_differ(report):
    _, text = report
    assert "On the cold test pop is UNABLE" in text
    assert "Hot and cold tracks differ:" in text or "Hot and cold tracks agree:" in text
