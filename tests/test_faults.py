"""Faults are sentences: links to nothing, read-only and full disks, NaN vectors, Ctrl-C and two writers
on one folder, across the commands that write (embed, convert, find-corrupt, visualize, data-split,
run-model, evaluate, demo)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from audio_fixtures import noise, tone, write
from cli_runner import sonic

import sonic.cream.audio.load as audio_load
from sonic import files
from sonic.cream.data.split_files import write_split
from sonic.cream.data.splits import Split, SplitConfig
from sonic.errors import DataError, SonicError
from sonic.parallel import run_tasks
from sonic.tails.models.mfcc import MFCCConfig, MFCCEmbedder
from sonic.tails.runner import embed_folder
from sonic.tails.shards import ShardStore
from sonic.tails.table import EmbeddingTable, read_embeddings, write_embeddings

RATE = 22050


@pytest.fixture
def audio(tmp_path) -> Path:
    """Eight short tracks and a link to a file that does not exist."""
    root = tmp_path / "audio"
    for i in range(8):
        write(root / f"t{i}", tone(200.0 + 50 * i, 1.2, RATE) + noise(1.2, RATE, seed=i), RATE)
    (root / "dangling.wav").symlink_to(tmp_path / "nowhere.wav")
    return root


def _one_line(result) -> str:
    """The one line a command printed on stderr, besides its progress bar."""
    lines = [line for line in result.stderr.splitlines() if line.strip() and "%|" not in line]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


# --- a link to nothing is that file's failure ----------------------------------------------------------


def test_a_link_to_nothing_is_one_failure_in_embed_convert_and_visualize(audio, tmp_path):
    reason = f"is a link to '{tmp_path / 'nowhere.wav'}', which does not exist"

    embedded = sonic("embed", "--audio-dir", audio, "--model-type", "mfcc_13", "--out", tmp_path / "emb",
                     "--num-workers", 2)  # fmt: skip
    assert embedded.returncode == 0, embedded.stderr
    failures = pd.read_csv(tmp_path / "emb" / "mfcc_13.failures.csv")
    assert failures["path"].tolist() == ["dangling.wav"] and reason in failures["reason"].iat[0]
    assert len(read_embeddings(tmp_path / "emb" / "mfcc_13.parquet").track_ids) == 8

    converted = sonic("convert", "--audio-dir", audio, "--out-dir", tmp_path / "conv", "--sample-rate", 8000,
                      "--num-workers", 0)  # fmt: skip
    assert converted.returncode == 0, converted.stderr
    assert "failed: dangling.wav: " in converted.stdout and reason in converted.stdout

    drawn = sonic("visualize", "--audio-dir", audio, "--out", tmp_path / "pics", "--kind", "fft", "--num-workers", 0)
    assert drawn.returncode == 0, drawn.stderr
    assert "failed: dangling.wav: " in drawn.stdout and "1 of 9 files failed" in drawn.stdout


# --- a read-only or full output folder is found before any work -----------------------------------------


@pytest.fixture
def nothing_decoded(monkeypatch):
    """Fail the test if any audio file is opened for decoding."""

    def refuse(path):
        raise AssertionError(f"'{path}' was decoded before the output folder was checked")

    monkeypatch.setattr(audio_load, "open_decoder", refuse)


def _read_only_below(monkeypatch, folder: Path) -> None:
    """``os.open`` for writing anything under ``folder`` fails as on a read-only file system."""
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if str(path).startswith(str(folder)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)


def _split(folder: Path) -> Path:
    rows = [(user, track) for user in ("u0", "u1", "u2") for track in ("a", "b", "c")]
    frame = pd.DataFrame(rows, columns=["user_id", "track_id"]).assign(timestamp=pd.Timestamp("2019-01-01"), count=1)
    later = frame.assign(timestamp=pd.Timestamp("2019-02-01"))
    config = SplitConfig("toy", None, "2019-01-15", None)
    return write_split(Split(config=config, train=frame, val=later, test=later), folder)


@pytest.mark.parametrize("command", ["embed", "convert", "find-corrupt", "visualize", "data-split", "run-model"])
def test_a_read_only_output_is_one_sentence_before_any_work(audio, tmp_path, monkeypatch, nothing_decoded, command):
    events = tmp_path / "events.csv"
    pd.DataFrame({"user_id": ["u"], "track_id": ["t0"], "timestamp": ["2019-01-01"]}).to_csv(events, index=False)
    split_dir = _split(tmp_path / "split")
    out = tmp_path / "ro" / "out"
    arguments = {
        "embed": ["--audio-dir", audio, "--model-type", "mfcc_13", "--out", out],
        "convert": ["--audio-dir", audio, "--out-dir", out, "--sample-rate", 8000],
        "find-corrupt": ["--audio-dir", audio, "--out", out / "exclude.parquet"],
        "visualize": ["--audio-dir", audio, "--out", out],
        "data-split": ["--interactions", events, "--protocol", "leave-last-out", "--out", out],
        "run-model": ["--model-name", "pop", "--split-dir", split_dir, "--out", out],
    }[command]
    (tmp_path / "ro").mkdir()
    _read_only_below(monkeypatch, tmp_path / "ro")
    if command == "data-split":
        monkeypatch.setattr("sonic.cream.data.stream.open_events", _must_not_run)
    if command == "run-model":
        monkeypatch.setattr("sonic.rouge.run.read_split_parts", _must_not_run)

    result = sonic(command, *arguments)

    assert result.returncode == 2
    line = _one_line(result)
    assert line.startswith("sonic: error: ") and "read-only file system" in line, line


def _must_not_run(*args, **kwargs):
    raise AssertionError("the input was read before the output folder was checked")


def test_a_full_disk_is_found_before_embedding(audio, tmp_path, monkeypatch, nothing_decoded):
    real = os.statvfs

    class Full:
        def __init__(self, stat):
            self.f_frsize, self.f_bavail = stat.f_frsize, 10

    monkeypatch.setattr(os, "statvfs", lambda path: Full(real(path)))
    result = sonic("embed", "--audio-dir", audio, "--model-type", "mfcc_13", "--out", tmp_path / "emb")
    assert result.returncode == 2 and "is full" in _one_line(result)
    assert not (tmp_path / "emb").exists()  # the folder it made for nothing is gone again


# --- a disk that fills up mid-run: one sentence, finished shards kept, a rerun continues ----------------


def test_a_disk_filling_up_mid_embed_keeps_the_finished_shards_and_a_rerun_finishes(audio, tmp_path, monkeypatch):
    whole = embed_folder(audio, "mfcc_13", tmp_path / "whole", num_workers=0, shard_size=3, progress=False)
    out = tmp_path / "out"
    real_write, calls = ShardStore.write, []

    def fills_up(self, index, key, shard):
        calls.append(index)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path(index)))
        return real_write(self, index, key, shard)

    monkeypatch.setattr(ShardStore, "write", fills_up)
    result = sonic("embed", "--audio-dir", audio, "--model-type", "mfcc_13", "--out", out, "--num-workers", 0,
                   "--shard-size", 3)  # fmt: skip

    assert result.returncode == 2
    assert _one_line(result) == (
        f"sonic: error: no space is left on the disk holding '{out.absolute()}'; 1 of 3 shards of mfcc_13 are kept "
        f"in '{out}'; run the same command again to continue"
    )
    assert [p.name for p in (out / "mfcc_13.shards").iterdir()] == ["00000.parquet"]
    monkeypatch.setattr(ShardStore, "write", real_write)
    again = sonic("embed", "--audio-dir", audio, "--model-type", "mfcc_13", "--out", out, "--num-workers", 0,
                  "--shard-size", 3)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "reused 3 tracks" in again.stdout
    ours, theirs = read_embeddings(out / "mfcc_13.parquet"), read_embeddings(whole.table_path)
    np.testing.assert_array_equal(ours.track_ids, theirs.track_ids)
    np.testing.assert_array_equal(ours.vectors, theirs.vectors)


def test_a_full_disk_while_writing_the_table_is_one_sentence(audio, tmp_path, monkeypatch):
    def full(*args, **kwargs):  # as pyarrow says it: no errno, the system's words in the message
        raise OSError("Failed to write /x/y.parquet. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(SonicError, match=r"^no space is left on the disk holding .*; 0 of 1 shards of mfcc_13 are kept"):
        embed_folder(audio, "mfcc_13", tmp_path / "out", num_workers=0, progress=False)


def test_a_disk_filling_up_mid_convert_keeps_what_was_converted(audio, tmp_path, monkeypatch):
    import sonic.cream.audio.convert as convert

    real_write, calls = convert._write, []

    def fills_up(source, path, **options):
        calls.append(source)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write(source, path, **options)

    monkeypatch.setattr(convert, "_write", fills_up)
    out = tmp_path / "conv"
    result = sonic("convert", "--audio-dir", audio, "--out-dir", out, "--sample-rate", 8000, "--num-workers", 0)

    assert result.returncode == 2
    assert _one_line(result).endswith(f"the 2 files converted so far are kept in '{out}'; run the same command again "
                                      f"to continue")  # fmt: skip
    assert sorted(p.name for p in out.glob("*.wav")) == ["t0.wav", "t1.wav"] and not list(out.glob(".*.tmp"))
    monkeypatch.setattr(convert, "_write", real_write)
    again = sonic("convert", "--audio-dir", audio, "--out-dir", out, "--sample-rate", 8000, "--num-workers", 0)
    assert again.returncode == 0 and "converted 6, skipped 2 already done, failed 1" in again.stdout


# --- NaN and infinite vectors -----------------------------------------------------------------------------


def _raw_table(path: Path, ids: list[str], vectors: np.ndarray) -> Path:
    """A Parquet table written without sonic's checks (as another tool might write it)."""
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), vectors.shape[1])
    pq.write_table(pa.table({"track_id": ids, "embedding": column}), path)
    return path


def test_nan_vectors_are_refused_when_written_and_when_read(tmp_path):
    vectors = np.ones((5, 3), np.float32)
    vectors[1, 2], vectors[3, 0] = np.nan, np.inf
    ids = ["a", "b", "c", "d", "e"]

    with pytest.raises(DataError) as written:
        write_embeddings(EmbeddingTable(np.array(ids), vectors), tmp_path / "t.parquet")
    assert str(written.value) == (
        f"embedding table '{tmp_path / 't.parquet'}' holds NaN or infinite values: track 'b' and 1 more track "
        f"(2 of 5); embed those tracks again or leave them out"
    )
    assert list(tmp_path.iterdir()) == []

    path = _raw_table(tmp_path / "raw.parquet", ids, vectors)
    with pytest.raises(DataError, match=r"'.*raw\.parquet' holds NaN or infinite values: track 'b' and 1 more"):
        read_embeddings(path)


def test_run_model_on_a_table_with_a_nan_vector_exits_2_in_one_line(tmp_path):
    split_dir = _split(tmp_path / "split")
    vectors = np.eye(3, dtype=np.float32)
    vectors[2] = np.nan
    _raw_table(tmp_path / "emb.parquet", ["a", "b", "c"], vectors)

    result = sonic("run-model", "--model-name", "knn", "--split-dir", split_dir, "--embedding", tmp_path / "emb.parquet",
                   "--out", tmp_path / "run")  # fmt: skip

    assert result.returncode == 2
    assert "holds NaN or infinite values: track 'c' (1 of 3)" in _one_line(result)


class _NanForShortInputs(MFCCEmbedder):
    """MFCC in the main process whose vector is NaN for the shortest track (as a model overflowing would)."""

    runs_in_workers = False

    def __init__(self) -> None:
        super().__init__(MFCCConfig(n_mfcc=13))

    def embed(self, batch):
        vectors = np.asarray(super().embed(batch))
        vectors[[len(waveform) < 1.1 * RATE for waveform in batch]] = np.nan
        return vectors


def test_an_embedder_giving_nan_for_one_file_makes_that_file_a_failure(audio, tmp_path):
    write(audio / "short", tone(300.0, 1.0, RATE), RATE)

    result = embed_folder(audio, _NanForShortInputs(), tmp_path / "out", num_workers=2, progress=False)

    assert dict(result.failures)["short.wav"] == "mfcc_13 gave NaN or infinite values for this input"
    table = read_embeddings(result.table_path)
    assert "short" not in set(table.track_ids) and len(table.track_ids) == 8 and np.isfinite(table.vectors).all()


# --- the manifest travels inside the table -----------------------------------------------------------------


def test_readers_trust_the_manifest_inside_the_parquet_file(tmp_path):
    table = EmbeddingTable(np.array(["a", "b"]), np.eye(2, dtype=np.float32), {"embedder": "toy", "dim": 2})
    path = write_embeddings(table, tmp_path / "toy.parquet")
    copy = tmp_path / "toy.manifest.json"
    assert json.loads(copy.read_text()) == table.manifest  # the readable copy, written after

    copy.write_text(json.dumps({"embedder": "edited by hand"}))
    assert read_embeddings(path).manifest == table.manifest
    _raw_table(tmp_path / "plain.parquet", ["a"], np.ones((1, 2), np.float32))
    (tmp_path / "plain.manifest.json").write_text(json.dumps({"embedder": "from the copy"}))
    assert read_embeddings(tmp_path / "plain.parquet").manifest == {"embedder": "from the copy"}


# --- output folders: kinds, adoption, nesting ---------------------------------------------------------------


def test_an_older_unmarked_embeddings_folder_is_adopted_and_a_foreign_one_refused(audio, tmp_path):
    old = tmp_path / "old"
    write_embeddings(EmbeddingTable(np.array(["x"]), np.ones((1, 2), np.float32), {"embedder": "x"}), old / "x.parquet")
    (old / "x.failures.csv").write_text("path,reason\n")
    (old / "mfcc_13.shards").mkdir()
    embed_folder(audio, "mfcc_13", old, num_workers=0, progress=False)
    assert files.read_marker(old)["kind"] == "embeddings"

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.pdf").write_text("mine")
    _raw_table(foreign / "other.parquet", ["a"], np.ones((1, 2), np.float32))  # a Parquet file sonic did not write
    with pytest.raises(SonicError, match="holds 'other.parquet' and 1 more, which sonic did not write"):
        embed_folder(audio, "mfcc_13", foreign, num_workers=0, progress=False)
    assert sorted(p.name for p in foreign.iterdir()) == ["other.parquet", "thesis.pdf"]


def test_embed_inside_a_folder_the_caller_holds_and_into_a_folder_it_holds(audio, tmp_path):
    with files.output_folder(tmp_path / "study", "study"):  # a study holds its own folder; embed takes a sub-folder
        result = embed_folder(audio, "mfcc_13", tmp_path / "study" / "embeddings", num_workers=0, progress=False)
        assert result.n_embedded == 8 and files.holds_lock(tmp_path / "study")
        assert not files.holds_lock(tmp_path / "study" / "embeddings")
    with files.FolderLock(tmp_path / "emb"):  # the same process taking the same folder again: allowed
        embed_folder(audio, "mfcc_13", tmp_path / "emb", num_workers=0, progress=False)
        assert files.holds_lock(tmp_path / "emb")


def test_a_folder_of_another_kind_is_refused(audio, tmp_path):
    embed_folder(audio, "mfcc_13", tmp_path / "emb", num_workers=0, progress=False)
    result = sonic("run-model", "--model-name", "pop", "--split-dir", _split(tmp_path / "split"), "--out", tmp_path / "emb")
    assert result.returncode == 2
    assert "holds sonic's embeddings output, not run; give a new or empty folder" in _one_line(result)


def test_evaluate_does_not_write_over_a_file_it_did_not_write(tmp_path):
    recommendations = tmp_path / "recs.csv"
    pd.DataFrame({"user_id": ["u"], "track_id": ["a"], "rank": [1]}).to_csv(recommendations, index=False)
    truth = tmp_path / "truth.csv"
    pd.DataFrame({"user_id": ["u"], "track_id": ["a"]}).to_csv(truth, index=False)
    notes = tmp_path / "notes.json"
    notes.write_text('{"my": "notes"}')

    refused = sonic("evaluate", "--recommendations", recommendations, "--ground-truth", truth, "--output", notes)
    assert refused.returncode == 2 and "is not a metrics file that sonic wrote" in _one_line(refused)
    assert notes.read_text() == '{"my": "notes"}'
    for _ in range(2):  # its own file: written, then replaced
        done = sonic("evaluate", "--recommendations", recommendations, "--ground-truth", truth, "--output",
                     tmp_path / "metrics.json")  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["HitRate@10"] == 1.0


# --- Ctrl-C ----------------------------------------------------------------------------------------------


def test_ctrl_c_mid_convert_says_what_was_kept(audio, tmp_path, monkeypatch):
    import sonic.cream.audio.convert as convert

    real_write, calls = convert._write, []

    def interrupted(source, path, **options):
        calls.append(source)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_write(source, path, **options)

    monkeypatch.setattr(convert, "_write", interrupted)
    out = tmp_path / "conv"
    result = sonic("convert", "--audio-dir", audio, "--out-dir", out, "--sample-rate", 8000, "--num-workers", 0)

    assert result.returncode == 130
    assert _one_line(result) == (f"sonic: interrupted; the 2 files converted so far are kept in '{out}'; "
                                 f"run the same command again to continue")  # fmt: skip


def _ignores_sigint(task: list) -> list[bool]:
    return [signal.getsignal(signal.SIGINT) == signal.SIG_IGN for _ in task]


def test_worker_processes_ignore_ctrl_c():
    # the parent answers Ctrl-C (a shell starts background jobs with SIGINT ignored: not what is tested here)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        results = [flag for _, flags in run_tasks(_ignores_sigint, [[1], [2], [3]], workers=2) for flag in flags]
        assert results == [True, True, True]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the parent still answers it
    finally:
        signal.signal(signal.SIGINT, before)


def _tracks(folder: Path, n: int, seconds: float = 3.0) -> Path:
    for i in range(n):
        write(folder / f"track{i:03d}", tone(110.0 + 5 * i, seconds, 44100) + noise(seconds, 44100, seed=i), 44100)
    return folder


def _embed_command(audio: Path, out: Path, shard_size: int = 4) -> list[str]:
    return [sys.executable, "-m", "sonic", "embed", "--audio-dir", str(audio), "--model-type", "mfcc_104",
            "--out", str(out), "--num-workers", "2", "--batch-size", "2", "--shard-size", str(shard_size)]


def _answers_ctrl_c() -> None:
    """In the child before it starts: SIGINT at its default, as in a terminal's foreground job (a test run
    started in the background by a shell inherits SIGINT ignored, and so would the child)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_mid_embed_is_one_line_and_a_rerun_finishes_the_same_table(tmp_path):
    audio = _tracks(tmp_path / "audio", 120)
    whole = embed_folder(audio, "mfcc_104", tmp_path / "whole", num_workers=2, batch_size=2, shard_size=4,
                         progress=False)  # fmt: skip
    out = tmp_path / "out"
    shards = out / "mfcc_104.shards"
    run = subprocess.Popen(_embed_command(audio, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True, preexec_fn=_answers_ctrl_c)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(shards.glob("*.parquet"))) < 5:
        time.sleep(0.01)
    os.killpg(run.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    _, stderr = run.communicate(timeout=60)

    assert run.returncode == 130, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and "%|" not in line]  # the progress bar aside
    assert len(lines) == 1 and lines[0].startswith("sonic: interrupted; ") and "Traceback" not in stderr, stderr
    kept = int(lines[0].split("; ")[1].split()[0])
    assert lines[0] == (f"sonic: interrupted; {kept} of 30 shards of mfcc_104 are kept in '{out}'; "
                        f"run the same command again to continue")  # fmt: skip
    assert 5 <= kept < 30 and len(list(shards.glob("*.parquet"))) == kept
    rerun = subprocess.run(_embed_command(audio, out), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"reused {kept * 4} tracks" in rerun.stdout
    ours, theirs = read_embeddings(out / "mfcc_104.parquet"), read_embeddings(whole.table_path)
    np.testing.assert_array_equal(ours.track_ids, theirs.track_ids)
    np.testing.assert_array_equal(ours.vectors, theirs.vectors)


# --- two writers on one folder ----------------------------------------------------------------------------


@pytest.mark.slow
def test_two_embeds_on_one_out_folder_one_runs_the_other_is_refused(tmp_path):
    audio = _tracks(tmp_path / "audio", 60)
    single = embed_folder(audio, "mfcc_104", tmp_path / "single", num_workers=2, batch_size=2, shard_size=4,
                          progress=False)  # fmt: skip
    out = tmp_path / "out"
    runs = [subprocess.Popen(_embed_command(audio, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    outputs = [run.communicate(timeout=300) for run in runs]

    codes = sorted(run.returncode for run in runs)
    assert codes == [0, 2], outputs
    winner, loser = (0, 1) if runs[0].returncode == 0 else (1, 0)
    lines = [line for line in outputs[loser][1].splitlines() if line.strip() and "%|" not in line]
    assert len(lines) == 1 and "Traceback" not in outputs[loser][1], outputs[loser][1]
    line = lines[0]
    assert line.startswith(f"sonic: error: '{out.absolute()}' is being written by process {runs[winner].pid} "
                           f"(sonic embed --audio-dir {audio}")  # fmt: skip
    assert line.endswith("; wait for it to finish, or choose another output folder")
    assert sorted(p.name for p in out.iterdir()) == sorted([".sonic-output.json", ".sonic.lock", "mfcc_104.parquet",
                                                            "mfcc_104.manifest.json", "mfcc_104.failures.csv"])
    ours, theirs = read_embeddings(out / "mfcc_104.parquet"), read_embeddings(single.table_path)
    np.testing.assert_array_equal(ours.track_ids, theirs.track_ids)
    np.testing.assert_array_equal(ours.vectors, theirs.vectors)


def _sleep_long(task: list) -> list:
    folder, _ = task
    (Path(folder) / str(os.getpid())).touch()  # this worker is busy: its pid, for the test to check
    time.sleep(60)
    return task


def test_an_interrupted_run_ends_its_workers_at_once(monkeypatch, tmp_path):
    import sonic.parallel as parallel

    def interrupted_wait(*args, **kwargs):  # Ctrl-C once both workers are busy with their 60-second tasks
        for _ in range(600):
            if len(list(tmp_path.iterdir())) >= 2:
                break
            time.sleep(0.05)
        raise KeyboardInterrupt

    monkeypatch.setattr(parallel, "wait", interrupted_wait)
    with pytest.raises(KeyboardInterrupt):
        list(run_tasks(_sleep_long, [[str(tmp_path), n] for n in range(4)], workers=2))
    busy = [int(path.name) for path in tmp_path.iterdir()]
    assert len(busy) == 2
    for pid in busy:  # each busy worker was ended and reaped, not left to finish its task
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
