"""Where the embedding runner's inputs come from, by the embedder's modality.

=====================  =======================================================================
``audio``, ``image``   every audio file under ``audio_dir``, decoded to mono and resampled (soxr
                       HQ) to the embedder's ``sample_rate`` in worker processes
``text``               ``<track_id>.txt`` under ``lyrics_dir``, or ``<music4all_root>/lyrics``
``tabular``            the rows of ``metadata_file`` (a ``track_id`` or ``id`` column; read by
                       :func:`sonic.cream.data.read_table`), or a Music4All release's metadata
                       (:func:`sonic.cream.data.load_music4all`) with its ``genres`` and ``tags``
=====================  =======================================================================

A :class:`Source` lists the inputs in a fixed order (sorted paths, or the table's order), each with
a fingerprint of its content (path, size, modification time; or the row's values) so a rerun can
tell which results it may reuse, and a picklable loader turning one input into the embedder's payload.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sonic.errors import AudioError, DataError, SonicError
from sonic.cream.audio import audio_folder, read_exclude, unreadable_reason

#: Folder of lyrics inside a Music4All release, and the tables a tabular embedder's rows come from.
MUSIC4ALL_LYRICS = "lyrics"
MUSIC4ALL_TABLES = ("id_metadata.csv", "id_genres.csv", "id_tags.csv")
#: What the manifest records of each input file.
INPUT_COLUMNS = ["path", "size_bytes", "mtime_ns"]


@dataclass(frozen=True)
class Item:
    """One input: its track id, how failures name it, what the loader takes, and its fingerprint."""

    track_id: str
    name: str
    ref: Any  # a path (str) for files, a row (dict) for tables
    fingerprint: tuple


@dataclass(frozen=True)
class Source:
    """The inputs of one run, in order, and how to load them."""

    what: str  # "audio files", "lyrics files" or "metadata rows"
    where: str  # "under 'audios'", "in 'meta.csv'"
    items: list[Item]
    failures: list[tuple[str, str]]  # (name, reason) of inputs left out before loading (duplicates)
    n_excluded: int
    load: Callable[[Any], Any]  # ref -> payload; raises SonicError for an unusable input
    in_workers: bool  # load in worker processes (files) or here (rows already in memory)
    activity: str  # what loading is called in the error for a worker that died
    manifest: dict[str, Any] = field(default_factory=dict)  # input folder or file, and the input files


@dataclass(frozen=True)
class AudioLoader:
    """A file's waveform for an embedder: mono float32 at ``sample_rate``, the window applied, checked.

    Every audio embedder's input is made the same two steps, whether it runs alone or in one pass
    with others (:mod:`sonic.tails.one_pass`): :meth:`decode_native` (the window, at the file's own
    rate), then :meth:`from_native` (soxr to ``sample_rate``, then checked), so the two give the
    same samples, bit for bit.
    """

    sample_rate: int
    offset_seconds: float
    duration_seconds: float | None

    def __call__(self, path: str) -> np.ndarray:
        return self.from_native(*self.decode_native(path))

    def decode_native(self, path: str) -> tuple[np.ndarray, int]:
        """The window of ``path``, mono float32 at the file's own rate: ``(waveform (samples,), rate)``."""
        from sonic.cream.audio import decode

        return decode(path, offset_seconds=self.offset_seconds, duration_seconds=self.duration_seconds)

    def from_native(self, waveform: np.ndarray, native_rate: int) -> np.ndarray:
        """``waveform`` (samples,) at ``native_rate`` resampled to ``sample_rate`` (soxr; none when equal), checked;
        raises :class:`AudioError` when it holds nothing to embed (too short, silent)."""
        from sonic.cream.audio import check_waveform, resample

        if native_rate != self.sample_rate:
            waveform = resample(waveform, native_rate, self.sample_rate)
        reason = check_waveform(waveform, self.sample_rate)
        if reason is not None:
            raise AudioError(reason)
        return waveform


def read_lyrics(path: str) -> str:
    """The text of a lyrics file (UTF-8); an empty or unreadable file is a :class:`DataError`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"lyrics file '{path}' is not UTF-8 text") from None
    except OSError as error:
        raise DataError(f"cannot read lyrics file '{path}': {error.strerror or error}") from None
    if not text.strip():
        raise DataError(f"lyrics file '{path}' holds no text")
    return text


def _row(row: dict) -> dict:
    return row


def open_source(
    embedder: Any,
    *,
    audio_dir: str | os.PathLike | None = None,
    lyrics_dir: str | os.PathLike | None = None,
    metadata_file: str | os.PathLike | None = None,
    music4all_root: str | os.PathLike | None = None,
    offset_seconds: float = 0.0,
    duration_seconds: float | None = None,
    exclude: str | os.PathLike | None = None,
) -> Source:
    """The inputs of ``embedder`` (by its ``modality``) from the one place given for that modality.

    A missing input for the modality is one sentence naming the option that gives it.
    """
    modality, name = embedder.modality, embedder.name
    excluded = read_exclude(exclude)
    if modality in ("audio", "image"):
        if audio_dir is None:
            raise SonicError(f"embedder {name!r} embeds audio; give the audio folder with --audio-dir")
        loader = AudioLoader(embedder.sample_rate, offset_seconds, duration_seconds)
        return _file_source(audio_folder(audio_dir), excluded, "audio files", loader, "decoding", "audio_dir")
    if modality == "text":
        option, folder = _one_of(name, "lyrics", lyrics_dir=lyrics_dir, music4all_root=music4all_root)
        if option == "music4all_root":
            folder = folder / MUSIC4ALL_LYRICS
        return _file_source(_lyrics_folder(folder), excluded, "lyrics files", read_lyrics, "reading", "lyrics_dir")
    if modality == "tabular":
        option, path = _one_of(name, "metadata", metadata_file=metadata_file, music4all_root=music4all_root)
        frame, files = _music4all_metadata(path) if option == "music4all_root" else _metadata_table(path)
        return _table_source(frame, files, excluded, str(path))
    raise SonicError(f"embedder {name!r} declares modality {modality!r}; known: audio, image, text, tabular")


def _one_of(name: str, what: str, **given: str | os.PathLike | None) -> tuple[str, Path]:
    """The one input given among ``given``: (its option, its path)."""
    options = [f"--{option.replace('_', '-')}" for option in given]
    chosen = {option: value for option, value in given.items() if value is not None}
    if not chosen:
        raise SonicError(f"embedder {name!r} embeds {what}; give {' or '.join(options)}")
    if len(chosen) > 1:
        raise SonicError(f"embedder {name!r} takes {what} from one place; give {' or '.join(options)}, not both")
    option, value = next(iter(chosen.items()))
    path = Path(value)
    if option == "music4all_root" and not path.is_dir():
        raise DataError(f"Music4All folder '{path}' does not exist or is not a folder")
    return option, path


def _file_source(folder, excluded: set[str], what: str, load, activity: str, key: str) -> Source:
    """A source of one file per track (audio or lyrics) from an :class:`~sonic.cream.audio.AudioFolder`-like."""
    kept, duplicates = folder.unique()  # unreadable files (links to nothing...) are failures, with duplicates
    items, n_excluded, inputs = [], 0, []
    for index in kept:
        path, relative, track = folder.paths[index], folder.relative[index], folder.track_ids[index]
        if track in excluded:
            n_excluded += 1
            continue
        try:
            stat = path.stat()
        except OSError:  # gone or unreadable since the walk: that file's failure, not the run's
            duplicates.append((relative, unreadable_reason(path) or f"cannot read '{path}'"))
            continue
        items.append(Item(track, relative, str(path), (relative, stat.st_size, stat.st_mtime_ns)))
        inputs.append([relative, stat.st_size, stat.st_mtime_ns])
    if not items:
        raise SonicError(f"nothing to embed: all {len(folder)} {what} under '{folder.root}' are excluded")
    manifest = {
        key: str(folder.root.resolve()),
        "track_id": f"file path relative to {key}, without extension, '/' between folders",
        "inputs": {"columns": INPUT_COLUMNS, "rows": inputs},
    }
    return Source(what, f"under '{folder.root}'", items, duplicates, n_excluded, load, True, activity, manifest)


@dataclass(frozen=True)
class _TextFolder:
    """The ``.txt`` files under a folder, in the shape of :class:`~sonic.cream.audio.AudioFolder`."""

    root: Path
    paths: tuple[Path, ...]
    relative: tuple[str, ...]
    track_ids: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def unique(self) -> tuple[list[int], list[tuple[str, str]]]:
        return list(range(len(self.paths))), []  # one extension: ids are unique


def _lyrics_folder(root: Path) -> _TextFolder:
    if not root.is_dir():
        raise DataError(f"lyrics folder '{root}' does not exist or is not a folder")
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        found.extend(Path(folder, name) for name in files if name.endswith(".txt") and not name.startswith("."))
    paths = sorted(found)
    if not paths:
        raise DataError(f"no lyrics files (<track_id>.txt) under '{root}'")
    relative = tuple(path.relative_to(root).as_posix() for path in paths)
    return _TextFolder(root, tuple(paths), relative, tuple(name.removesuffix(".txt") for name in relative))


def _table_source(frame, files: list[Path], excluded: set[str], where: str) -> Source:
    """A source of one row per track (``frame`` has a ``track_id`` column) read from ``files``."""
    rows = frame.to_dict(orient="records")
    items, n_excluded, seen, duplicates = [], 0, set(), []
    for row in rows:
        track = str(row.pop("track_id"))
        if track in seen:
            duplicates.append((track, f"duplicate track_id '{track}' in '{where}': its first row is used"))
            continue
        seen.add(track)
        if track in excluded:
            n_excluded += 1
            continue
        items.append(Item(track, track, row, (track, *map(repr, row.values()))))
    if not items:
        raise SonicError(f"nothing to embed: all {len(rows)} rows of '{where}' are excluded")
    manifest = {
        "metadata": str(Path(where).resolve()),
        "track_id": "the table's track_id column",
        "inputs": {"columns": INPUT_COLUMNS, "rows": [[path.name, *_size_and_time(path)] for path in files]},
    }
    return Source("metadata rows", f"in '{where}'", items, duplicates, n_excluded, _row, False, "reading", manifest)


def _size_and_time(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _metadata_table(path: Path):
    """A metadata table (csv, tsv or Parquet, read by the shared reader) with a string ``track_id`` column."""
    from sonic.cream.data import read_table

    frame = read_table(path, what="metadata table", ids=("track_id", "id"))
    if "track_id" not in frame.columns and "id" in frame.columns:
        frame = frame.rename(columns={"id": "track_id"})
    if "track_id" not in frame.columns:
        found = ", ".join(map(str, frame.columns))
        raise DataError(f"metadata table '{path}' has no 'track_id' column; found: {found}")
    return frame, [path]


def _music4all_metadata(root: Path):
    """A Music4All release's metadata, one row per track, with its ``genres`` and ``tags`` (tuples) joined."""
    from sonic.cream.data import load_music4all

    release = load_music4all(root)
    frame = release.metadata.copy()
    for block in ("genres", "tags"):
        labels = getattr(release, block)
        frame[block] = [labels.get(track, ()) for track in frame.index]
    frame = frame.rename_axis("track_id").reset_index()
    return frame, [root / name for name in MUSIC4ALL_TABLES]
