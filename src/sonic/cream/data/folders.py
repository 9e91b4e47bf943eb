"""A folder replaced whole in one rename: files are written into a hidden sibling, then swapped in.

``with staged_folder(target, allowed) as staging:`` yields an empty sibling folder
(``.<name>.staging-XXXX`` beside ``target``); when the block ends without an error, ``staging``
takes ``target``'s place in one ``rename`` (Linux ``renameat2(RENAME_EXCHANGE)`` when ``target``
exists: both names stay valid at every instant; elsewhere two renames, target first moved aside),
and the old folder is deleted. When the block raises, or the process dies, ``target`` is untouched.
A staging folder left by a killed process is removed by the next write to the same target.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import tempfile
from collections.abc import Collection, Iterator
from pathlib import Path

from sonic.errors import DataError

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def check_replaceable(target: Path, allowed: Collection[str], what: str) -> None:
    """Refuse to replace ``target`` when it holds anything but ``allowed`` names (it is not a ``what``)."""
    if target.exists() and not target.is_dir():
        raise DataError(f"'{target}' is a file; the {what} needs a folder there")
    if target.is_dir():
        foreign = sorted(p.name for p in target.iterdir() if p.name not in allowed)
        if foreign:
            raise DataError(
                f"'{target}' holds {', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}, which no {what} "
                f"writes; choose a new or empty folder (it is replaced whole)"
            )


@contextlib.contextmanager
def staged_folder(target: str | os.PathLike, allowed: Collection[str], *, what: str) -> Iterator[Path]:
    """Yield a staging folder that replaces ``target`` atomically when the block succeeds.

    ``target`` may only hold names in ``allowed`` (else a :class:`DataError`, before anything is written).
    """
    target = Path(target).resolve()
    check_replaceable(target, allowed, what)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}.staging-"
    for stale in target.parent.glob(f"{prefix}*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    try:
        yield staging
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_in(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``; the old ``target`` ends up at ``staging`` (deleted by the caller)."""
    if not target.exists():
        os.rename(staging, target)
        return
    if _exchange(staging, target):
        return
    aside = staging.with_name(staging.name + ".old")
    os.rename(target, aside)
    os.rename(staging, target)
    os.rename(aside, staging)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one system call (Linux); False where that call is unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    return result == 0
