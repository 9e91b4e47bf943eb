"""Listening-event loaders: every format to one frame, every bad input to one clear DataError."""

from __future__ import annotations

import bz2

import numpy as np
import pandas as pd
import pytest

from sonic.cream.data.events import EVENT_COLUMNS, as_ids, compress, load_events, load_track_ids, normalise_events
from sonic.errors import DataError

RAW = pd.DataFrame(
    {
        "user_id": ["u1", "u1", "u2", "u1"],
        "track_id": ["0009lFtIvgjIcGfe", "00BIw4vWvdsTd0vf", "0009lFtIvgjIcGfe", "0009lFtIvgjIcGfe"],
        "timestamp": ["2019-02-03 10:00:00", "2019-02-01 09:30:00", "2019-02-02 12:00:00", "2019-02-01 08:00:00"],
    }
)


def expected_raw() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": pd.Series(RAW["user_id"], dtype="str"),
            "track_id": pd.Series(RAW["track_id"], dtype="str"),
            "timestamp": pd.to_datetime(RAW["timestamp"]).astype("datetime64[ns]"),
            "count": np.ones(len(RAW), dtype=np.int64),
        }
    )


def write_text(path, frame: pd.DataFrame, sep: str) -> None:
    text = frame.to_csv(sep=sep, index=False)
    if path.suffix == ".bz2":
        path.write_bytes(bz2.compress(text.encode()))
    else:
        path.write_text(text)


@pytest.mark.parametrize(
    ("name", "sep"),
    [
        ("events.tsv", "\t"), ("events.tsv.bz2", "\t"), ("events.csv", ","), ("events.csv.bz2", ","),
        ("events.txt", "\t"),
    ],  # fmt: skip
)
def test_raw_text_formats_load_to_the_standard_frame(tmp_path, name, sep):
    path = tmp_path / name
    write_text(path, RAW, sep)
    pd.testing.assert_frame_equal(load_events(path), expected_raw())


def test_raw_parquet_loads_to_the_standard_frame(tmp_path):
    path = tmp_path / "events.parquet"
    RAW.assign(timestamp=pd.to_datetime(RAW["timestamp"])).to_parquet(path)
    pd.testing.assert_frame_equal(load_events(path), expected_raw())


def test_compressed_onion_shaped_parquet_keeps_int_ids_as_strings_and_counts(tmp_path):
    onion = pd.DataFrame(
        {
            "user_id": np.array([20, 20, 120260], dtype=np.int64),
            "track_id": np.array([2432, 56505, 3], dtype=np.int64),
            "timestamp": pd.to_datetime(["2019-02-16 10:49:45", "2019-02-01 00:01:09", "2019-02-28 23:59:11"]),
            "count": np.array([1, 217, 3], dtype=np.int64),
        },
        index=[5092, 5112, 7],  # the published files keep a pandas index column
    )
    path = tmp_path / "val.pqt"
    onion.to_parquet(path)
    events = load_events(path)
    assert list(events.columns) == list(EVENT_COLUMNS)
    assert events.dtypes.astype(str).tolist() == ["str", "str", "datetime64[ns]", "int64"]
    assert events["user_id"].tolist() == ["20", "20", "120260"]
    assert events["track_id"].tolist() == ["2432", "56505", "3"]
    assert events["count"].tolist() == [1, 217, 3]
    assert events["timestamp"].tolist() == onion["timestamp"].tolist()


def test_timestamps_with_offsets_become_naive_utc_and_numbers_are_unix_seconds():
    frame = pd.DataFrame(
        {"user_id": ["a", "a"], "track_id": ["x", "y"], "timestamp": ["2019-02-01T01:00:00+01:00", "2019-02-01 00:00"]}
    )
    stamps = normalise_events(frame)["timestamp"]
    assert stamps.tolist() == [pd.Timestamp("2019-02-01")] * 2
    seconds = frame.assign(timestamp=[1548979200, 1548979200.0])
    assert normalise_events(seconds)["timestamp"].tolist() == [pd.Timestamp("2019-02-01")] * 2


def test_dates_in_a_non_iso_form_still_parse():
    frame = pd.DataFrame({"user_id": ["a", "a"], "track_id": ["x", "y"], "timestamp": ["2019-02-01", "Feb 3 2019"]})
    assert normalise_events(frame)["timestamp"].tolist() == [pd.Timestamp("2019-02-01"), pd.Timestamp("2019-02-03")]


def test_float_ids_without_fractions_read_like_integers():
    assert as_ids(pd.Series([7.0, 120260.0])).tolist() == ["7", "120260"]
    assert as_ids(np.array([7, 8], dtype=np.int64)).tolist() == ["7", "8"]
    assert as_ids(iter(["a"])).tolist() == ["a"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("wrong.tsv", "userid\ttrack_id\ttimestamp\nu1\tt1\t2019-02-01\n", r"no column 'user_id'; found: 'userid'"),
        ("dates.csv", "user_id,track_id,timestamp\nu1,t1,2019-02-01\nu1,t2,soon\n", r"not a date: 'soon'"),
        ("empty.tsv", "", r"'.*empty\.tsv' is empty"),
        ("header.tsv", "user_id\ttrack_id\ttimestamp\n", r"holds no listening events"),
        ("events.json", "{}", r"not a known table format; use one of .*\.csv"),
        ("tabs.csv", "user_id\ttrack_id\ttimestamp\nu1\tt1\t2019-02-01\n", r"is the separator right"),
        ("count.csv", "user_id,track_id,timestamp,count\nu1,t1,2019-02-01,0\n", r"'count' column .* positive whole"),
        ("half.csv", "user_id,track_id,timestamp,count\nu1,t1,2019-02-01,1.5\n", r"'count' column .* positive whole"),
        ("blank.csv", "user_id,track_id,timestamp\nu1,,2019-02-01\n", r"empty track_id"),
        ("broken.parquet", "not parquet at all", r"cannot read '.*broken\.parquet'"),
    ],
)
def test_bad_files_raise_one_clear_data_error_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message) as caught:
        load_events(path)
    assert name in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"listening-events file '.*nowhere\.tsv' does not exist"):
        load_events(tmp_path / "nowhere.tsv")


def test_a_corrupt_bz2_is_a_data_error(tmp_path):
    path = tmp_path / "events.tsv.bz2"
    path.write_bytes(b"BZh9 definitely not bzip2")
    with pytest.raises(DataError, match=r"cannot read"):
        load_events(path)


def test_compress_sums_counts_and_keeps_the_first_timestamp():
    events = normalise_events(RAW)
    packed = compress(events)
    assert packed.dtypes.astype(str).tolist() == ["str", "str", "datetime64[ns]", "int64"]
    rows = {(r.user_id, r.track_id): (r.timestamp, r.count) for r in packed.itertuples()}
    assert rows == {
        ("u1", "0009lFtIvgjIcGfe"): (pd.Timestamp("2019-02-01 08:00"), 2),
        ("u1", "00BIw4vWvdsTd0vf"): (pd.Timestamp("2019-02-01 09:30"), 1),
        ("u2", "0009lFtIvgjIcGfe"): (pd.Timestamp("2019-02-02 12:00"), 1),
    }
    assert packed["user_id"].tolist() == ["u1", "u1", "u2"]  # sorted by user, then first listen


def test_compressing_compressed_rows_adds_their_counts():
    packed = compress(normalise_events(RAW))
    later = packed.assign(timestamp=packed["timestamp"] + pd.Timedelta(days=30), count=packed["count"] * 10)
    again = compress(pd.concat([later, packed]))
    pd.testing.assert_frame_equal(again, packed.assign(count=packed["count"] * 11))


def test_track_lists_load_from_csv_and_parquet(tmp_path):
    csv = tmp_path / "no_audio.csv"
    csv.write_text("track_id,reason\n3,missing\n0009lFtIvgjIcGfe,short\n3,again\n")
    assert load_track_ids(csv).tolist() == ["0009lFtIvgjIcGfe", "3"]
    parquet = tmp_path / "no_audio.parquet"
    pd.DataFrame({"track_id": np.array([5, 3], dtype=np.int64)}).to_parquet(parquet)
    assert load_track_ids(parquet).tolist() == ["3", "5"]


def test_a_track_list_without_track_id_is_named(tmp_path):
    path = tmp_path / "tracks.csv"
    path.write_text("id\n3\n")
    with pytest.raises(DataError, match=r"track list '.*tracks\.csv' has no 'track_id' column; found: 'id'"):
        load_track_ids(path)
