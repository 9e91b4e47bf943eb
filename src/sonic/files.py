"""Files written the way git writes them: one atomic-write helper, one writer per folder, and
nothing deleted or overwritten that sonic did not write.

**Atomic writes.** Every file a command writes goes through :func:`atomic_path` (or its shortcuts
:func:`write_bytes`, :func:`write_text`, :func:`write_json`, :func:`atomic_open`): the content is
written under a unique temporary name in the target's folder (``.<name>.<pid>-<random>.tmp``),
flushed and fsynced, then renamed over the target; on any error the temporary is removed and the
target is untouched. A whole folder is replaced the same way by :func:`atomic_folder` (its lock file
and marker carried over, a folder holding names it may not replace refused first). These, and
:func:`move`, are the only places in sonic that rename files. :func:`remove_temporaries` clears what
a killed writer left (a temporary whose process still runs is left alone).

**One writer per folder.** :class:`FolderLock` takes an OS lock (``flock``) on ``<folder>/.sonic.lock``
and writes the holder's PID and command into it. The kernel releases the lock when the holder dies,
even by SIGKILL, so there is nothing to clean up; a second process is refused in one sentence that
names the PID and command holding it. A process may take the same folder's lock again while it holds
it (nested calls count); locks on different folders (a study's folder and its ``embeddings/``) nest freely.

**Output folders.** :func:`output_folder` lets a command write only into a folder that is new, empty,
or marked by sonic (``<folder>/.sonic-output.json``) as holding the same kind of output (or a kind the
command is allowed to add to: an index beside an embedding table). Anything else is refused in one
sentence naming a foreign file, before anything is written. It also finds a read-only folder or a
full disk before long work starts, and holds the folder's lock for the duration of the block; a folder
it created is removed again when the block fails before writing anything. :func:`output_file` does the
same for an output that is one file in a folder that may hold anything else (find-corrupt's list): an
existing file is only replaced when the command recognises it as its own earlier output.

:func:`os_error_message` turns the operating-system errors a user can cause (no space left, a
read-only disk, no permission, a missing folder) into one sentence; :func:`error_number` also reads
the ``errno`` of an error that carries only a message (pyarrow's).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sonic.errors import SonicError

#: The lock file of a folder (its content names the holder).
LOCK_NAME = ".sonic.lock"
#: The marker that says which kind of sonic output a folder holds.
MARKER_NAME = ".sonic-output.json"
#: Names sonic's own bookkeeping puts in a folder; never counted as foreign.
BOOKKEEPING = frozenset({LOCK_NAME, MARKER_NAME})
#: Free space below which an output folder's disk counts as full.
MIN_FREE_BYTES = 16 << 20

_TMP_SUFFIX = ".tmp"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class OutputFolderError(SonicError):
    """An output folder that sonic may not write into (foreign, locked, read-only or full)."""


# --------------------------------------------------------------------------------------------- writes


def temporary_name(path: str | os.PathLike) -> Path:
    """A unique temporary name beside ``path``: ``.<name>.<pid>-<random>.tmp`` (hidden, same folder)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{_TMP_SUFFIX}")


def is_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`temporary_name`'s (``.<name>.<pid>-<8 hex>.tmp``)."""
    return _TEMPORARY.fullmatch(name) is not None


_TEMPORARY = re.compile(r"\..+\.(?P<pid>[0-9]+)-[0-9a-f]{8}\.tmp")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds, it is fsynced and renamed to ``path``.

    The caller (or a library such as pyarrow) writes the file at the yielded path. On an error the
    temporary is removed and ``path`` keeps its old content (or stays absent). The folder is created.
    """
    path = Path(path)
    _make_folder(path.parent)
    temporary = temporary_name(path)
    try:
        yield temporary
        if fsync:
            _fsync_file(temporary)
        os.replace(temporary, path)
        if fsync:
            _fsync_folder(path.parent)
    finally:
        _remove_quietly(temporary)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """``open(temporary, mode)`` for writing ``path`` atomically (see :func:`atomic_path`).

    ``mode`` is ``"w"``, ``"wb"``, ``"x"``... (a write mode); ``kwargs`` go to :func:`open`
    (``encoding="utf-8"`` by default in text mode).
    """
    if not any(flag in mode for flag in "wx"):
        raise ValueError(f"atomic_open writes a new file; mode {mode!r} is not a write mode")
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as temporary, open(temporary, mode, **kwargs) as stream:
        yield stream
        stream.flush()


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as stream:
        stream.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w", newline="") as stream:
        stream.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Write ``payload`` as indented JSON to ``path`` atomically (unknown types as ``str``)."""
    return write_text(path, json.dumps(payload, indent=2, default=str) + "\n")


@contextlib.contextmanager
def atomic_folder(
    path: str | os.PathLike, *, allowed: Collection[str] | None = None, what: str = "output"
) -> Iterator[Path]:
    """Yield an empty temporary folder that takes ``path``'s place whole when the block succeeds.

    Where ``path`` exists it is swapped out in one system call where Linux offers it (both names
    valid at every instant), else moved aside first; the old folder is then deleted. Its bookkeeping
    (:data:`BOOKKEEPING`: the lock file, hard-linked so that a lock held on it stays held, and the
    output marker) is carried into the new folder first. Only use this on a folder sonic wrote (see
    :func:`output_folder`); with ``allowed``, a ``path`` holding any other name is refused before
    anything is written (:func:`check_replaceable`; ``what`` names the output in that sentence). On
    an error the temporary folder is removed and ``path`` is untouched.
    """
    path = Path(path)
    if allowed is not None:
        check_replaceable(path, allowed, what)
    _make_folder(path.parent)
    temporary = temporary_name(path)
    temporary.mkdir()
    try:
        yield temporary
        _carry_bookkeeping(path, temporary)
        _fsync_tree(temporary)
        if not path.exists():
            os.replace(temporary, path)
        elif _exchange(temporary, path):
            pass  # the old folder is now at ``temporary``, removed below
        else:
            aside = temporary_name(path)
            os.replace(path, aside)
            os.replace(temporary, path)
            os.replace(aside, temporary)
        _fsync_folder(path.parent)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def check_replaceable(folder: str | os.PathLike, allowed: Collection[str], what: str) -> None:
    """Refuse, in one sentence, to replace ``folder`` whole when it holds a name outside ``allowed``
    (besides sonic's bookkeeping and temporaries): that file would be lost with the old folder."""
    folder = Path(folder)
    if folder.is_symlink() and not folder.exists():
        raise OutputFolderError(f"'{folder}' is a broken link; give a folder that exists or a new path")
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"'{folder}' is a file; the {what} needs a folder there")
    if not folder.is_dir():
        return
    try:
        names = sorted(entry.name for entry in folder.iterdir())
    except OSError as error:
        raise OutputFolderError(os_error_message(error, folder)) from None
    foreign = [name for name in names if name not in allowed and name not in BOOKKEEPING and not is_temporary(name)]
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise OutputFolderError(
            f"'{folder}' holds '{foreign[0]}'{more}, which no {what} writes; choose a new or empty folder "
            f"(it is replaced whole; nothing was changed)"
        )


def _carry_bookkeeping(old: Path, new: Path) -> None:
    """Link ``old``'s lock file and marker into ``new`` (copy the marker where links are refused)."""
    for name in (LOCK_NAME, MARKER_NAME):
        source, target = old / name, new / name
        if not source.is_file() or target.exists():
            continue
        try:
            os.link(source, target)
        except OSError:
            if name == MARKER_NAME:
                shutil.copyfile(source, target)


def move(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Rename ``source`` (a file or folder sonic wrote) to ``target`` in one step; ``target`` must not exist
    as a non-empty folder. The one rename besides the atomic writers."""
    os.replace(source, target)
    return Path(target)


def remove_temporaries(
    folder: str | os.PathLike, *, recursive: bool = False, legacy: Collection[str] = ()
) -> list[Path]:
    """Remove the leftovers of killed writers (names of :func:`temporary_name` whose process is gone) in
    ``folder``, and in its sub-folders when ``recursive``.

    ``legacy``: suffixes of the fixed temporary names an older sonic used (``".wav.tmp"`` for
    ``.a.wav.tmp``), removed too. Any other name is left alone.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in sorted(folder.iterdir()):
        name = entry.name
        old = name.startswith(".") and any(name.endswith(suffix) and len(name) > len(suffix) + 1 for suffix in legacy)
        if (is_temporary(name) and not _writer_alive(name)) or (old and not is_temporary(name)):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                _remove_quietly(entry)
            removed.append(entry)
        elif recursive and entry.is_dir() and not entry.is_symlink():
            removed += remove_temporaries(entry, recursive=True, legacy=legacy)
    return removed


def _writer_alive(name: str) -> bool:
    """Whether the process whose PID a temporary's name holds still runs (this one included)."""
    pid = int(_TEMPORARY.fullmatch(name)["pid"])
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists (another user's process)
    return True


# --------------------------------------------------------------------------------------------- locks

_held: dict[Path, tuple[int, int]] = {}  # folder -> (file descriptor, how many times taken)
_held_guard = threading.Lock()


@dataclass(frozen=True)
class LockHolder:
    """Who holds a folder's lock, as its lock file says."""

    pid: int | None
    command: str
    started: str

    def describe(self) -> str:
        who = f"process {self.pid}" if self.pid is not None else "another process"
        what = f" ({self.command})" if self.command else ""
        since = f", since {self.started}" if self.started else ""
        return f"{who}{what}{since}"


class FolderLock:
    """An exclusive OS lock on ``folder`` for one writer (``with FolderLock(folder, command):``).

    The lock is ``flock`` on ``<folder>/.sonic.lock``; the kernel releases it when the holder dies.
    A second process gets an :class:`OutputFolderError` naming the holder's PID and command.
    """

    def __init__(self, folder: str | os.PathLike, command: str | None = None) -> None:
        self.folder = Path(folder).absolute()
        self.command = command if command is not None else current_command()

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def acquire(self) -> None:
        import fcntl

        key = _key(self.folder)
        with _held_guard:
            if key in _held:
                fd, count = _held[key]
                _held[key] = (fd, count + 1)
                return
            _make_folder(self.folder)
            lock_path = self.folder / LOCK_NAME
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise OutputFolderError(os_error_message(error, self.folder)) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                holder = read_lock_holder(self.folder)
                raise OutputFolderError(
                    f"'{self.folder}' is being written by {holder.describe()}; wait for it to finish, "
                    f"or choose another output folder"
                ) from None
            except OSError:
                os.close(fd)
                raise
            stamp = {"pid": os.getpid(), "command": self.command,
                     "started": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, (json.dumps(stamp) + "\n").encode(), 0)
            except OSError as error:
                os.close(fd)
                raise OutputFolderError(os_error_message(error, self.folder)) from None
            _held[key] = (fd, 1)

    def release(self) -> None:
        import fcntl

        key = _key(self.folder)
        with _held_guard:
            if key not in _held:
                return
            fd, count = _held[key]
            if count > 1:
                _held[key] = (fd, count - 1)
                return
            del _held[key]
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return _key(self.folder) in _held


def holds_lock(folder: str | os.PathLike) -> bool:
    """Whether this process holds ``folder``'s lock."""
    return _key(Path(folder).absolute()) in _held


def read_lock_holder(folder: str | os.PathLike) -> LockHolder:
    """What ``folder``'s lock file says about its holder (fields empty when it cannot be read)."""
    try:
        stamp = json.loads((Path(folder) / LOCK_NAME).read_text())
        return LockHolder(int(stamp.get("pid")), str(stamp.get("command", "")), str(stamp.get("started", "")))
    except (OSError, ValueError, TypeError, AttributeError):
        return LockHolder(None, "", "")


def current_command() -> str:
    """This process's command line, shortened for a message (``sonic embed --audio-dir a ...``)."""
    argv = list(sys.argv) or ["python"]
    name = Path(argv[0]).name
    if name in ("__main__.py", "-c") or name.startswith("python"):
        name = "sonic" if "sonic" in " ".join(argv[:2]) else name
    words = [name, *argv[1:]]
    text = " ".join(words)
    return text if len(text) <= 120 else text[:117] + "..."


# -------------------------------------------------------------------------------------- output folders


@dataclass(frozen=True)
class OutputFolder:
    """A folder this process may write into, marked with its ``kind``, under its lock."""

    path: Path
    kind: str

    def marker(self) -> dict[str, Any]:
        return read_marker(self.path) or {}


def read_marker(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The output-folder marker of ``folder`` (None when it has none, or it is unreadable)."""
    try:
        marker = json.loads((Path(folder) / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and isinstance(marker.get("kind"), str) else None


def check_output_folder(
    folder: str | os.PathLike,
    kind: str,
    *,
    accept: Collection[str] = (),
    adopt: Callable[[Path], bool] | None = None,
) -> None:
    """Refuse, in one sentence, a ``folder`` that ``kind`` output may not be written into.

    Allowed: a path that does not exist yet, an empty folder, a folder whose marker names ``kind`` or
    a kind in ``accept``, and an unmarked folder in which ``adopt(entry)`` holds for every entry (an
    older sonic's output, recognised by its file names). Nothing is written.
    """
    folder = Path(folder)
    if not folder.exists():
        if folder.is_symlink():
            raise OutputFolderError(f"'{folder}' is a broken link; give a folder that exists or a new path")
        return
    if not folder.is_dir():
        raise OutputFolderError(f"'{folder}' is a file, not a folder; give a new or empty folder for the {kind}")
    marker = read_marker(folder)
    if marker is not None:
        if marker["kind"] == kind or marker["kind"] in accept:
            return
        raise OutputFolderError(
            f"'{folder}' holds sonic's {marker['kind']} output, not {kind}; give a new or empty folder"
        )
    try:
        entries = sorted(entry for entry in folder.iterdir() if entry.name not in BOOKKEEPING)
    except OSError as error:
        raise OutputFolderError(os_error_message(error, folder)) from None
    foreign = [entry for entry in entries if not (is_temporary(entry.name) or (adopt is not None and adopt(entry)))]
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise OutputFolderError(
            f"'{folder}' holds '{foreign[0].name}'{more}, which sonic did not write; give a new or empty "
            f"folder for the {kind} (nothing was changed)"
        )


@contextlib.contextmanager
def output_folder(
    folder: str | os.PathLike,
    kind: str,
    *,
    accept: Collection[str] = (),
    adopt: Callable[[Path], bool] | None = None,
    command: str | None = None,
    min_free_bytes: int = MIN_FREE_BYTES,
) -> Iterator[OutputFolder]:
    """Claim ``folder`` for ``kind`` output for the duration of the block.

    The folder is checked (:func:`check_output_folder`), created, locked (:class:`FolderLock`),
    checked again under the lock, tested for writing and free space (a read-only folder or a full
    disk is refused before any work), and marked as ``kind`` (a marker of an accepted kind is kept).
    Raises :class:`OutputFolderError` with one sentence when any of that fails. A folder this call
    created is removed again when the block fails before writing anything into it.
    """
    folder = Path(folder).absolute()
    check_output_folder(folder, kind, accept=accept, adopt=adopt)
    created = not folder.exists()
    try:
        _make_folder(folder)
    except OSError as error:
        raise OutputFolderError(os_error_message(error, folder)) from None
    try:
        with FolderLock(folder, command):
            check_output_folder(folder, kind, accept=accept, adopt=adopt)
            check_writable(folder)
            check_free_space(folder, min_free_bytes)
            marker = read_marker(folder)
            if marker is None:
                from sonic import __version__

                try:
                    write_json(folder / MARKER_NAME, {"kind": kind, "written_by": "sonic", "sonic": __version__,
                                                      "command": command or current_command(),
                                                      "created": time.strftime("%Y-%m-%d %H:%M:%S")})  # fmt: skip
                except OSError as error:
                    raise OutputFolderError(os_error_message(error, folder)) from None
            yield OutputFolder(folder, kind)
    except BaseException:
        if created:  # this call made the folder: it goes again when nothing was written into it
            _remove_if_bare(folder)
        raise


def _remove_if_bare(folder: Path) -> None:
    """Remove ``folder`` (which this call created) when it holds nothing but sonic's bookkeeping: a
    command that failed before writing anything leaves no empty output folder behind."""
    try:
        names = {entry.name for entry in folder.iterdir()}
    except OSError:
        return
    if names - BOOKKEEPING:
        return
    for name in names:
        _remove_quietly(folder / name)
    with contextlib.suppress(OSError):
        folder.rmdir()


@contextlib.contextmanager
def output_file(
    path: str | os.PathLike,
    what: str,
    *,
    recognise: Callable[[Path], bool],
    command: str | None = None,
    min_free_bytes: int = MIN_FREE_BYTES,
) -> Iterator[Path]:
    """Claim the file ``path`` (an output that is one file, in a folder that may hold anything else).

    An existing ``path`` is refused in one sentence unless ``recognise(path)`` says it is an earlier
    ``what`` of sonic's. The folder is created and locked (:class:`FolderLock`: one writer at a time
    writes files into it), checked for writing and free space; the caller then writes ``path``
    atomically (:func:`atomic_path`). Raises :class:`OutputFolderError`.
    """
    path = Path(path).absolute()
    check_output_file(path, what, recognise=recognise)
    try:
        _make_folder(path.parent)
    except OSError as error:
        raise OutputFolderError(os_error_message(error, path.parent)) from None
    with FolderLock(path.parent, command):
        check_output_file(path, what, recognise=recognise)
        check_writable(path.parent)
        check_free_space(path.parent, min_free_bytes)
        yield path


def check_output_file(path: str | os.PathLike, what: str, *, recognise: Callable[[Path], bool]) -> None:
    """Refuse, in one sentence, to write ``path`` over a file (or anything else) that is not an earlier
    ``what`` (``recognise(path)`` False)."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        kind = "a link" if path.is_symlink() else "a folder" if path.is_dir() else "not a plain file"
        raise OutputFolderError(f"'{path}' is {kind}; give a new file name for the {what}")
    if path.exists() and not recognise(path):
        raise OutputFolderError(
            f"'{path}' exists and is not a {what} that sonic wrote; give a new file name (nothing was changed)"
        )


def check_writable(folder: str | os.PathLike) -> None:
    """Refuse, in one sentence, a ``folder`` in which no file can be created (read-only, no permission)."""
    probe = temporary_name(Path(folder) / ".write-test")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise OutputFolderError(os_error_message(error, folder)) from None
    os.close(fd)
    _remove_quietly(probe)


def check_free_space(folder: str | os.PathLike, min_free_bytes: int = MIN_FREE_BYTES) -> None:
    """Refuse, in one sentence, a ``folder`` whose disk has less than ``min_free_bytes`` free."""
    try:
        stat = os.statvfs(folder)
    except (OSError, AttributeError):
        return
    free = stat.f_bavail * stat.f_frsize
    if free < min_free_bytes:
        raise OutputFolderError(
            f"the disk holding '{folder}' is full ({_size(free)} free); free some space or choose another folder"
        )


# -------------------------------------------------------------------------------------------- errors

_SENTENCES = {
    errno.ENOSPC: "no space is left on the disk holding '{path}'",
    errno.EDQUOT: "the disk quota for '{path}' is used up",
    errno.EROFS: "'{path}' is on a read-only file system",
    errno.EACCES: "no permission to write in '{path}'",
    errno.EPERM: "no permission to write in '{path}'",
    errno.ENOENT: "'{path}' does not exist",
    errno.ENOTDIR: "a part of '{path}' is a file, not a folder",
    errno.EISDIR: "'{path}' is a folder, not a file",
}

#: The ``errno`` values :func:`os_error_message` words as a user's problem (not a bug in sonic).
USER_ERRNOS = frozenset(_SENTENCES)


def os_error_message(error: OSError, path: str | os.PathLike | None = None) -> str:
    """One sentence for an operating-system error about ``path`` (or the error's own file name)."""
    where = path if path is not None else (error.filename or "?")
    sentence = _SENTENCES.get(error_number(error))
    if sentence is None:
        return f"cannot write '{where}': {error.strerror or error}"
    return sentence.format(path=where)


def is_user_os_error(error: BaseException) -> bool:
    """Whether ``error`` is an :class:`OSError` a user can cause and mend (full, read-only, no permission)."""
    return isinstance(error, OSError) and error_number(error) in _USER_MENDABLE


_USER_MENDABLE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def error_number(error: OSError) -> int | None:
    """``error.errno``, or for an error that carries only a message (pyarrow's), the ``errno`` whose
    text (``No space left on device``) the message holds."""
    if error.errno is not None:
        return error.errno
    text = str(error)
    for number in (*_USER_MENDABLE, *_SENTENCES):
        if os.strerror(number) in text:
            return number
    return None


# ------------------------------------------------------------------------------------------- helpers


def _key(folder: Path) -> Path:
    try:
        return folder.resolve()
    except OSError:
        return folder


def _make_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
        path.unlink()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder; the rename itself is still atomic
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            if not path.is_symlink():
                _fsync_file(path)
        _fsync_folder(Path(root))


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one system call (Linux ``renameat2``); False where it is unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    return renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0


def _size(n_bytes: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes} bytes"
