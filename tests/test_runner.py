"""The embedding runner (sonic.tails.runner): shards and resuming, order of batches, text and
tabular inputs, manifests, and a `sonic embed` killed with SIGKILL halfway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from audio_fixtures import noise, tone, write

from sonic.cli import main
from sonic.errors import DataError, SonicError
from sonic.tails.models.mfcc import MFCCConfig, MFCCEmbedder
from sonic.tails.runner import embed_folder
from sonic.tails.table import read_embeddings

RATE = 22050


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """12 wav files of distinct lengths (track i lasts 1 + i/10 s), one broken file among them."""
    root = tmp_path_factory.mktemp("tracks")
    for i in range(12):
        seconds = 1.0 + i / 10
        write(root / f"t{i:02d}", tone(200.0 + 40 * i, seconds, RATE) + noise(seconds, RATE, seed=i), RATE)
    (root / "t05b.wav").write_bytes(b"")  # sorts between t05 and t06
    return root


def _table(result):
    table = read_embeddings(result.table_path)
    return table.track_ids, table.vectors


class _Interrupted(Exception):
    pass


class _StopsAfter(MFCCEmbedder):
    """MFCC in the main process that is 'killed' after ``calls`` batches (the same name and manifest)."""

    runs_in_workers = False

    def __init__(self, calls: int) -> None:
        super().__init__(MFCCConfig(n_mfcc=20))
        self.calls = calls

    def embed(self, batch):
        if self.calls == 0:
            raise _Interrupted
        self.calls -= 1
        return super().embed(batch)


class _Recording(MFCCEmbedder):
    """MFCC in the main process that records the length of every waveform of every batch."""

    runs_in_workers = False

    def __init__(self) -> None:
        super().__init__(MFCCConfig(n_mfcc=20))
        self.batches: list[list[int]] = []

    def embed(self, batch):
        self.batches.append([len(waveform) for waveform in batch])
        return super().embed(batch)


def test_a_rerun_reuses_finished_shards_and_gives_the_same_table(folder, tmp_path):
    whole = embed_folder(folder, "mfcc_20", tmp_path / "whole", num_workers=0, shard_size=4, progress=False)
    out = tmp_path / "resumed"

    with pytest.raises(_Interrupted):
        embed_folder(folder, _StopsAfter(calls=5), out, num_workers=0, batch_size=2, shard_size=4, progress=False)
    shards = sorted((out / "mfcc_20.shards").glob("*.parquet"))
    assert [path.name for path in shards] == ["00000.parquet", "00001.parquet"]  # 2 batches of 2 per shard
    assert not (out / "mfcc_20.parquet").exists()

    resumed = embed_folder(folder, "mfcc_20", out, num_workers=2, batch_size=3, shard_size=4, progress=False)

    assert resumed.n_reused == 8
    assert whole.n_reused == 0
    ids, vectors = _table(resumed)
    np.testing.assert_array_equal(ids, _table(whole)[0])
    np.testing.assert_array_equal(vectors, _table(whole)[1])
    assert resumed.failures == whole.failures and len(resumed.failures) == 1
    assert not (out / "mfcc_20.shards").exists()
    assert json.loads(resumed.manifest_path.read_text())["n_reused"] == 8


def test_a_changed_input_or_option_is_recomputed(folder, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(_Interrupted):
        embed_folder(folder, _StopsAfter(calls=4), out, num_workers=0, batch_size=2, shard_size=4, progress=False)

    later = embed_folder(folder, "mfcc_20", out, num_workers=0, offset_seconds=0.01, shard_size=4, progress=False)

    assert later.n_reused == 0  # another window: nothing of the first run may be reused


def test_batches_are_formed_in_input_order_within_shards(folder, tmp_path):
    embedder = _Recording()

    embed_folder(folder, embedder, tmp_path, num_workers=2, batch_size=3, shard_size=5, progress=False)

    lengths = [round((1.0 + i / 10) * RATE) for i in range(12)]  # t05b (broken) is position 6 of 13
    assert [n for batch in embedder.batches for n in batch] == lengths
    # shard 0: t00-t04 -> 3 + 2; shard 1: t05, t05b (failed), t06-t08 -> 3 + 1; shard 2: t09-t11 -> 3
    assert [len(batch) for batch in embedder.batches] == [3, 2, 3, 1, 3]


def test_manifest_records_inputs_resampler_and_counts(folder, tmp_path):
    result = embed_folder(folder, "mfcc_20", tmp_path, num_workers=0, progress=False)

    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["embedder"] == "mfcc_20" and manifest["modality"] == "audio"
    assert manifest["sample_rate"] == RATE and manifest["pooling"] == "mean over time"
    assert manifest["resampler"].startswith("soxr ") and "quality HQ" in manifest["resampler"]
    assert "sonic" in manifest["versions"] and "numpy" in manifest["versions"]
    inputs = manifest["inputs"]
    assert inputs["columns"] == ["path", "size_bytes", "mtime_ns"]
    assert [row[0] for row in inputs["rows"]] == sorted(path.name for path in folder.iterdir())
    assert inputs["rows"][0][1] == (folder / "t00.wav").stat().st_size
    assert (manifest["n_inputs"], manifest["n_embedded"], manifest["n_failed"]) == (13, 12, 1)


class _TextLength:
    """A text embedder for the test: (characters, words, lines) of each text."""

    name, dim, sample_rate, modality = "text_length", 3, 0, "text"

    def embed(self, batch):
        return np.array([[len(text), len(text.split()), text.count("\n") + 1] for text in batch], np.float32)

    def describe(self):
        return {"model": self.name}


class _Columns:
    """A tabular embedder for the test: two columns of each row."""

    name, dim, sample_rate, modality = "two_columns", 2, 0, "tabular"

    def embed(self, batch):
        return np.array([[row["energy"], row["tempo"]] for row in batch], np.float32)

    def describe(self):
        return {"model": self.name}


def test_text_inputs_from_a_lyrics_folder_or_a_music4all_release(tmp_path):
    root = tmp_path / "m4a"
    (root / "lyrics").mkdir(parents=True)
    (root / "lyrics" / "a1.txt").write_text("one two\nthree", encoding="utf-8")
    (root / "lyrics" / "b2.txt").write_text("   \n", encoding="utf-8")
    (root / "lyrics" / "c3.txt").write_bytes(b"\xff\xfe\xfa not utf-8")

    by_folder = embed_folder(None, _TextLength(), tmp_path / "a", lyrics_dir=root / "lyrics", progress=False)
    by_release = embed_folder(None, _TextLength(), tmp_path / "b", music4all_root=root, num_workers=0, progress=False)

    for result in (by_folder, by_release):
        ids, vectors = _table(result)
        assert ids.tolist() == ["a1"] and vectors.tolist() == [[13.0, 3.0, 2.0]]
        assert [name for name, _ in result.failures] == ["b2.txt", "c3.txt"]
        assert "holds no text" in result.failures[0][1] and "not UTF-8" in result.failures[1][1]


def _music4all_release(root: Path, frame: pd.DataFrame) -> Path:
    """A tiny Music4All release (its five tab-separated tables) holding ``frame``'s tracks."""
    root.mkdir()
    ids = frame["id"]
    tables = {
        "id_information.csv": pd.DataFrame({"id": ids, "artist": "a", "song": "s", "album_name": "b"}),
        "id_metadata.csv": frame.assign(spotify_id="sp", popularity=50.0, release=2001, danceability=0.5, key=1,
                                        mode=1, valence=0.5, duration_ms=30000),
        "id_genres.csv": pd.DataFrame({"id": ids, "genres": ["rock,pop", "jazz", "rock"]}),
        "id_tags.csv": pd.DataFrame({"id": ids, "tags": ["loud", "calm", "loud,fast"]}),
        "id_lang.csv": pd.DataFrame({"id": ids, "lang": "en"}),
    }
    for name, table in tables.items():
        table.to_csv(root / name, sep="\t", index=False)
    return root


class _ColumnsAndGenres(_Columns):
    name, dim = "columns_and_genres", 3

    def embed(self, batch):
        return np.array([[row["energy"], row["tempo"], len(row["genres"])] for row in batch], np.float32)


def test_tabular_inputs_from_a_table_or_a_music4all_release(tmp_path):
    frame = pd.DataFrame({"id": ["x1", "x2", "x3"], "energy": [0.1, 0.5, 0.9], "tempo": [90.0, 120.0, 150.0]})
    release = _music4all_release(tmp_path / "m4a", frame)
    frame.rename(columns={"id": "track_id"}).to_parquet(tmp_path / "meta.parquet")
    exclude = tmp_path / "exclude.csv"
    exclude.write_text("track_id\nx2\n")

    by_file = embed_folder(None, _Columns(), tmp_path / "a", metadata_file=tmp_path / "meta.parquet", progress=False)
    by_release = embed_folder(None, _ColumnsAndGenres(), tmp_path / "b", music4all_root=release, exclude=exclude,
                              progress=False)

    assert _table(by_file)[0].tolist() == ["x1", "x2", "x3"]
    np.testing.assert_allclose(_table(by_file)[1], frame[["energy", "tempo"]].to_numpy(np.float32))
    assert _table(by_release)[0].tolist() == ["x1", "x3"]
    np.testing.assert_allclose(_table(by_release)[1], [[0.1, 90.0, 2.0], [0.9, 150.0, 1.0]])
    manifest = json.loads(by_release.manifest_path.read_text())
    assert manifest["n_excluded"] == 1
    assert [row[0] for row in manifest["inputs"]["rows"]] == ["id_metadata.csv", "id_genres.csv", "id_tags.csv"]


def test_a_missing_input_names_the_option_to_give(folder, tmp_path):
    expected = r"^embedder 'text_length' embeds lyrics; give --lyrics-dir or --music4all-root$"
    with pytest.raises(SonicError, match=expected):
        embed_folder(folder, _TextLength(), tmp_path)
    with pytest.raises(SonicError, match=r"^embedder 'two_columns' embeds metadata; give --metadata-file or"):
        embed_folder(None, _Columns(), tmp_path)
    with pytest.raises(SonicError, match=r"^embedder 'mfcc_20' embeds audio; give the audio folder with --audio-dir$"):
        embed_folder(None, "mfcc_20", tmp_path)
    (tmp_path / "meta.csv").write_text("song,energy\nx,0.5\n")
    with pytest.raises(DataError, match=r"metadata table '.*meta.csv' has no 'track_id' column; found: song, energy"):
        embed_folder(None, _Columns(), tmp_path, metadata_file=tmp_path / "meta.csv")
    with pytest.raises(DataError, match="t00.wav.* is not a known table format"):
        embed_folder(None, _Columns(), tmp_path, metadata_file=folder / "t00.wav")
    with pytest.raises(SonicError, match="shard size must be a positive integer"):
        embed_folder(folder, "mfcc_20", tmp_path, shard_size=0)


def test_cli_a_missing_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    (tmp_path / "lyrics").mkdir()
    (tmp_path / "lyrics" / "a.txt").write_text("hello")

    with pytest.raises(SystemExit) as exit_status:
        main(["embed", "--model-type", "mfcc_20", "--lyrics-dir", str(tmp_path / "lyrics"),
              "--out", str(tmp_path / "out")])

    assert exit_status.value.code == 2
    expected = "sonic: error: embedder 'mfcc_20' embeds audio; give the audio folder with --audio-dir"
    assert capsys.readouterr().err.strip().splitlines() == [expected]
    assert not (tmp_path / "out").exists()  # the output folder it made for nothing is gone again


# --- SIGKILL halfway, as an out-of-memory killer does, then a rerun ---

N_TRACKS, SHARD = 160, 4


def _children(pid: int) -> list[int]:
    """Pids of the live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; it only waits to be reaped


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_halfway_leaves_no_workers_and_a_rerun_finishes_the_same_table(tmp_path):
    audio = tmp_path / "audio"
    for i in range(N_TRACKS):
        write(audio / f"track{i:03d}", tone(110.0 + 5 * i, 3.0, 44100) + noise(3.0, 44100, seed=i), 44100)
    whole = embed_folder(audio, "mfcc_104", tmp_path / "whole", num_workers=2, batch_size=2, shard_size=SHARD,
                         progress=False)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "sonic", "embed", "--audio-dir", str(audio), "--model-type", "mfcc_104",
               "--out", str(out), "--num-workers", "2", "--batch-size", "2", "--shard-size", str(SHARD)]
    shards = out / "mfcc_104.shards"
    n_shards = N_TRACKS // SHARD

    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(shards.glob("*.parquet"))) < n_shards // 3:
        time.sleep(0.005)
    workers = _children(run.pid)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    done = len(list(shards.glob("*.parquet")))

    assert workers, "the killed run had no worker processes"
    assert n_shards // 3 <= done < n_shards and not (out / "mfcc_104.parquet").exists(), done
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if _alive(pid)], "workers outlived their killed parent"

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)

    assert rerun.returncode == 0, rerun.stderr
    reused = int(rerun.stdout.split("reused ")[1].split()[0])
    assert reused == done * SHARD
    assert f"embedded {N_TRACKS} tracks" in rerun.stdout
    ours, theirs = read_embeddings(out / "mfcc_104.parquet"), read_embeddings(whole.table_path)
    np.testing.assert_array_equal(ours.track_ids, theirs.track_ids)
    np.testing.assert_array_equal(ours.vectors, theirs.vectors)


class _TorchProbe:
    """A torch embedder that records whether its forward pass ran without autograd, and in which dtype."""

    name, dim, sample_rate, modality = "torch_probe", 2, 8000, "audio"
    device = "cpu"

    def __init__(self) -> None:
        self.seen: list[tuple[bool, bool]] = []

    def embed(self, batch):
        import torch

        self.seen.append((torch.is_inference_mode_enabled(), torch.is_autocast_enabled("cuda")))
        return np.array([[float(np.mean(w)), float(np.std(w))] for w in batch], np.float32)

    def describe(self):
        return {"model": self.name}


def test_a_torch_embedder_runs_in_inference_mode_in_the_main_process(folder, tmp_path):
    pytest.importorskip("torch")
    embedder = _TorchProbe()

    result = embed_folder(folder, embedder, tmp_path, num_workers=2, batch_size=4, progress=False)

    assert result.n_embedded == 12
    assert embedder.seen and all(inference and not autocast for inference, autocast in embedder.seen)
