"""The DuckDB split against the pandas code it replaced, row for row; and split folders written atomically."""

from __future__ import annotations

import bz2
import json

import numpy as np
import pandas as pd
import pytest

import sonic.cream.data.split_files as split_files
from sonic import files
from sonic.cream.data.events import compress, normalise_events
from sonic.cream.data.split_files import read_split, split_file, split_statistics, write_split
from sonic.cream.data.splits import PROTOCOLS, SplitConfig
from sonic.cream.data.splitting import split_events
from sonic.errors import DataError, SonicError
from sonic.files import BOOKKEEPING


def reference_split(events: pd.DataFrame, config: SplitConfig, exclude_tracks=None) -> dict[str, pd.DataFrame]:
    """The in-memory pandas split as SONIC ran it before DuckDB (its draw included), kept as the reference."""
    events = normalise_events(events)
    if exclude_tracks is not None:
        events = events[~events["track_id"].isin(pd.Index(pd.Series(exclude_tracks).astype(str)))]
    stamps = events["timestamp"]
    in_window = np.ones(len(events), dtype=bool)
    if config.start_date is not None:
        in_window &= (stamps >= config.start_date).to_numpy()
    if config.end_date is not None:
        in_window &= (stamps < config.end_date).to_numpy()
    window = events[in_window]
    train = compress(window[window["timestamp"] < config.test_date])
    pairs = compress(window)
    evaluation = pairs[(pairs["timestamp"] >= config.test_date) & pairs["user_id"].isin(train["user_id"].unique())]
    seen_track = evaluation["track_id"].isin(train["track_id"].unique())
    hot, cold = evaluation[seen_track], evaluation[~seen_track]
    candidates = hot["user_id"].unique()
    if config.keep_cold:
        candidates = candidates[~pd.Index(candidates).isin(cold["user_id"].unique())]
    pool = np.sort(pd.Series(candidates).drop_duplicates().to_numpy(dtype=str))
    order = np.random.default_rng(config.seed).permutation(len(pool))
    drawn = np.sort(pool[order[: int(np.floor(config.val_fraction * len(pool) + 1e-9))]])
    in_val = hot["user_id"].isin(drawn)
    parts = {"train": train, "val": hot[in_val], "test": hot[~in_val]}
    if config.keep_cold:
        parts["cold_test"] = cold
    return {name: frame.reset_index(drop=True) for name, frame in parts.items()}


def tied_log(seed: int = 3, n_events: int = 20_000) -> pd.DataFrame:
    """Raw plays with many ties: whole-hour timestamps, 158 users (text, number-like, mixed-case, non-ASCII ids),
    1500 tracks.

    Users play the same track many times, several tracks in the same hour, across the test dates.
    """
    rng = np.random.default_rng(seed)
    cased = ["Ünal", "zoë", "Zed", "ÅSA", "bob", "Bob", "bOB", "😀"]  # byte order, not a locale's, must decide
    users = np.array([f"u{i:03d}" for i in range(100)] + [str(7 * i) for i in range(50)] + cased)
    tracks = np.array([f"{i:04d}" for i in range(1500)])
    popularity = 1.0 / np.arange(1, len(tracks) + 1) ** 0.8
    hours = rng.integers(0, 24 * 500, n_events)  # 2018-01-01 + ~500 days, hour resolution
    return pd.DataFrame(
        {
            "user_id": users[rng.integers(0, len(users), n_events)],
            "track_id": rng.choice(tracks, n_events, p=popularity / popularity.sum()),
            "timestamp": pd.Timestamp("2018-01-01") + pd.to_timedelta(hours, unit="h"),
        }
    )


CONFIGS = {
    "sonic": {"test_date": "2019-03-01"},
    "tamm2024": {"start_date": "2018-03-01", "test_date": "2019-01-15"},
    "tamm2025": {"test_date": "2019-02-01"},
}


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return tied_log()


def assert_parts_equal(parts: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    assert list(parts) == list(expected)
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(parts[name], frame, obj=name)


@pytest.mark.parametrize("protocol", sorted(name for name, p in PROTOCOLS.items() if p.splitter is None))
@pytest.mark.parametrize("seed", [42, 7])
def test_the_frame_api_gives_the_pandas_split_row_for_row(log, protocol, seed):
    config = SplitConfig.for_protocol(protocol, seed=seed, **CONFIGS[protocol])
    split = split_events(log, config)
    assert_parts_equal(split.parts, reference_split(log, config))
    assert len(split.val) > 0 and len(split.test) > 0


def test_compressed_input_and_excluded_tracks_give_the_pandas_split(log):
    packed = compress(normalise_events(log)).assign(count=lambda f: f["count"] * 3)
    packed = pd.concat([packed, packed.assign(timestamp=packed["timestamp"] + pd.Timedelta(days=40))])
    config = SplitConfig.for_protocol("tamm2025", **CONFIGS["tamm2025"])
    excluded = ["0000", "0003", "0010"]
    split = split_events(packed.sample(frac=1.0, random_state=0), config, exclude_tracks=excluded)
    assert_parts_equal(split.parts, reference_split(packed, config, exclude_tracks=excluded))
    assert not set(excluded) & set(pd.concat(split.parts.values())["track_id"])


def write_log(path, frame: pd.DataFrame) -> None:
    if path.suffix in (".parquet", ".pqt"):
        frame.to_parquet(path)
        return
    text = frame.to_csv(sep="," if ".csv" in path.name else "\t", index=False, date_format="%Y-%m-%d %H:%M:%S")
    if path.suffix == ".bz2":
        path.write_bytes(bz2.compress(text.encode()))
    elif path.suffix == ".gz":
        import gzip

        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


@pytest.mark.parametrize("name", ["plays.parquet", "plays.tsv", "plays.tsv.bz2", "plays.csv.gz"])
def test_a_streamed_file_splits_like_the_loaded_frame(tmp_path, log, name):
    path = tmp_path / name
    write_log(path, log)
    excluded = tmp_path / "excluded.csv"
    excluded.write_text("track_id,why\n0001,silent\n")
    config = SplitConfig.for_protocol("tamm2025", **CONFIGS["tamm2025"])
    written = split_file(path, config, tmp_path / "split", exclude_file=excluded)
    expected = reference_split(log, config, exclude_tracks=["0001"])
    back = read_split(tmp_path / "split")
    assert_parts_equal(back.parts, expected)
    pd.testing.assert_frame_equal(written.statistics, split_statistics(back))
    assert written.parts == ("train", "val", "test", "cold_test")


def test_a_streamed_csv_with_unix_milliseconds_and_integer_ids(tmp_path, log):
    numeric = log.assign(
        user_id=pd.factorize(log["user_id"])[0] + 1000,
        timestamp=log["timestamp"].astype("int64") // 10**6,  # ms since 1970
    )
    path = tmp_path / "plays.csv"
    numeric.to_csv(path, index=False)
    config = SplitConfig.for_protocol("sonic", **CONFIGS["sonic"])
    split_file(path, config, tmp_path / "split")
    assert_parts_equal(read_split(tmp_path / "split").parts, reference_split(log.assign(
        user_id=numeric["user_id"].astype(str)), config))


def test_a_streamed_file_with_other_date_forms_splits_like_the_loaded_frame(tmp_path, log):
    mixed = log.assign(timestamp=log["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S").astype(object))
    days = log["timestamp"].dt.hour == 0
    mixed.loc[days, "timestamp"] = log.loc[days, "timestamp"].dt.strftime("%b %d %Y")  # e.g. "Feb 03 2019"
    mixed.loc[log.index[:50], "timestamp"] = log["timestamp"][:50].dt.strftime("%Y-%m-%dT%H:%M:%S+01:00")
    path = tmp_path / "plays.tsv"
    mixed.to_csv(path, sep="\t", index=False)
    config = SplitConfig.for_protocol("tamm2025", **CONFIGS["tamm2025"])
    split_file(path, config, tmp_path / "split")
    assert_parts_equal(read_split(tmp_path / "split").parts, reference_split(mixed, config))
    assert "Feb" in " ".join(mixed["timestamp"])
    assert (log["timestamp"] != normalise_events(mixed)["timestamp"]).sum() == 50  # the +01:00 ones, an hour earlier


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("user_id,track_id,timestamp\nu1,t1,2019-02-01\nu1,t2,soon\n", r"has a timestamp that is not a date: 'soon'"),
        ("user_id,track_id,timestamp\nu1,,2019-02-01\n", r"has rows with an empty track_id"),
        ("user_id,track_id,timestamp,count\nu1,t1,2019-02-01,0\n", r"'count' column that is not a positive whole"),
        ("user_id,track_id,timestamp\n", r"holds no listening events"),
        ("user_id,track_id,timestamp\nu1,t1,1\nu1,t2,1550000000000\n", r"not Unix times of dates between 1980"),
        ("userid,track_id,timestamp\nu1,t1,2019-02-01\n", r"has no column 'user_id'; found: 'userid'"),
    ],
)
def test_a_streamed_file_is_checked_like_a_loaded_one(tmp_path, content, message):
    path = tmp_path / "plays.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as caught:
        split_file(path, SplitConfig.for_protocol("sonic"), tmp_path / "split")
    assert "plays.csv" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "split").exists()


def test_empty_parts_from_a_file_name_the_split_and_the_data_range(tmp_path, log):
    path = tmp_path / "plays.parquet"
    write_log(path, log)
    with pytest.raises(DataError, match=r"the train split is empty: .*the data runs from 2018-01-01 00:00:00"):
        split_file(path, SplitConfig.for_protocol("tamm2025", test_date="2018-01-01"), tmp_path / "split")
    with pytest.raises(DataError, match=r"every listening event is on one of the \d+ excluded tracks"):
        excluded = tmp_path / "all.parquet"
        pd.DataFrame({"track_id": sorted(set(log["track_id"]))}).to_parquet(excluded)
        split_file(path, SplitConfig.for_protocol("tamm2025"), tmp_path / "split", exclude_file=excluded)


# --- atomic split folders ----------------------------------------------------------------------


def folder_bytes(directory) -> dict[str, bytes]:
    """The split's files and their bytes (sonic's bookkeeping, the lock and the output marker, left out)."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.name not in BOOKKEEPING}


def crash(*args, **kwargs):
    raise OSError("disk full (injected)")


@pytest.mark.parametrize("writer", ["frames", "file"])
def test_a_crash_mid_write_leaves_the_old_split_whole(tmp_path, log, monkeypatch, writer):
    out = tmp_path / "split"
    old = split_events(log, SplitConfig.for_protocol("tamm2025", **CONFIGS["tamm2025"]))
    write_split(old, out, input_path="old.tsv")
    before = folder_bytes(out)
    new_config = SplitConfig.for_protocol("sonic", **CONFIGS["sonic"])
    monkeypatch.setattr(split_files, "_write_summary", crash)  # the parts are written, then the manifest fails
    with pytest.raises(OSError, match="injected"):
        if writer == "frames":
            write_split(split_events(log, new_config), out)
        else:
            path = tmp_path / "plays.parquet"
            write_log(path, log)
            split_file(path, new_config, out)
    assert folder_bytes(out) == before
    assert json.loads((out / "split.json").read_text())["input"] == "old.tsv"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging left


def test_a_rewrite_replaces_the_whole_folder(tmp_path, log):
    out = tmp_path / "split"
    write_split(split_events(log, SplitConfig.for_protocol("tamm2025", **CONFIGS["tamm2025"])), out)
    (tmp_path / ".split.staging-stale").mkdir()  # left by a killed run
    path = tmp_path / "plays.parquet"
    write_log(path, log)
    split_file(path, SplitConfig.for_protocol("sonic", **CONFIGS["sonic"]), out)
    assert sorted(folder_bytes(out)) == ["split.json", "stats.csv", "test.parquet", "train.parquet", "val.parquet"]
    assert files.read_marker(out)["kind"] == "split"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plays.parquet", "split"]


def test_a_folder_holding_other_files_is_never_replaced(tmp_path, log):
    (tmp_path / "notes.txt").write_text("mine")
    split = split_events(log, SplitConfig.for_protocol("sonic", **CONFIGS["sonic"]))
    with pytest.raises(SonicError, match=r"holds 'notes\.txt', which sonic did not write; give a new or empty folder"):
        write_split(split, tmp_path)
    path = tmp_path.parent / f"{tmp_path.name}-plays.parquet"
    write_log(path, log)
    with pytest.raises(SonicError, match=r"holds 'notes\.txt'"):
        split_file(path, split.config, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "mine"
    out = tmp_path.parent / f"{tmp_path.name}-split"  # a split sonic wrote, into which a user put a file later
    write_split(split, out)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SonicError, match=r"holds 'notes\.txt', which no split writes; choose a new or empty folder"):
        split_file(path, split.config, out)
    with pytest.raises(SonicError, match=r"holds 'notes\.txt', which no split writes"):
        write_split(split, out)
    assert (out / "notes.txt").read_text() == "mine"


def test_a_bad_memory_limit_is_one_sentence(tmp_path, log):
    path = tmp_path / "plays.parquet"
    write_log(path, log)
    with pytest.raises(SonicError, match=r"^memory limit 'lots' is not a size; use a number and a unit, such as 4GB$"):
        split_file(path, SplitConfig.for_protocol("sonic"), tmp_path / "split", memory_limit="lots")
    assert not (tmp_path / "split").exists()


def test_without_an_atomic_exchange_two_renames_still_replace_the_folder(tmp_path, log, monkeypatch):
    monkeypatch.setattr(files, "_exchange", lambda first, second: False)  # as on a system without renameat2
    out = tmp_path / "split"
    write_split(split_events(log, SplitConfig.for_protocol("tamm2025", **CONFIGS["tamm2025"])), out)
    write_split(split_events(log, SplitConfig.for_protocol("sonic", **CONFIGS["sonic"])), out, input_path="new.tsv")
    assert json.loads((out / "split.json").read_text())["input"] == "new.tsv"
    assert not (out / "cold_test.parquet").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split"]
