"""The leave-last-out protocol: last unique track test, the one before val, the rest train; ties by input order."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from sonic.cream.data import SplitConfig, read_split, split_events
from sonic.errors import DataError, SonicError


def events(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "track_id", "timestamp"])


def pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(frame["user_id"], frame["track_id"]))


LOG = events(
    [
        ("u1", "t1", "2019-01-01"),
        ("u1", "t2", "2019-01-02"),
        ("u1", "t3", "2019-01-03"),
        ("u1", "t1", "2019-01-04"),  # a re-listen: t1 stays where it was first heard
        ("u1", "t4", "2019-01-03"),  # ties t3 in time: input order puts it after t3, so it is the test
        ("u2", "t9", "2019-01-05"),
        ("u2", "t8", "2019-01-05"),  # same time as t9, later in the file: the test
        ("u2", "t7", "2019-01-01"),
        ("u3", "t1", "2019-01-01"),  # two tracks only: stays whole in train
        ("u3", "t2", "2019-01-02"),
    ]
)


def test_last_unique_track_is_test_the_one_before_val_ties_by_input_order():
    split = split_events(LOG, SplitConfig.for_protocol("leave-last-out"))
    assert pairs(split.test) == [("u1", "t4"), ("u2", "t8")]
    assert pairs(split.val) == [("u1", "t3"), ("u2", "t9")]
    assert pairs(split.train) == [("u1", "t1"), ("u1", "t2"), ("u2", "t7"), ("u3", "t1"), ("u3", "t2")]
    first = split.train.set_index(["user_id", "track_id"])
    assert first.loc[("u1", "t1"), "count"] == 2  # plays summed, first listen kept
    assert first.loc[("u1", "t1"), "timestamp"] == pd.Timestamp("2019-01-01")
    assert split.cold_test is None and split.config.test_date is None


def test_the_file_order_decides_ties_not_the_ids():
    flipped = pd.concat([LOG.iloc[:5], LOG.iloc[[6, 5, 7]], LOG.iloc[8:]])  # u2's two tied rows swapped
    split = split_events(flipped, SplitConfig.for_protocol("leave-last-out"))
    assert ("u2", "t9") in pairs(split.test) and ("u2", "t8") in pairs(split.val)


def test_window_and_excluded_tracks_apply_first():
    config = SplitConfig.for_protocol("leave-last-out", start_date="2019-01-02", end_date="2019-01-06")
    split = split_events(LOG, config, exclude_tracks=["t7"])
    # u1 from 2019-01-02 on: t2, t3, t4, then t1 (its listen of 01-04 is now its first); u2, u3: too few
    assert pairs(split.test) == [("u1", "t1")] and pairs(split.val) == [("u1", "t4")]
    assert pairs(split.train) == [("u1", "t2"), ("u1", "t3"), ("u2", "t9"), ("u2", "t8"), ("u3", "t2")]
    assert config.describe() == "protocol leave-last-out: start 2019-01-02, end 2019-01-06"


def test_a_test_date_is_refused_rather_than_ignored():
    with pytest.raises(SonicError, match="protocol leave-last-out has no test date"):
        SplitConfig.for_protocol("leave-last-out", test_date="2019-01-02")


def test_too_short_histories_are_a_clear_error():
    with pytest.raises(DataError, match="no user has the 3 distinct tracks leave-last-out needs"):
        split_events(LOG[LOG["user_id"] == "u3"], SplitConfig.for_protocol("leave-last-out"))


def test_data_split_command_writes_a_readable_folder(tmp_path):
    source = tmp_path / "events.csv"
    LOG.to_csv(source, index=False)
    out = tmp_path / "split"
    result = subprocess.run(
        [sys.executable, "-m", "sonic", "data-split", "--interactions", str(source), "--protocol", "leave-last-out",
         "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "protocol leave-last-out" in result.stdout
    split = read_split(out)
    assert pairs(split.test) == [("u1", "t4"), ("u2", "t8")]
    assert split.config.protocol == "leave-last-out" and split.config.test_date is None
