"""sonic.files: atomic writes, one writer per folder, output folders that are sonic's own."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sonic import files
from sonic.errors import SonicError


def test_atomic_path_writes_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "table.bin"
    with files.atomic_path(target) as temporary:
        assert temporary.parent == target.parent and temporary.name.startswith(".table.bin.")
        temporary.write_bytes(b"abc")
        assert not target.exists()
    assert target.read_bytes() == b"abc"
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.bin"]


def test_atomic_write_failure_keeps_old_content(tmp_path):
    target = tmp_path / "a.txt"
    files.write_text(target, "old")
    with pytest.raises(RuntimeError), files.atomic_open(target, "w") as stream:
        stream.write("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_temporary_names_are_unique(tmp_path):
    names = {files.temporary_name(tmp_path / "x").name for _ in range(200)}
    assert len(names) == 200 and all(files.is_temporary(name) for name in names)


def test_write_json_round_trip(tmp_path):
    path = files.write_json(tmp_path / "m.json", {"a": 1, "p": Path("/x")})
    assert json.loads(path.read_text()) == {"a": 1, "p": "/x"}


def test_atomic_open_refuses_read_modes(tmp_path):
    with pytest.raises(ValueError), files.atomic_open(tmp_path / "x", "r"):
        pass


def test_atomic_folder_replaces_whole_and_keeps_old_on_error(tmp_path):
    target = tmp_path / "run"
    with files.atomic_folder(target) as staging:
        (staging / "a").write_text("1")
    assert (target / "a").read_text() == "1"
    with files.atomic_folder(target) as staging:
        (staging / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    with pytest.raises(RuntimeError), files.atomic_folder(target) as staging:
        (staging / "c").write_text("3")
        raise RuntimeError
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def _dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(process.stdout)


def test_remove_temporaries_only_touches_temporaries_of_writers_gone(tmp_path):
    (tmp_path / "keep.parquet").write_text("x")
    (tmp_path / ".keep.hidden").write_text("x")
    (tmp_path / ".notes.txt.tmp").write_text("a user's file, not a temporary of sonic's")
    leftover = tmp_path / f".t.parquet.{_dead_pid()}-0a1b2c3d.tmp"
    leftover.write_text("half")
    older = tmp_path / ".u.parquet.tmp"  # an older sonic's fixed temporary name
    older.write_text("half")
    in_flight = files.temporary_name(tmp_path / "v.parquet")  # this process is writing it
    in_flight.write_text("half")
    (tmp_path / "sub").mkdir()
    nested = tmp_path / "sub" / f".w.wav.{_dead_pid()}-00000000.tmp"
    nested.write_text("half")

    assert files.remove_temporaries(tmp_path) == [leftover]
    assert files.remove_temporaries(tmp_path, legacy=(".parquet.tmp",)) == [older]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".keep.hidden", ".notes.txt.tmp", "keep.parquet", in_flight.name, "sub"]
    )
    assert files.remove_temporaries(tmp_path, recursive=True) == [nested]


def test_atomic_folder_keeps_the_lock_held_and_the_marker(tmp_path):
    out = tmp_path / "split"
    with files.output_folder(out, "split"):
        (out / "train.parquet").write_text("old")
        with files.atomic_folder(out, allowed={"train.parquet", "val.parquet"}, what="split") as staging:
            (staging / "val.parquet").write_text("new")
        assert sorted(p.name for p in out.iterdir()) == sorted([files.LOCK_NAME, files.MARKER_NAME, "val.parquet"])
        assert files.read_marker(out)["kind"] == "split"
        holder = subprocess.run(
            [sys.executable, "-c", f"from sonic.files import FolderLock; FolderLock({str(out)!r}, 'second').acquire()"],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )  # fmt: skip
        assert holder.returncode != 0 and f"process {os.getpid()}" in holder.stderr  # still locked after the swap
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split"]


def test_atomic_folder_refuses_a_folder_with_foreign_files(tmp_path):
    out = tmp_path / "split"
    out.mkdir()
    (out / "train.parquet").write_text("old")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(files.OutputFolderError, match="holds 'notes.txt', which no split writes"), \
            files.atomic_folder(out, allowed={"train.parquet"}, what="split"):  # fmt: skip
        pytest.fail("must not be entered")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "train.parquet"]


def test_output_file_recognises_its_own_and_refuses_others(tmp_path):
    target = tmp_path / "exclude.csv"
    with files.output_file(target, "corrupt-file list", recognise=lambda path: False) as path:
        files.write_text(path, "x")  # a new file: allowed
    assert files.holds_lock(tmp_path) is False and (tmp_path / files.LOCK_NAME).is_file()
    with files.output_file(target, "corrupt-file list", recognise=lambda path: path.read_text() == "x") as path:
        files.write_text(path, "y")
    with pytest.raises(files.OutputFolderError, match="is not a corrupt-file list that sonic wrote"), \
            files.output_file(target, "corrupt-file list", recognise=lambda path: False):  # fmt: skip
        pytest.fail("must not be entered")
    assert target.read_text() == "y"


def test_read_only_folder_found_before_work(tmp_path, monkeypatch):
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if str(path).startswith(str(tmp_path / "o")) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(files.os, "open", read_only)
    with pytest.raises(files.OutputFolderError, match="read-only file system"), files.output_folder(tmp_path / "o", "runs"):
        pytest.fail("must not be entered")


def test_pyarrow_style_errors_without_errno_are_recognised():
    error = OSError("Failed to write /x/y.parquet. Detail: [errno 28] No space left on device")
    assert files.is_user_os_error(error) and "no space is left" in files.os_error_message(error, "/x")


# ----------------------------------------------------------------------------------------------- locks

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from sonic.files import FolderLock
    with FolderLock(sys.argv[1], "sonic embed --out x"):
        print("locked", flush=True)
        time.sleep(60)
    """
)


def _start_holder(folder: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", _HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    return process


def _stop(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()
    process.stdout.close()


def test_second_writer_is_refused_naming_the_holder(tmp_path):
    holder = _start_holder(tmp_path)
    try:
        with pytest.raises(files.OutputFolderError) as caught, files.FolderLock(tmp_path, "sonic embed"):
            pass
        message = str(caught.value)
        assert f"process {holder.pid}" in message and "sonic embed --out x" in message
        assert "\n" not in message
    finally:
        _stop(holder)


def test_sigkill_releases_the_lock(tmp_path):
    holder = _start_holder(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    _stop(holder)
    with files.FolderLock(tmp_path, "second") as lock:
        assert lock.held
        assert files.read_lock_holder(tmp_path).pid == os.getpid()
    assert not files.holds_lock(tmp_path)


def test_lock_is_reentrant_in_one_process(tmp_path):
    with files.FolderLock(tmp_path):
        with files.FolderLock(tmp_path):
            assert files.holds_lock(tmp_path)
        assert files.holds_lock(tmp_path)
    assert not files.holds_lock(tmp_path)


# -------------------------------------------------------------------------------------- output folders


def test_output_folder_new_empty_and_own(tmp_path):
    out = tmp_path / "new" / "embeddings"
    with files.output_folder(out, "embeddings") as folder:
        assert folder.path == out and files.read_marker(out)["kind"] == "embeddings"
        (out / "mfcc.parquet").write_text("x")
    with files.output_folder(out, "embeddings"):  # sonic's own output of the same kind: allowed
        pass
    empty = tmp_path / "empty"
    empty.mkdir()
    with files.output_folder(empty, "report"):
        pass
    assert files.read_marker(empty)["kind"] == "report"


def test_foreign_file_refused_and_kept(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "thesis.tex").write_text("my thesis")
    with pytest.raises(files.OutputFolderError, match="thesis.tex") as caught, files.output_folder(out, "report"):
        pytest.fail("must not be entered")
    assert "sonic did not write" in str(caught.value)
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]  # no marker, no lock file
    assert (out / "thesis.tex").read_text() == "my thesis"


def test_other_kind_refused_accepted_kind_allowed(tmp_path):
    out = tmp_path / "embeddings"
    with files.output_folder(out, "embeddings"):
        pass
    with pytest.raises(files.OutputFolderError, match="embeddings output, not report"), \
            files.output_folder(out, "report"):  # fmt: skip
        pass
    with files.output_folder(out, "index", accept=("embeddings",)):
        pass
    assert files.read_marker(out)["kind"] == "embeddings"  # the folder's own marker is kept


def test_unmarked_folder_adopted_when_every_entry_is_recognised(tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    (out / "mfcc_104.parquet").write_text("x")
    with files.output_folder(out, "embeddings", adopt=lambda entry: entry.suffix == ".parquet"):
        pass
    assert files.read_marker(out)["kind"] == "embeddings"


def test_file_in_place_of_folder(tmp_path):
    path = tmp_path / "out"
    path.write_text("x")
    with pytest.raises(files.OutputFolderError, match="is a file"), files.output_folder(path, "runs"):
        pass


def test_full_disk_found_before_work(tmp_path, monkeypatch):
    real = os.statvfs

    class Full:
        def __init__(self, stat):
            self.f_frsize, self.f_bavail = stat.f_frsize, 3

    monkeypatch.setattr(files.os, "statvfs", lambda path: Full(real(path)))
    with pytest.raises(files.OutputFolderError, match="is full"), files.output_folder(tmp_path / "o", "runs"):
        pytest.fail("must not be entered")


def test_locked_output_folder_refused(tmp_path):
    out = tmp_path / "out"
    with files.output_folder(out, "study"):
        pass
    holder = _start_holder(out)
    try:
        with pytest.raises(files.OutputFolderError, match=f"process {holder.pid}"), files.output_folder(out, "study"):
            pass
    finally:
        _stop(holder)


@pytest.mark.parametrize(
    ("number", "expected"),
    [(errno.ENOSPC, "no space is left"), (errno.EROFS, "read-only"), (errno.EACCES, "no permission")],
)
def test_os_errors_become_sentences(number, expected):
    error = OSError(number, os.strerror(number), "/data/out/x.parquet")
    message = files.os_error_message(error)
    assert expected in message and "/data/out/x.parquet" in message
    assert files.is_user_os_error(error)
    assert issubclass(files.OutputFolderError, SonicError)


def test_lock_holder_unreadable_is_still_a_sentence(tmp_path):
    (tmp_path / files.LOCK_NAME).write_text("not json")
    assert files.read_lock_holder(tmp_path).describe() == "another process"


def test_reading_marker_of_missing_folder(tmp_path):
    assert files.read_marker(tmp_path / "nothing") is None
    assert not (tmp_path / "nothing").exists()
