"""Find the audio files under a folder that hold nothing usable, or that duplicate another, with a reason for each.

Every file is decoded whole, block by block (constant memory), in worker processes. Problems,
checked in this order, one per file:

=====================  ==================================================================================
``unreadable``         cannot be read: a link to nothing, no permission, not a plain file
``empty``              0 bytes, or no audio frames
``undecodable``        not audio, or damaged: the decoder fails
``truncated``          decoding ends well before the length the header declares
``too_short``          less than ``min_seconds`` of audio (default 1 s, as :data:`~sonic.cream.audio.MIN_SECONDS`)
``silent``             digital silence: every sample of every channel is exactly zero
``quiet``              near silence: the RMS level of the whole file is below ``loudness_threshold_dbfs``
``duplicate_id``       another file, earlier in path order, has the same track id (``a.flac`` and ``a.ogg``):
                       ``sonic embed`` uses the earlier one; which one the listening events mean is unknown
``duplicate_content``  the same bytes as a file earlier in path order (a copy, or a link to it), named
                       in the reason; only files of equal size are hashed (sha256, in the workers)
=====================  ==================================================================================

The level is the root mean square of every sample of every channel, in dB relative to full scale
(a sample of 1.0): ``10 * log10(mean(x ** 2))``; a full-scale sine is -3.0 dBFS, white noise of
standard deviation 0.001 is -60 dBFS (the default threshold; speech and music sit around -30 to
-10). The output (Parquet, or csv) lists only the files with a problem, with the columns
:data:`COLUMNS`; its ``track_id`` is the id ``sonic embed`` gives the file, so the output feeds
``--exclude-file`` of ``sonic embed`` and ``sonic data-split`` directly (a ``duplicate_id`` row
excludes that id altogether; delete the row to keep the earlier file).

``out`` is one file in a folder that may hold anything else: the folder is locked while it is
written (one writer), checked for writing and free space before any file is decoded, and ``out``
is written atomically. An existing ``out`` is only replaced when it is an earlier output of this
function (a Parquet file carrying ``sonic.artifact`` in its metadata, or a file with :data:`COLUMNS`
named by its manifest beside it); anything else is refused in one sentence.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sonic.cream.audio.decoders import load_decoders
from sonic.cream.audio.folder_jobs import AudioFolder, audio_folder
from sonic.cream.audio.load import MIN_SECONDS, open_audio
from sonic.errors import AudioError, BrokenAudioError, SonicError
from sonic.files import atomic_path, output_file, write_json
from sonic.manifest import base_manifest
from sonic.parallel import map_files

#: Problem codes, in the order they are checked.
PROBLEMS = ("unreadable", "empty", "undecodable", "truncated", "too_short", "silent", "quiet", "duplicate_id",
            "duplicate_content")  # fmt: skip
#: What the manifest (and the Parquet metadata key ``sonic.artifact``) calls this output.
ARTIFACT = "corrupt audio list"
_ARTIFACT_KEY = b"sonic.artifact"
#: Columns of the output table.
COLUMNS = ("track_id", "path", "problem", "reason")
#: Files whose RMS level lies below this (dBFS) are ``quiet``.
LOUDNESS_THRESHOLD_DBFS = -60.0
_OUTPUT_SUFFIXES = (".parquet", ".pqt", ".csv")


@dataclass(frozen=True)
class CorruptResult:
    """What :func:`find_corrupt` found and wrote."""

    out_path: Path
    manifest_path: Path
    n_files: int
    counts: dict[str, int]  # problem code -> files, for every code in PROBLEMS
    elapsed_seconds: float

    def summary(self) -> str:
        found = ", ".join(f"{problem} {self.counts[problem]}" for problem in PROBLEMS if self.counts[problem])
        if not found:
            return f"scanned {self.n_files} files: none with problems"
        return f"scanned {self.n_files} files: {sum(self.counts.values())} with problems ({found})"


def find_corrupt(
    audio_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    loudness_threshold_dbfs: float = LOUDNESS_THRESHOLD_DBFS,
    min_seconds: float = MIN_SECONDS,
    num_workers: int | None = None,
    progress: bool = True,
) -> CorruptResult:
    """Scan every audio file under ``audio_dir``; write the ones with a problem to ``out``.

    ``out`` ends in .parquet / .pqt (Parquet) or .csv; a manifest goes beside it
    (``name.manifest.json``). ``num_workers`` processes (None: one per CPU; 0 or 1: this
    process). Raises :class:`SonicError` for a bad option, a missing folder or no audio files.
    """
    import pandas as pd

    started = time.perf_counter()
    out = Path(out)
    _check_options(out, loudness_threshold_dbfs, min_seconds)
    manifest_file = manifest_path(out)
    with output_file(out, "find-corrupt output", recognise=is_earlier_output):  # before any file is decoded
        if manifest_file.exists() and not _is_our_manifest(manifest_file):
            raise SonicError(f"'{manifest_file}' exists and is not a find-corrupt manifest; give another --out")
        folder = audio_folder(audio_dir)
        audio_dir = folder.root
        rows = _scan(folder, loudness_threshold_dbfs, min_seconds, num_workers, progress)
        frame = pd.DataFrame(sorted(rows, key=lambda row: row[1]), columns=list(COLUMNS), dtype=str)
        counts = {problem: int((frame["problem"] == problem).sum()) for problem in PROBLEMS}
        _write_table(frame, out)
        manifest = base_manifest(
            ARTIFACT,
            output=out.name,
            audio_dir=str(audio_dir.resolve()),
            track_id="file path relative to audio_dir, without extension, '/' between folders",
            loudness="RMS of every sample of every channel, dBFS (10 log10 mean x^2)",
            loudness_threshold_dbfs=loudness_threshold_dbfs,
            min_seconds=min_seconds,
            duplicates="duplicate_id: an earlier file has the same track id; duplicate_content: the same bytes "
                       "(sha256) as an earlier file",
            n_files=len(folder),
            counts=counts,
        )
        write_json(manifest_file, manifest)
    return CorruptResult(out, manifest_file, len(folder), counts, time.perf_counter() - started)


def manifest_path(out: str | os.PathLike) -> Path:
    """``dir/exclude.parquet`` -> ``dir/exclude.manifest.json``."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(out.suffix) + ".manifest.json")


def is_earlier_output(path: str | os.PathLike) -> bool:
    """Whether ``path`` is what :func:`find_corrupt` wrote: a Parquet file with ``sonic.artifact`` in its
    metadata, or a table with exactly :data:`COLUMNS` whose manifest beside it says it is this output."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        if path.suffix.lower() == ".csv":
            with open(path, encoding="utf-8") as stream:
                columns = stream.readline().strip().split(",")
        else:
            schema = pq.read_schema(path)
            if (schema.metadata or {}).get(_ARTIFACT_KEY) == ARTIFACT.encode():
                return True
            columns = schema.names
    except (OSError, UnicodeDecodeError, pa.ArrowException):
        return False
    return tuple(columns) == COLUMNS and _is_our_manifest(manifest_path(path), output=path.name)


def _is_our_manifest(path: Path, *, output: str | None = None) -> bool:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or manifest.get("artifact") != ARTIFACT:
        return False
    return output is None or manifest.get("output", output) == output


def _scan(folder: AudioFolder, loudness_threshold_dbfs: float, min_seconds: float, num_workers: int | None,
          progress: bool) -> list[tuple[str, str, str, str]]:
    """``(track_id, relative path, problem, reason)`` for every file of ``folder`` with a problem."""
    rows = [(folder.track_ids[index], folder.relative[index], "unreadable", reason)
            for index, reason in folder.unreadable.items()]  # fmt: skip
    readable = [index for index in range(len(folder)) if index not in folder.unreadable]
    problems, digests = _inspect_all(folder, readable, loudness_threshold_dbfs, min_seconds, num_workers, progress)
    _, duplicates = folder.unique(lambda later, first: f"'{folder.relative[later]}' has the track id "
                                                       f"'{folder.track_ids[later]}' of '{folder.relative[first]}', "
                                                       f"which sonic embed uses")  # fmt: skip
    duplicate_ids = dict(duplicates)
    first_with: dict[str, int] = {}  # sha256 -> the first file (in path order) holding those bytes
    for index in readable:
        relative = folder.relative[index]
        original = first_with.setdefault(digests[index], index) if index in digests else index
        if index in problems:
            problem, reason = problems[index]
        elif relative in duplicate_ids:
            problem, reason = "duplicate_id", duplicate_ids[relative]
        elif original != index:
            problem = "duplicate_content"
            reason = f"'{relative}' holds the same bytes as '{folder.relative[original]}' (a copy or a link)"
        else:
            continue
        rows.append((folder.track_ids[index], relative, problem, reason))
    return rows


def _inspect_all(folder: AudioFolder, indices: list[int], loudness_threshold_dbfs: float, min_seconds: float,
                 num_workers: int | None, progress: bool) -> tuple[dict[int, tuple[str, str]], dict[int, str]]:
    """Decode the files ``indices`` of ``folder`` in worker processes: {index: (problem, reason)} of those
    with a problem, and {index: sha256} of the others that share their size with another file."""
    sizes = defaultdict(list)
    for index in indices:
        try:
            sizes[os.stat(folder.paths[index]).st_size].append(index)
        except OSError:  # gone since the walk: decoding it will say so
            continue
    hashed = {index for group in sizes.values() if len(group) > 1 for index in group}
    inspect = functools.partial(_inspect_item, loudness_threshold_dbfs=loudness_threshold_dbfs,
                                min_seconds=min_seconds)  # fmt: skip
    items = [(str(folder.paths[index]), index in hashed) for index in indices]
    index_of = {str(folder.paths[index]): index for index in indices}
    load_decoders(path for path, _ in items)
    problems, digests = {}, {}
    for result in map_files(inspect, items, num_workers=num_workers, progress=progress, description="scanning"):
        index = index_of[result.item[0]]
        problem, reason, digest = result.value if result.ok else ("undecodable", result.reason, None)
        if problem is not None:
            problems[index] = (problem, reason)
        elif digest is not None:
            digests[index] = digest
    return problems, digests


def _inspect_item(item: tuple[str, bool], *, loudness_threshold_dbfs: float,
                  min_seconds: float) -> tuple[str | None, str | None, str | None]:
    """(problem, reason, sha256 of the bytes when asked for) of one file (a worker's job)."""
    path, hash_it = item
    problem, reason = inspect_file(path, loudness_threshold_dbfs=loudness_threshold_dbfs, min_seconds=min_seconds)
    return problem, reason, (_sha256(path) if hash_it and problem is None else None)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def inspect_file(
    path: str | os.PathLike,
    *,
    loudness_threshold_dbfs: float = LOUDNESS_THRESHOLD_DBFS,
    min_seconds: float = MIN_SECONDS,
) -> tuple[str | None, str | None]:
    """``(problem, reason)`` for one file (see the module docstring), or ``(None, None)`` if it is fine."""
    frames, energy, peak = 0, 0.0, 0.0
    try:
        with open_audio(path) as audio:
            rate, channels = audio.info.sample_rate, audio.info.channels
            for block in audio.blocks(mono=False):
                samples = block.reshape(-1)
                frames += len(block)
                energy += float(np.dot(samples, samples))
                peak = max(peak, float(np.max(np.abs(samples))))
    except BrokenAudioError as error:
        return error.problem, str(error)
    except AudioError as error:
        return "undecodable", str(error)
    seconds = frames / rate
    if seconds < min_seconds:
        return "too_short", f"'{path}' is too short: {seconds:.2f} s of audio, need at least {min_seconds:g} s"
    if peak == 0.0:
        return "silent", f"'{path}' is silent: every sample is zero"
    level = 10.0 * math.log10(energy / (frames * channels)) if energy > 0 else -math.inf
    if level < loudness_threshold_dbfs:
        reason = f"its RMS level {level:.1f} dBFS is below {loudness_threshold_dbfs:g} dBFS"
        return "quiet", f"'{path}' is nearly silent: {reason}"
    return None, None


def _check_options(out: Path, loudness_threshold_dbfs: float, min_seconds: float) -> None:
    if out.suffix.lower() not in _OUTPUT_SUFFIXES:
        raise SonicError(f"output file '{out}' must end in one of {', '.join(_OUTPUT_SUFFIXES)}")
    if not (isinstance(loudness_threshold_dbfs, (int, float)) and -math.inf < loudness_threshold_dbfs < 0):
        raise SonicError(f"loudness threshold must be a level below 0 dBFS, got {loudness_threshold_dbfs!r}")
    if not (isinstance(min_seconds, (int, float)) and 0 <= min_seconds < math.inf):
        raise SonicError(f"shortest length must be >= 0 seconds, got {min_seconds!r}")


def _write_table(frame, out: Path) -> None:
    """Write ``frame`` to ``out`` atomically: Parquet with ``sonic.artifact`` in its metadata, or csv (by suffix)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_path(out) as temporary:
        if out.suffix.lower() == ".csv":
            frame.to_csv(temporary, index=False)
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}),
                                                          _ARTIFACT_KEY: ARTIFACT.encode()}), temporary)
