"""What every job over a folder of audio shares: the walk, track ids, duplicates, exclusions, the
window check, the failures file and atomic outputs.

``sonic embed``, ``sonic convert``, ``sonic find-corrupt`` and ``sonic visualize`` each walk a folder
(:func:`audio_folder`), hand its files to worker processes (:func:`sonic.parallel.map_files` or
:func:`sonic.parallel.run_tasks`, with a tqdm progress bar and workers that die with their parent),
list what could not be done (:func:`write_failures`) and write every output under a temporary name
that is renamed when complete (:func:`atomic_output`), so an interrupted run never leaves a
half-written file behind.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sonic.errors import AudioError, SonicError

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

    def __len__(self) -> int:
        return len(self.paths)

    def unique(
        self, duplicate_reason: Callable[[int, int], str] | None = None
    ) -> tuple[list[int], list[tuple[str, str]]]:
        """Indices of the first file (in path order) of each track id, and ``(relative path, reason)``
        for every later file with an id already taken.

        ``duplicate_reason(later, first)`` words the reason (indices into :attr:`paths`); by default
        ``duplicate track_id 'a': 'a.mp3' has the same id and is used``.
        """
        first: dict[str, int] = {}
        kept, duplicates = [], []
        for index, track in enumerate(self.track_ids):
            if track in first:
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
    return AudioFolder(root, tuple(paths), relative, tuple(track_id(path, root) for path in paths))


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


def temporary_path(path: str | os.PathLike) -> Path:
    """Where ``path`` is written before it is renamed: ``.<name>.tmp`` in the same folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp")


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Write ``path`` atomically: yields a temporary path in the same folder, renamed to ``path`` on
    success and removed on failure (the folder is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_failures(path: str | os.PathLike, failures: Iterable[tuple[str, str]]) -> Path:
    """Write ``(path, reason)`` rows as a csv with the header :data:`FAILURE_COLUMNS`, atomically."""
    path = Path(path)
    with atomic_output(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(FAILURE_COLUMNS)
        writer.writerows(failures)
    return path
