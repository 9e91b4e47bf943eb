"""`sonic find-corrupt`: each problem, the loudness measure, and the output as an exclude file (sonic.cream.audio.corrupt)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from audio_fixtures import noise, tone, truncate, write
from cli_runner import sonic

from sonic.cream.audio.corrupt import COLUMNS, PROBLEMS, find_corrupt, inspect_file
from sonic.cream.data.events import load_track_ids
from sonic.cream.data.splits import SplitConfig
from sonic.cream.data.splitting import split_events
from sonic.errors import SonicError
from sonic.tails.runner import embed_folder
from sonic.tails.table import read_embeddings

RATE = 22050
GOOD = ("ok/tone", "ok/stereo", "ok/faint")
EXPECTED = {  # relative path -> problem
    "bad/empty.wav": "empty",
    "bad/text.mp3": "undecodable",
    "bad/cut.wav": "truncated",
    "bad/short.ogg": "too_short",
    "bad/zeros.flac": "silent",
    "bad/hiss.m4a": "quiet",
}


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    root = tmp_path_factory.mktemp("music")
    write(root / "ok/tone", tone(440.0, 2.0, RATE), RATE, "wav_pcm16")
    write(root / "ok/stereo", np.stack([tone(220.0, 2.0, RATE), noise(2.0, RATE)], axis=1), RATE, "flac")
    write(root / "ok/faint", tone(440.0, 2.0, RATE, amplitude=10 ** (-50 / 20)), RATE, "wav_float")  # -53 dBFS RMS
    (root / "bad").mkdir()
    (root / "bad/empty.wav").write_bytes(b"")
    (root / "bad/text.mp3").write_text("ID3 but not really an mp3")
    truncate(write(root / "bad/cut", noise(2.0, RATE), RATE, "wav_pcm24"))
    write(root / "bad/short", tone(440.0, 0.2, RATE), RATE, "ogg_vorbis")
    write(root / "bad/zeros", np.zeros(2 * RATE, np.float32), RATE, "flac")
    write(root / "bad/hiss", noise(2.0, RATE, amplitude=10 ** (-70 / 20)), RATE, "m4a_aac")
    return root


@pytest.fixture(scope="module")
def found(music, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "exclude.parquet"
    result = find_corrupt(music, out, num_workers=2, progress=False)
    return result, pd.read_parquet(out)


def test_each_problem_is_named_with_its_reason(found):
    result, table = found

    assert list(table.columns) == list(COLUMNS)
    assert dict(zip(table["path"], table["problem"])) == EXPECTED
    assert list(table["track_id"]) == [path.rsplit(".", 1)[0] for path in table["path"]]
    reasons = dict(zip(table["problem"], table["reason"]))
    assert "empty (0 bytes)" in reasons["empty"] and "cannot decode" in reasons["undecodable"]
    assert "truncated" in reasons["truncated"] and "0.20 s" in reasons["too_short"]
    assert "every sample is zero" in reasons["silent"] and "below -60 dBFS" in reasons["quiet"]
    for path, reason in zip(table["path"], table["reason"]):
        assert path.rsplit("/", 1)[-1] in reason and "\n" not in reason
    assert result.counts == {problem: int(problem in EXPECTED.values()) for problem in PROBLEMS}
    assert result.summary() == (
        "scanned 9 files: 6 with problems (empty 1, undecodable 1, truncated 1, too_short 1, silent 1, quiet 1)"
    )
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["loudness_threshold_dbfs"] == -60.0 and manifest["counts"]["quiet"] == 1


def test_loudness_is_the_rms_of_every_channel_in_dbfs(tmp_path):
    # A full-scale sine is -3.01 dBFS RMS; a stereo file whose channels cancel in a mono mix is not silent.
    sine = write(tmp_path / "sine", tone(100.0, 2.0, 8000, amplitude=1.0) * 0.999, 8000, "wav_float")
    opposed = np.stack([tone(100.0, 2.0, 8000, amplitude=0.01), -tone(100.0, 2.0, 8000, amplitude=0.01)], axis=1)
    cancelling = write(tmp_path / "opposed", opposed, 8000, "wav_float")

    assert inspect_file(sine, loudness_threshold_dbfs=-3.0)[0] == "quiet"
    assert inspect_file(sine, loudness_threshold_dbfs=-3.02) == (None, None)
    assert inspect_file(cancelling, loudness_threshold_dbfs=-43.1) == (None, None)  # -43.01 dBFS
    assert inspect_file(cancelling, loudness_threshold_dbfs=-43.0)[0] == "quiet"
    assert inspect_file(sine, min_seconds=2.5)[0] == "too_short"


def test_csv_output_and_thresholds(music, tmp_path):
    out = tmp_path / "exclude.csv"

    find_corrupt(music, out, loudness_threshold_dbfs=-45.0, min_seconds=0.1, num_workers=0, progress=False)

    table = pd.read_csv(out)
    assert table.loc[table["path"] == "ok/faint.wav", "problem"].tolist() == ["quiet"]
    assert "bad/short.ogg" not in set(table["path"])


def test_the_output_excludes_those_tracks_from_embed_and_data_split(music, found):
    result, table = found

    embedded = embed_folder(music, "mfcc_13", result.out_path.parent / "emb", exclude=result.out_path,
                            num_workers=0, progress=False)  # fmt: skip

    assert sorted(read_embeddings(embedded.table_path).track_ids) == sorted(GOOD)
    assert embedded.n_failed == 0
    assert set(load_track_ids(result.out_path)) == set(table["track_id"])
    tracks = list(GOOD) + list(table["track_id"])  # u1 plays every track in spring, u2 and u3 in summer
    plays = [("u1", track, "2018-03-01") for track in tracks] + [
        ("u2", GOOD[0], "2018-03-01"),
        ("u3", GOOD[0], "2018-03-01"),
    ]
    plays += [(user, track, "2018-07-01") for user in ("u2", "u3") for track in tracks]
    events = pd.DataFrame(plays, columns=["user_id", "track_id", "timestamp"]).astype({"timestamp": "datetime64[ns]"})
    config = SplitConfig.for_protocol("sonic", test_date="2018-06-01", end_date="2018-09-01")
    split = split_events(events, config, exclude_tracks=load_track_ids(result.out_path))
    assert set(pd.concat(split.parts.values())["track_id"]) == set(GOOD)


def test_a_folder_without_problems_writes_an_empty_table(tmp_path):
    write(tmp_path / "audio" / "a", tone(440.0, 1.5, 8000), 8000, "flac")

    result = find_corrupt(tmp_path / "audio", tmp_path / "exclude.parquet", num_workers=0, progress=False)

    assert result.counts == {problem: 0 for problem in PROBLEMS}
    assert list(pd.read_parquet(result.out_path).columns) == list(COLUMNS)
    assert len(load_track_ids(result.out_path)) == 0




def test_unreadable_files_and_duplicates_are_findings(tmp_path):
    audio = tmp_path / "audio"
    write(audio / "a", tone(440.0, 1.5, 8000), 8000, "flac")
    write(audio / "a", tone(550.0, 1.5, 8000), 8000, "ogg_vorbis")  # the same track id 'a'
    write(audio / "b", tone(660.0, 1.5, 8000), 8000, "wav_pcm16")
    (audio / "c.wav").write_bytes((audio / "b.wav").read_bytes())  # a copy
    (audio / "d.wav").symlink_to(audio / "b.wav")  # a link to it
    write(audio / "e", tone(770.0, 1.5, 8000), 8000, "wav_pcm16")  # same size as b, other bytes
    (audio / "gone.wav").symlink_to(tmp_path / "nowhere.wav")  # a link to nothing
    (audio / "z.wav").write_bytes(b"")  # empty: its problem is 'empty', not a duplicate of another empty file
    (audio / "zz.wav").write_bytes(b"")

    result = find_corrupt(audio, tmp_path / "exclude.parquet", num_workers=0, progress=False)

    table = pd.read_parquet(result.out_path)
    found = dict(zip(table["path"], zip(table["problem"], table["reason"])))
    assert {path: problem for path, (problem, _) in found.items()} == {
        "a.ogg": "duplicate_id", "c.wav": "duplicate_content", "d.wav": "duplicate_content",
        "gone.wav": "unreadable", "z.wav": "empty", "zz.wav": "empty",
    }  # fmt: skip
    assert "'a.flac', which sonic embed uses" in found["a.ogg"][1]
    assert found["c.wav"][1] == "'c.wav' holds the same bytes as 'b.wav' (a copy or a link)"
    assert "same bytes as 'b.wav'" in found["d.wav"][1]
    assert f"is a link to '{tmp_path / 'nowhere.wav'}', which does not exist" in found["gone.wav"][1]
    assert result.counts["duplicate_content"] == 2 and result.summary().startswith("scanned 9 files: 6 with problems")
    cli = sonic("find-corrupt", "--audio-dir", audio, "--out", tmp_path / "again.csv", "--num-workers", 2)
    assert cli.returncode == 0, cli.stderr
    assert "unreadable 1, empty 2, duplicate_id 1, duplicate_content 2" in cli.stdout


def test_out_is_only_written_over_when_it_is_an_earlier_output(music, tmp_path):
    mine = tmp_path / "exclude.csv"
    mine.write_text("track_id\nmy own list\n")
    with pytest.raises(SonicError, match="exists and is not a find-corrupt output that sonic wrote"):
        find_corrupt(music, mine, num_workers=0, progress=False)
    assert mine.read_text() == "track_id\nmy own list\n"

    for name in ("x.parquet", "x.csv"):
        first = find_corrupt(music, tmp_path / name, num_workers=0, progress=False)
        again = find_corrupt(music, tmp_path / name, num_workers=0, progress=False)  # its own: replaced
        assert again.counts == first.counts
    other = tmp_path / "y.parquet"
    pd.DataFrame({"track_id": ["a"]}).to_parquet(other)
    with pytest.raises(SonicError, match="not a find-corrupt output"):
        find_corrupt(music, other, num_workers=0, progress=False)
    (tmp_path / "w.manifest.json").write_text("{}")  # a manifest name that is someone else's file
    with pytest.raises(SonicError, match="not a find-corrupt manifest"):
        find_corrupt(music, tmp_path / "w.parquet", num_workers=0, progress=False)
    assert (tmp_path / "w.manifest.json").read_text() == "{}" and not (tmp_path / "w.parquet").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_find_corrupt_command_prints_counts(music, tmp_path):
    result = sonic("find-corrupt", "--audio-dir", music, "--out", tmp_path / "x.parquet", "--num-workers", 2)

    assert result.returncode == 0, result.stderr
    assert "6 with problems (empty 1, undecodable 1, truncated 1, too_short 1, silent 1, quiet 1)" in result.stdout
    assert len(pd.read_parquet(tmp_path / "x.parquet")) == 6


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--audio-dir", "{tmp}/missing"], "does not exist"),
        (["--audio-dir", "{tmp}/empty"], "no audio files"),
        (["--out", "{tmp}/exclude.xlsx"], "must end in one of .parquet, .pqt, .csv"),
        (["--loudness-threshold", "6"], "loudness threshold must be a level below 0 dBFS"),
        (["--min-seconds", "-1"], "shortest length must be >= 0 seconds"),
        (["--num-workers", "-2"], "number of workers"),
    ],
)
def test_find_corrupt_command_bad_input_is_one_line(music, tmp_path, arguments, message):
    (tmp_path / "empty").mkdir()
    options = {"--audio-dir": str(music), "--out": str(tmp_path / "exclude.parquet")}
    arguments = [a.format(tmp=tmp_path) for a in arguments]
    options.update(zip(arguments[::2], arguments[1::2]))

    result = sonic("find-corrupt", *[item for pair in options.items() for item in pair])

    assert result.returncode == 2
    assert result.stderr.startswith("sonic: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
