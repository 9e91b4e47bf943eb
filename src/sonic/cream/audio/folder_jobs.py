"""What every job over a folder of audio shares: the walk, track ids, unreadable files, duplicates,
exclusions, the window check and the failures file.

``sonic embed``, ``sonic convert``, ``sonic find-corrupt`` and ``sonic visualize`` each walk a folder
(:func:`audio_folder`), hand its files to worker processes (:func:`sonic.parallel.map_files` or
:func:`sonic.parallel.run_tasks`, with a tqdm progress bar and workers that die with their parent),
list what could not be done (:func:`write_failures`) and write every output through
:mod:`sonic.files` (a unique temporary name renamed when complete), so an interrupted run never
leaves a half-written file behind. A file that cannot be read (a link to nothing, no permission, not
a plain file) is found by the walk and is that file's failure, never the run's.
"""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sonic.errors import AudioError, SonicError
from sonic.files import atomic_open

#: Header of every failures file.
FAILURE_COLUMNS = ("path", "reason")


@dataclass(frozen=True)
class AudioFolder:
    """The audio files under ``root``: sorted paths, their paths relative to ``root`` and their track ids.

    A track id is the relative path without extension (:func:`sonic.cream.audio.track_id`).
    """

    root: Path
    paths: tuple[Path, ...]
    relative: tuple[str, ...]  # POSIX, with extension
    track_ids: tuple[str, ...]
    unreadable: Mapping[int, str] = field(default_factory=dict)  # index into paths -> why it cannot be read

    def __len__(self) -> int:
        return len(self.paths)

    def unique(
        self, duplicate_reason: Callable[[int, int], str] | None = None
    ) -> tuple[list[int], list[tuple[str, str]]]:
        """Indices of the first readable file (in path order) of each track id, and ``(relative path,
        reason)`` for every unreadable file (:attr:`unreadable`) and every later file with an id already taken.

        ``duplicate_reason(later, first)`` words the reason (indices into :attr:`paths`); by default
        ``duplicate track_id 'a': 'a.mp3' has the same id and is used``.
        """
        first: dict[str, int] = {}
        kept, duplicates = [], []
        for index, track in enumerate(self.track_ids):
            if index in self.unreadable:
                duplicates.append((self.relative[index], self.unreadable[index]))
            elif track in first:
                if duplicate_reason is None:
                    used = self.relative[first[track]]
                    reason = f"duplicate track_id '{track}': '{used}' has the same id and is used"
                else:
                    reason = duplicate_reason(index, first[track])
                duplicates.append((self.relative[index], reason))
            else:
                first[track] = index
                kept.append(index)
        return kept, duplicates


def audio_folder(root: str | os.PathLike, *, skip_under: str | os.PathLike | None = None) -> AudioFolder:
    """Every audio file under ``root`` (recursively, hidden names skipped), sorted by path.

    Files under ``skip_under`` (an output folder inside ``root``) are left out. Raises
    :class:`AudioError` when ``root`` is not a folder or holds no audio file.
    """
    from sonic.cream.audio.load import AUDIO_EXTENSIONS, find_audio_files, track_id

    root = Path(root)
    paths = find_audio_files(root)
    if skip_under is not None:
        skipped = Path(skip_under).resolve()
        paths = [path for path in paths if not path.resolve().is_relative_to(skipped)]
    if not paths:
        raise AudioError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under '{root}'")
    relative = tuple(path.relative_to(root).as_posix() for path in paths)
    unreadable = {index: reason for index, path in enumerate(paths) if (reason := unreadable_reason(path))}
    return AudioFolder(root, tuple(paths), relative, tuple(track_id(path, root) for path in paths), unreadable)


def unreadable_reason(path: str | os.PathLike) -> str | None:
    """Why the file ``path`` cannot be read (a link to nothing, no permission, not a plain file), or None."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            return f"'{path}' is a link to '{os.readlink(path)}', which does not exist"
        return f"'{path}' does not exist (it went away while the folder was read)"
    except OSError as error:
        return f"cannot read '{path}': {error.strerror or error}"
    if not stat.S_ISREG(info.st_mode):
        return f"'{path}' is not a plain file"
    if not os.access(path, os.R_OK):
        return f"cannot read '{path}': no permission"
    return None


def read_exclude(path: str | os.PathLike | None) -> set[str]:
    """Track ids in the ``track_id`` column of a csv / tsv / Parquet file (empty set for None)."""
    if path is None:
        return set()
    from sonic.cream.data import load_track_ids

    return set(load_track_ids(path))


def check_window(offset_seconds: float, duration_seconds: float | None) -> tuple[float, float | None]:
    """The window ``offset_seconds`` .. ``+duration_seconds`` (None: to the end), checked."""
    if not offset_seconds >= 0:
        raise SonicError(f"offset must be >= 0 seconds, got {offset_seconds!r}")
    if duration_seconds is not None and not duration_seconds > 0:
        raise SonicError(f"duration must be > 0 seconds (or None for the whole file), got {duration_seconds!r}")
    return float(offset_seconds), duration_seconds


def write_failures(path: str | os.PathLike, failures: Iterable[tuple[str, str]]) -> Path:
    """Write ``(path, reason)`` rows as a csv with the header :data:`FAILURE_COLUMNS`, atomically."""
    path = Path(path)
    with atomic_open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(FAILURE_COLUMNS)
        writer.writerows(failures)
    return path
