"""Find the audio files under a folder that hold nothing usable, with a reason for each.

Every file is decoded whole, block by block (constant memory), in worker processes. Problems,
checked in this order, one per file:

==============  ===============================================================================
``empty``       0 bytes, or no audio frames
``undecodable`` not audio, or damaged: the decoder fails
``truncated``   decoding ends well before the length the header declares
``too_short``   less than ``min_seconds`` of audio (default 1 s, as :data:`~sonic.cream.audio.MIN_SECONDS`)
``silent``      digital silence: every sample of every channel is exactly zero
``quiet``       near silence: the RMS level of the whole file is below ``loudness_threshold_dbfs``
==============  ===============================================================================

The level is the root mean square of every sample of every channel, in dB relative to full scale
(a sample of 1.0): ``10 * log10(mean(x ** 2))``; a full-scale sine is -3.0 dBFS, white noise of
standard deviation 0.001 is -60 dBFS (the default threshold; speech and music sit around -30 to
-10). The output (Parquet, or csv) lists only the files with a problem, with the columns
:data:`COLUMNS`; its ``track_id`` is the id ``sonic embed`` gives the file, so the output feeds
``--exclude-file`` of ``sonic embed`` and ``sonic data-split`` directly.
"""

from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sonic.cream.audio.decoders import load_decoders
from sonic.cream.audio.load import MIN_SECONDS, open_audio
from sonic.errors import AudioError, BrokenAudioError, SonicError
from sonic.cream.audio.folder_jobs import atomic_output, audio_folder
from sonic.manifest import base_manifest, write_json
from sonic.parallel import map_files

#: Problem codes, in the order they are checked.
PROBLEMS = ("empty", "undecodable", "truncated", "too_short", "silent", "quiet")
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
        found = ", ".join(f"{problem} {self.counts[problem]}" for problem in PROBLEMS)
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
    folder = audio_folder(audio_dir)
    audio_dir = folder.root

    inspect = functools.partial(inspect_file, loudness_threshold_dbfs=loudness_threshold_dbfs, min_seconds=min_seconds)
    index_of = {str(path): index for index, path in enumerate(folder.paths)}
    items, rows = list(index_of), []
    load_decoders(items)
    for result in map_files(inspect, items, num_workers=num_workers, progress=progress, description="scanning"):
        problem, reason = result.value if result.ok else ("undecodable", result.reason)
        if problem is not None:
            index = index_of[result.item]
            rows.append((folder.track_ids[index], folder.relative[index], problem, reason))
    frame = pd.DataFrame(sorted(rows, key=lambda row: row[1]), columns=list(COLUMNS), dtype=str)
    counts = {problem: int((frame["problem"] == problem).sum()) for problem in PROBLEMS}
    _write_table(frame, out)
    manifest = base_manifest(
        "corrupt audio list",
        audio_dir=str(audio_dir.resolve()),
        track_id="file path relative to audio_dir, without extension, '/' between folders",
        loudness="RMS of every sample of every channel, dBFS (10 log10 mean x^2)",
        loudness_threshold_dbfs=loudness_threshold_dbfs,
        min_seconds=min_seconds,
        n_files=len(folder),
        counts=counts,
    )
    manifest_path = write_json(out.with_name(out.name.removesuffix(out.suffix) + ".manifest.json"), manifest)
    return CorruptResult(out, manifest_path, len(folder), counts, time.perf_counter() - started)



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
    """Write ``frame`` to ``out`` (Parquet or csv, by its suffix) atomically."""
    with atomic_output(out) as temporary:
        if out.suffix.lower() == ".csv":
            frame.to_csv(temporary, index=False)
        else:
            frame.to_parquet(temporary, index=False)
