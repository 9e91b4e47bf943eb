"""The one table reader (every format, ids as strings) and Unix-time timestamps recognised by magnitude."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sonic.cli import main
from sonic.cream.data import epoch_unit, normalise_events, read_split, read_table
from sonic.errors import DataError

FRAME = pd.DataFrame({"user_id": [7, 12], "track_id": ["0009lFtIvgjIcGfe", "x"], "score": [0.5, 0.25]})


def run_cli(capsys, *arguments) -> tuple[int, str, str]:
    """``sonic ARGUMENTS`` in this process: (exit status, stdout, stderr)."""
    try:
        main([str(a) for a in arguments])
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(path, frame: pd.DataFrame) -> None:
    """``frame`` in the format ``path``'s name asks for."""
    name = path.name
    if name.endswith((".parquet", ".pqt")):
        frame.to_parquet(path)
        return
    text = frame.to_csv(sep="," if ".csv" in name else "\t", index=False).encode()
    if name.endswith(".bz2"):
        text = bz2.compress(text)
    elif name.endswith(".gz"):
        text = gzip.compress(text)
    elif name.endswith(".xz"):
        text = lzma.compress(text)
    elif name.endswith(".zst"):
        sink = pa.BufferOutputStream()
        with pa.CompressedOutputStream(sink, "zstd") as stream:
            stream.write(text)
        text = sink.getvalue().to_pybytes()
    elif name.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(name.removesuffix(".zip"), text)
        return
    path.write_bytes(text)


@pytest.mark.parametrize(
    "name",
    ["t.csv", "t.tsv", "t.txt", "t.parquet", "t.pqt", "t.csv.bz2", "t.tsv.gz", "t.tsv.xz", "t.csv.zst", "t.csv.zip"],
)
def test_every_format_reads_to_the_same_frame_with_string_ids(tmp_path, name):
    write(tmp_path / name, FRAME)
    frame = read_table(tmp_path / name)
    assert frame["user_id"].tolist() == ["7", "12"]
    assert frame["track_id"].tolist() == ["0009lFtIvgjIcGfe", "x"]
    assert str(frame["user_id"].dtype) == "str" and str(frame["track_id"].dtype) == "str"
    np.testing.assert_allclose(frame["score"].to_numpy(), [0.5, 0.25])


def test_columns_select_when_present_and_everything_comes_back_otherwise(tmp_path):
    write(tmp_path / "t.pqt", FRAME)
    assert list(read_table(tmp_path / "t.pqt", columns=["track_id"]).columns) == ["track_id"]
    every = read_table(tmp_path / "t.pqt", columns=["track_id", "rank"])
    assert list(every.columns) == ["user_id", "track_id", "score"]


def test_a_separator_override_reads_tab_separated_csv_as_published(tmp_path):
    path = tmp_path / "id_lang.csv"
    path.write_text('id\tlang\n0009lFtIvgjIcGfe\ten\n"odd\tpt\n')  # a quote is text in the release
    frame = read_table(path, sep="\t", what="Music4All")
    assert frame["id"].tolist() == ["0009lFtIvgjIcGfe", '"odd'] and frame["lang"].tolist() == ["en", "pt"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, r"^truth file '.*missing\.csv' does not exist$"),
        ("t.json", "{}", r"^truth file '.*t\.json' is not a known table format; use one of .*\.pqt"),
        ("t.pqt.gz", "x", r"is not a known table format"),
        ("t.pqt", "not parquet", r"^cannot read '.*t\.pqt': "),
        ("t.csv.bz2", "not bzip2", r"^cannot read '.*t\.csv\.bz2': "),
        ("t.csv.zst", "not zstd", r"^cannot read '.*t\.csv\.zst': "),
    ],
)
def test_bad_files_are_one_sentence_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message) as caught:
        read_table(path, what="truth")
    assert "\n" not in str(caught.value)


def test_evaluate_reads_a_pqt_ground_truth(tmp_path, capsys):
    """Defect 5: `sonic evaluate --ground-truth x.pqt` was refused while data-split read .pqt."""
    truth = tmp_path / "x.pqt"
    pd.DataFrame({"user_id": [1, 2], "track_id": [10, 20]}).to_parquet(truth)
    recommendations = tmp_path / "recs.csv"
    recommendations.write_text("user_id,track_id,rank\n1,10,1\n1,11,2\n2,21,1\n2,20,2\n")
    output = tmp_path / "metrics.json"
    code, out, err = run_cli(
        capsys, "evaluate", "--recommendations", recommendations, "--ground-truth", truth, "--k", 2, "--output", output
    )
    assert code == 0, err
    means = json.loads(output.read_text())
    assert means["HitRate@2"] == pytest.approx(1.0)
    assert means["MRR@2"] == pytest.approx(0.75)  # user 1 hits at rank 1, user 2 at rank 2


# --- Unix times --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        (1_550_000_000, "seconds"), (1_550_000_000.5, "seconds"), (1_550_000_000_000, "milliseconds"),
        (1_550_000_000_000_000, "microseconds"), (1_550_000_000_000_000_000, "nanoseconds"),
    ],
)  # fmt: skip
def test_unix_times_in_any_unit_give_the_same_date(value, unit):
    assert epoch_unit(value, value, "x") == unit
    frame = pd.DataFrame({"user_id": ["u1"], "track_id": ["t1"], "timestamp": [value]})
    stamp = normalise_events(frame)["timestamp"].iloc[0]
    expected = pd.Timestamp("2019-02-12 19:33:20") + pd.Timedelta(milliseconds=500 if value % 1 else 0)
    assert stamp == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1, 2], r"from 1 to 2, which are not Unix times of dates between 1980 and 2100 in any one unit"),
        ([1_550_000_000, 1_550_000_000_000], r"from 1\.55e\+09 to 1\.55e\+12, which are not Unix times"),
    ],
)
def test_implausible_or_mixed_unix_times_are_refused_in_one_sentence(values, message):
    frame = pd.DataFrame({"user_id": ["u1", "u1"], "track_id": ["t1", "t2"], "timestamp": values})
    with pytest.raises(DataError, match=message) as caught:
        normalise_events(frame, source="'plays.csv'")
    assert str(caught.value).startswith("'plays.csv' has numeric timestamps") and "\n" not in str(caught.value)


def test_data_split_reads_millisecond_timestamps(tmp_path, capsys):
    """Defect 1: `u1,t1,1550000000000` crashed data-split with a traceback."""
    lines = ["user_id,track_id,timestamp"]
    for user in range(6):
        lines += [f"u{user},t{user % 3},1545000000000", f"u{user},t{(user + 1) % 3},1550000000000"]
    plays = tmp_path / "plays.csv"
    plays.write_text("\n".join(lines) + "\n")
    out = tmp_path / "split"
    code, _, err = run_cli(capsys, "data-split", "--interactions", plays, "--protocol", "sonic", "--out", out)
    assert code == 0, err
    split = read_split(out)
    assert split.train["timestamp"].unique().tolist() == [pd.Timestamp("2018-12-16 22:40:00")]
    evaluation = pd.concat([split.val, split.test])
    assert evaluation["timestamp"].unique().tolist() == [pd.Timestamp("2019-02-12 19:33:20")]
