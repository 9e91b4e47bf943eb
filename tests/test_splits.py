"""Time splits: known answers per protocol, invariants on a random log, files, and the command."""

from __future__ import annotations

import bz2
import json
import re

import numpy as np
import pandas as pd
import pytest
from cli_runner import sonic

from sonic.cream.data.events import compress, normalise_events
from sonic.cream.data.split_files import read_split, split_statistics, write_split
from sonic.cream.data.splits import PROTOCOLS, Split, SplitConfig, draw_users
from sonic.files import BOOKKEEPING
from sonic.cream.data.splitting import split_events
from sonic.errors import DataError, SonicError, UnknownNameError


def events(*rows: tuple) -> pd.DataFrame:
    """Raw events from ``(user, track, date[, count])`` tuples."""
    frame = pd.DataFrame([row if len(row) == 4 else (*row, 1) for row in rows])
    frame.columns = ["user_id", "track_id", "timestamp", "count"]
    return normalise_events(frame)


def pairs(frame: pd.DataFrame | None) -> set[tuple[str, str]]:
    return set(zip(frame["user_id"], frame["track_id"])) if frame is not None else set()


def users(frame: pd.DataFrame) -> set[str]:
    return set(frame["user_id"])


# --- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "start", "test", "end", "fraction", "cold"),
    [
        ("sonic", "2018-02-20", "2019-01-20", "2019-02-20", 0.5, False),
        ("tamm2024", "2019-02-20", "2020-02-20", None, 0.5, False),
        ("tamm2025", "2018-02-01", "2019-02-01", "2019-03-01", 0.3, True),
    ],
)
def test_each_protocol_has_its_published_defaults(name, start, test, end, fraction, cold):
    config = SplitConfig.for_protocol(name)
    assert config.start_date == pd.Timestamp(start)
    assert config.test_date == pd.Timestamp(test)
    assert config.end_date == (None if end is None else pd.Timestamp(end))
    assert (config.seed, config.val_fraction, config.keep_cold) == (42, fraction, cold)


def test_explicit_dates_override_and_a_test_date_alone_shifts_the_window():
    shifted = SplitConfig.for_protocol("tamm2025", test_date="2019-02-15", seed=7)
    assert (shifted.start_date, shifted.end_date) == (pd.Timestamp("2018-02-15"), pd.Timestamp("2019-03-15"))
    dates = {"start_date": "2019-02-01", "test_date": "2019-02-15", "end_date": "2019-03-01"}
    explicit = SplitConfig.for_protocol("tamm2025", **dates)
    assert (explicit.start_date, explicit.end_date) == (pd.Timestamp("2019-02-01"), pd.Timestamp("2019-03-01"))
    assert shifted.seed == 7


def test_an_unknown_protocol_lists_the_known_ones():
    assert sorted(PROTOCOLS) == ["leave-last-out", "sonic", "tamm2024", "tamm2025"]
    known = "leave-last-out, sonic, tamm2024, tamm2025"
    with pytest.raises(UnknownNameError, match=rf"^unknown split protocol 'x'; known: {known}$"):
        SplitConfig.for_protocol("x")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"test_date": "2019-02-31"}, r"test_date '2019-02-31' is not a date"),
        ({"start_date": "2019-03-01", "test_date": "2019-02-01"}, r"start date 2019-03-01 must be before the test"),
        ({"test_date": "2019-02-01", "end_date": "2019-02-01"}, r"end date 2019-02-01 must be after the test date"),
        ({"seed": -1}, r"seed -1 is not a non-negative integer"),
    ],
)
def test_bad_settings_are_one_clear_error(options, message):
    with pytest.raises(SonicError, match=message):
        SplitConfig.for_protocol("tamm2025", **options)


def test_config_survives_a_round_trip_and_rejects_unknown_keys():
    config = SplitConfig.for_protocol("tamm2024", test_date="2019-02-15 12:00", seed=3)
    assert SplitConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(SonicError, match=r"unknown split setting 'fraction'"):
        SplitConfig.from_dict({**config.to_dict(), "fraction": 0.5})


# --- known answers -----------------------------------------------------------------------------


def test_tamm2025_puts_each_hand_made_pair_where_it_belongs():
    log = events(
        ("u1", "t1", "2018-06-01"), ("u1", "t2", "2018-07-01"),
        ("u1", "t1", "2019-02-05"),  # re-listen of a train track: never evaluated
        ("u1", "t3", "2019-02-10"), ("u1", "t3", "2019-02-12"),  # hot (u2 played t3 in train), 2 plays
        ("u1", "t9", "2019-02-11"),  # cold: nobody played t9 before the test date
        ("u2", "t3", "2018-08-01"), ("u2", "t1", "2018-09-01"), ("u2", "t1", "2019-02-20"),
        ("u2", "t4", "2019-02-01 00:00:00"),  # exactly at the test date: evaluation, cold
        ("u2", "t2", "2019-02-03"),  # hot
        ("u3", "t2", "2018-02-01"),  # exactly at the start: in the window
        ("u3", "t1", "2019-02-20"),  # hot
        ("u3", "t3", "2019-03-01"),  # exactly at the end: out of the window
        ("u4", "t1", "2019-02-02"),  # user without train events: dropped
        ("u5", "t1", "2017-01-01"), ("u5", "t2", "2019-02-02"),  # train event before the window: dropped
        *[(f"v{i}", "t1", "2018-10-01") for i in range(4)],
        *[(f"v{i}", "t2", "2019-02-04") for i in range(4)],  # four more users with hot pairs only
    )  # fmt: skip
    split = split_events(log, SplitConfig.for_protocol("tamm2025"))
    assert pairs(split.train) == {
        ("u1", "t1"), ("u1", "t2"), ("u2", "t3"), ("u2", "t1"), ("u3", "t2"), *[(f"v{i}", "t1") for i in range(4)]
    }  # fmt: skip
    hot = {("u1", "t3"), ("u2", "t2"), ("u3", "t1"), *[(f"v{i}", "t2") for i in range(4)]}
    assert pairs(split.val) | pairs(split.test) == hot
    assert pairs(split.cold_test) == {("u1", "t9"), ("u2", "t4")}
    # val: floor(0.3 * 5) = 1 of the five users without cold pairs; u1 and u2 always go to test
    assert len(users(split.val)) == 1 and users(split.val) <= {"u3", "v0", "v1", "v2", "v3"}
    assert {"u1", "u2"} <= users(split.test)
    u1_t3 = split.test[(split.test["user_id"] == "u1") & (split.test["track_id"] == "t3")].iloc[0]
    assert (u1_t3["timestamp"], u1_t3["count"]) == (pd.Timestamp("2019-02-10"), 2)
    u2_t1 = split.train[(split.train["user_id"] == "u2") & (split.train["track_id"] == "t1")].iloc[0]
    assert u2_t1["count"] == 1  # the play after the test date is not counted in train


def test_sonic_drops_cold_pairs_and_splits_users_in_half():
    log = events(
        ("a", "t1", "2018-03-01"), ("a", "t2", "2019-01-25"), ("a", "t9", "2019-01-26"),
        ("b", "t2", "2018-04-01"), ("b", "t1", "2019-02-01"), ("b", "t2", "2019-02-02"),
        ("c", "t1", "2018-05-01"), ("c", "t2", "2019-02-19 23:59"), ("c", "t3", "2019-02-20"),
        ("d", "t1", "2018-02-19"), ("d", "t2", "2019-02-01"),  # d's only train play is before the window
    )  # fmt: skip
    split = split_events(log, SplitConfig.for_protocol("sonic"))
    assert split.cold_test is None
    assert pairs(split.train) == {("a", "t1"), ("b", "t2"), ("c", "t1")}
    assert pairs(split.val) | pairs(split.test) == {("a", "t2"), ("b", "t1"), ("c", "t2")}
    assert len(users(split.val)) == 1 and len(users(split.test)) == 2  # floor(0.5 * 3) = 1


def test_tamm2024_has_an_open_end_and_evaluates_only_new_tracks():
    log = events(
        ("a", "t1", "2019-03-01"), ("a", "t2", "2021-06-01"), ("a", "t1", "2020-03-01"),
        ("b", "t2", "2019-02-20"), ("b", "t1", "2020-02-20"), ("b", "t3", "2020-02-21"),
        ("c", "t1", "2019-02-19"), ("c", "t2", "2020-03-01"),  # c's play is before the window
    )  # fmt: skip
    split = split_events(log, SplitConfig.for_protocol("tamm2024"))
    assert split.cold_test is None
    assert pairs(split.train) == {("a", "t1"), ("b", "t2")}
    assert pairs(split.val) | pairs(split.test) == {("a", "t2"), ("b", "t1")}
    assert len(users(split.val)) == 1 and users(split.val) != users(split.test)


def test_compressed_input_carries_its_whole_count_to_the_side_of_its_first_listen():
    onion = events(
        (20, 2432, "2019-02-10", 5), (20, 2432, "2019-02-20", 2),  # counts add up, first listen wins
        (20, 3, "2019-02-16", 4),
        (21, 3, "2019-02-11", 1), (21, 2432, "2019-02-17", 3),
        (22, 3, "2019-02-12", 1), (22, 2432, "2019-02-18", 1),
    )  # fmt: skip
    config = SplitConfig.for_protocol("sonic", start_date="2019-02-01", test_date="2019-02-15", end_date="2019-03-01")
    split = split_events(onion, config)
    train = split.train.set_index(["user_id", "track_id"])["count"].to_dict()
    assert train == {("20", "2432"): 5, ("21", "3"): 1, ("22", "3"): 1}  # the later row (2 plays) after the test date
    evaluation = pd.concat([split.val, split.test]).set_index(["user_id", "track_id"])["count"].to_dict()
    assert evaluation == {("20", "3"): 4, ("21", "2432"): 3, ("22", "2432"): 1}


def test_excluded_tracks_vanish_everywhere_and_int_ids_match():
    log = events(
        ("a", 1, "2018-06-01"), ("a", 2, "2018-06-02"), ("a", 3, "2019-02-02"), ("a", 4, "2019-02-03"),
        ("b", 3, "2018-06-01"), ("b", 4, "2018-06-02"), ("b", 1, "2019-02-02"), ("b", 2, "2019-02-03"),
    )  # fmt: skip
    config = SplitConfig.for_protocol("sonic", test_date="2019-02-01")
    split = split_events(log, config, exclude_tracks=np.array([2, 4], dtype=np.int64))
    assert set(pd.concat(split.parts.values())["track_id"]) == {"1", "3"}
    assert pairs(split.val) | pairs(split.test) == {("a", "3"), ("b", "1")}


def test_draw_users_sorts_then_takes_a_seeded_permutation():
    pool = [f"user{i:02d}" for i in range(20)][::-1]  # order of the input must not matter
    expected = np.array(sorted(pool))[np.random.default_rng(42).permutation(20)[:6]]
    assert draw_users(pool, 0.3, seed=42).tolist() == sorted(expected.tolist())
    assert draw_users(list(reversed(pool)), 0.3, seed=42).tolist() == sorted(expected.tolist())
    # pinned, so that a change of method cannot pass unnoticed
    assert draw_users(pool, 0.3, seed=42).tolist() == ["user07", "user09", "user10", "user12", "user14", "user15"]


def test_statistics_follow_the_journal_table():
    train = events(("a", "t1", "2019-01-01", 3), ("a", "t2", "2019-01-02", 1), ("b", "t1", "2019-01-03", 2))
    one = events(("a", "t3", "2019-02-02", 4))
    split = Split(train=train, val=one, test=one, cold_test=one, config=SplitConfig.for_protocol("tamm2025"))
    table = split_statistics(split)
    assert table.index.tolist() == ["Train", "Val", "HotTest", "ColdTest"]
    assert table.loc["Train"].tolist() == [3, 2, 2, 1.5, 1, 2, 3.0, 2, 4]
    assert table.loc["ColdTest"].tolist() == [1, 1, 1, 1.0, 1, 1, 4.0, 4, 4]


# --- invariants on a random log ----------------------------------------------------------------


def random_log(seed: int = 0, n_events: int = 30_000) -> pd.DataFrame:
    """Raw plays of 300 users over 400 tracks (popularity skewed), 2018-01-01 .. 2019-04-01."""
    rng = np.random.default_rng(seed)
    popularity = rng.zipf(1.6, 400).astype(float)
    start, span = pd.Timestamp("2018-01-01"), (pd.Timestamp("2019-04-01") - pd.Timestamp("2018-01-01")).total_seconds()
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, 300, n_events).astype(np.int64),
            "track_id": rng.choice(400, n_events, p=popularity / popularity.sum()).astype(np.int64),
            "timestamp": start + pd.to_timedelta(rng.uniform(0, span, n_events), unit="s"),
        }
    )
    return normalise_events(frame)


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return random_log()


TIME_SPLITS = sorted(name for name, protocol in PROTOCOLS.items() if protocol.test_date is not None)


@pytest.mark.parametrize("protocol", TIME_SPLITS)
def test_invariants_hold_on_a_random_log(log, protocol):
    config = SplitConfig.for_protocol(protocol, test_date="2019-02-01")
    split = split_events(log, config)
    train, val, test, cold = split.train, split.val, split.test, split.cold_test
    evaluation = pd.concat([val, test, cold])
    in_window = (log["timestamp"] >= config.start_date) & (
        True if config.end_date is None else log["timestamp"] < config.end_date
    )
    window = log[in_window]

    assert train["timestamp"].max() < config.test_date
    assert train["count"].sum() == (window["timestamp"] < config.test_date).sum()  # plays before the test date only
    assert evaluation["timestamp"].min() >= config.test_date
    assert users(val) <= users(train) and users(test) <= users(train) and users(evaluation) <= users(train)
    assert not users(val) & users(test)
    assert set(pd.concat([val, test])["track_id"]) <= set(train["track_id"])
    if protocol == "tamm2025":
        assert not set(cold["track_id"]) & set(train["track_id"])
        assert not users(val) & users(cold)
    else:
        assert cold is None
    assert not pairs(evaluation) & pairs(train)  # nothing evaluated that the user already played
    for frame in split.parts.values():
        assert not frame.duplicated(["user_id", "track_id"]).any()
        assert frame.dtypes.astype(str).tolist() == ["str", "str", "datetime64[ns]", "int64"]

    # re-listens: pairs played both before and after the test date exist, and none is evaluated
    before = pairs(window[window["timestamp"] < config.test_date])
    relistened = before & pairs(window[window["timestamp"] >= config.test_date])
    assert relistened and not relistened & pairs(evaluation)
    # every pair first played on/after the test date by a train user, on a train track, is evaluated
    packed = compress(window)
    new = packed[(packed["timestamp"] >= config.test_date) & packed["user_id"].isin(train["user_id"])]
    hot_new = new[new["track_id"].isin(train["track_id"])]
    assert pairs(pd.concat([val, test])) == pairs(hot_new)
    candidates = set(hot_new["user_id"]) - (users(cold) if cold is not None else set())
    assert len(users(val)) == int(np.floor(config.val_fraction * len(candidates) + 1e-9))


def test_the_same_seed_gives_the_same_split_and_another_seed_another(log):
    config = SplitConfig.for_protocol("tamm2025", test_date="2019-02-01")
    first = split_events(log, config)
    shuffled = log.sample(frac=1.0, random_state=1)  # row order must not matter
    again = split_events(shuffled, config)
    for name in ("train", "val", "test", "cold_test"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name))
    other = split_events(log, SplitConfig.for_protocol("tamm2025", test_date="2019-02-01", seed=43))
    assert users(other.val) != users(first.val)
    assert users(other.val) | users(other.test) == users(first.val) | users(first.test)


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        ({"start_date": "2020-01-01", "test_date": "2020-02-01"}, r"every split is empty: no listening event falls"),
        ({"start_date": "2019-04-01", "test_date": "2019-05-01"}, r"every split is empty"),
        ({"start_date": "2017-01-01", "test_date": "2018-01-01"}, r"the train split is empty"),
        ({"test_date": "2019-05-01"}, r"the val and test splits are empty"),
    ],
)
def test_empty_results_say_which_split_and_the_data_range(log, dates, message):
    with pytest.raises(DataError, match=message) as caught:
        split_events(log, SplitConfig.for_protocol("tamm2025", **dates))
    assert "the data runs from 2018-01-01" in str(caught.value)
    assert "test date" in str(caught.value)


def test_too_few_candidates_for_val_is_named():
    log = events(("a", "t1", "2018-06-01"), ("a", "t2", "2019-02-02"), ("b", "t2", "2018-06-01"))
    with pytest.raises(DataError, match=r"the val split is empty: 1 candidate users times val_fraction 0.3"):
        split_events(log, SplitConfig.for_protocol("tamm2025"))


# --- files ---------------------------------------------------------------------------------------


def test_a_split_survives_writing_and_reading(tmp_path, log):
    split = split_events(log, SplitConfig.for_protocol("tamm2025", test_date="2019-02-01"))
    write_split(split, tmp_path / "split", input_path="plays.tsv")
    names = sorted(p.name for p in (tmp_path / "split").iterdir() if p.name not in BOOKKEEPING)
    assert names == ["cold_test.parquet", "split.json", "stats.csv", "test.parquet", "train.parquet", "val.parquet"]
    back = read_split(tmp_path / "split")
    assert back.config == split.config
    for name, frame in split.parts.items():
        pd.testing.assert_frame_equal(getattr(back, name), frame)
    manifest = json.loads((tmp_path / "split" / "split.json").read_text())
    assert manifest["protocol"] == "tamm2025" and manifest["input"] == "plays.tsv"
    assert manifest["config"]["test_date"] == "2019-02-01T00:00:00" and manifest["config"]["seed"] == 42
    assert manifest["rows"] == {name: len(frame) for name, frame in split.parts.items()}
    stats = pd.read_csv(tmp_path / "split" / "stats.csv", index_col="split")
    pd.testing.assert_frame_equal(stats, split_statistics(split), check_names=False)


def test_a_split_without_cold_test_replaces_a_stale_one(tmp_path, log):
    write_split(split_events(log, SplitConfig.for_protocol("tamm2025", test_date="2019-02-01")), tmp_path)
    write_split(split_events(log, SplitConfig.for_protocol("sonic", test_date="2019-02-01")), tmp_path)
    assert not (tmp_path / "cold_test.parquet").exists()
    assert read_split(tmp_path).cold_test is None


def test_reading_a_missing_split_names_what_is_missing(tmp_path, log):
    with pytest.raises(DataError, match=r"split folder '.*nothing' does not exist"):
        read_split(tmp_path / "nothing")
    with pytest.raises(DataError, match=r"has no split\.json"):
        read_split(tmp_path)
    write_split(split_events(log, SplitConfig.for_protocol("tamm2025", test_date="2019-02-01")), tmp_path)
    (tmp_path / "cold_test.parquet").unlink()
    with pytest.raises(DataError, match=r"has no cold_test\.parquet, which tamm2025 splits need"):
        read_split(tmp_path)


# --- the command -------------------------------------------------------------------------------




def test_data_split_command_writes_the_split_and_prints_the_table(tmp_path, log):
    plays = tmp_path / "plays.tsv.bz2"
    plays.write_bytes(bz2.compress(log.drop(columns="count").to_csv(sep="\t", index=False).encode()))
    excluded = tmp_path / "no_audio.csv"
    excluded.write_text("track_id\n0\n1\n")
    out = tmp_path / "split"
    result = sonic(
        "data-split", "--interactions", plays, "--protocol", "tamm2025", "--test-date", "2019-02-01",
        "--exclude-file", excluded, "--seed", "7", "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for label in ("Train", "Val", "HotTest", "ColdTest", "TracksMedian"):
        assert label in result.stdout
    assert str(out) in result.stdout
    split = read_split(out)
    assert split.config == SplitConfig.for_protocol("tamm2025", test_date="2019-02-01", seed=7)
    assert not {"0", "1"} & set(pd.concat(split.parts.values())["track_id"])
    manifest = json.loads((out / "split.json").read_text())
    assert manifest["exclude_file"] == str(excluded) and manifest["input"] == str(plays)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"does not exist"),
        ("userid,track_id,timestamp\nu1,t1,2019-02-01\n", r"no column 'user_id'"),
    ],
)
def test_data_split_command_reports_a_bad_input_in_one_line(tmp_path, content, message):
    plays = tmp_path / "plays.csv"
    if content is not None:
        plays.write_text(content)
    result = sonic("data-split", "--interactions", plays, "--protocol", "sonic", "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sonic: error: ")
    assert re.search(message, lines[0])
    assert not (tmp_path / "out").exists()
