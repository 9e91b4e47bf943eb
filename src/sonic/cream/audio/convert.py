"""Convert every audio file under a folder to wav or flac at one sample rate, keeping the folder structure.

``a/b.m4a`` under the audio folder becomes ``<out>/a/b.wav``. Files are converted in worker
processes, each streamed block by block (decode, optional mix-down to mono, soxr resampling,
write), so a file of any length takes constant memory. Channels are kept unless ``mono`` (the
mean of the channels, as :func:`sonic.cream.audio.decode`). Samples are written as 32-bit float
in wav (lossless for anything decoded, which is float32; RF64 past 4 GiB) and as 24-bit integers
in flac (the most FLAC holds; samples beyond full scale are clipped).

The output folder is claimed first (:func:`sonic.files.output_folder`, kind ``converted audio``):
new, empty, or an earlier conversion's; one ``sonic convert`` at a time writes into it, and a
read-only folder or a full disk is refused before anything is decoded.

Resumable: a target that exists, is readable, has the requested rate and channels, holds the
length the source's header gives (within the slack :func:`sonic.cream.audio.length_slack`
allows) and is not older than its source counts as done and is left alone. Atomic: each file is
written under a unique temporary name in its target folder (:func:`sonic.files.atomic_path`), then
renamed, so no half-written file survives an interruption; temporaries left by a killed run are
removed when the next run starts. A file that cannot be read or converted is skipped and listed in
``<out>/convert.failures.csv`` (``path``, ``reason``); it never stops the run. A disk that fills up,
or Ctrl-C, stops it with one sentence; the files converted so far are kept and a rerun continues.
``<out>/convert.json`` describes the conversion.
"""

from __future__ import annotations

import errno
import functools
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from sonic.cream.audio.decoders import load_decoders
from sonic.cream.audio.folder_jobs import audio_folder, write_failures
from sonic.cream.audio.load import RESAMPLE_QUALITY, length_slack, open_audio
from sonic.errors import AudioError, Interrupted, SonicError
from sonic.files import (
    MIN_FREE_BYTES,
    OutputFolderError,
    atomic_path,
    is_user_os_error,
    os_error_message,
    output_folder,
    remove_temporaries,
    write_json,
)
from sonic.manifest import base_manifest
from sonic.parallel import map_files

#: Output format name -> (libsndfile container, sample type).
OUTPUT_FORMATS = {"wav": ("WAV", "FLOAT"), "flac": ("FLAC", "PCM_24")}
#: Highest sample rate accepted for the output, in Hz.
MAX_SAMPLE_RATE = 768_000
FAILURES_FILE = "convert.failures.csv"
MANIFEST_FILE = "convert.json"
#: The kind of output folder a conversion writes (:func:`sonic.files.output_folder`).
FOLDER_KIND = "converted audio"
_WAV_LIMIT_BYTES = 2**32 - 2**20  # a RIFF size field holds 4 GiB; leave room for the header


@dataclass(frozen=True)
class ConvertResult:
    """What :func:`convert_folder` did."""

    out_dir: Path
    n_converted: int
    n_skipped: int  # already converted by an earlier run
    n_failed: int
    failures: tuple[tuple[str, str], ...]  # (path relative to the audio folder, reason), sorted by path
    failures_path: Path
    manifest_path: Path
    elapsed_seconds: float

    def summary(self) -> str:
        return f"converted {self.n_converted}, skipped {self.n_skipped} already done, failed {self.n_failed}"


def convert_folder(
    audio_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    sample_rate: int,
    file_format: str = "wav",
    mono: bool = False,
    num_workers: int | None = None,
    progress: bool = True,
) -> ConvertResult:
    """Convert every audio file under ``audio_dir`` into ``out_dir`` (see the module docstring).

    ``file_format`` is ``"wav"`` or ``"flac"``; ``num_workers`` processes (None: one per CPU;
    0 or 1: this process). Raises :class:`SonicError` for a bad option, a missing folder, an
    ``out_dir`` that is the audio folder itself, or a folder without audio files.
    """
    started = time.perf_counter()
    _check_options(sample_rate, file_format)
    audio_dir, out_dir = Path(audio_dir), Path(out_dir)
    if out_dir.resolve() == audio_dir.resolve():
        raise SonicError(f"the output folder '{out_dir}' must differ from the audio folder")
    with output_folder(out_dir, FOLDER_KIND, adopt=_earlier_conversion(out_dir)):
        remove_temporaries(out_dir, recursive=True, legacy=tuple(f".{name}.tmp" for name in OUTPUT_FORMATS))
        folder = audio_folder(audio_dir, skip_under=out_dir)

        def same_target(later: int, first: int) -> str:
            target = out_dir / f"{folder.track_ids[first]}.{file_format}"
            return f"'{folder.relative[first]}' is converted to the same file '{target}'"

        kept, failures = folder.unique(same_target)
        items = [(str(folder.paths[i]), str(out_dir / f"{folder.track_ids[i]}.{file_format}")) for i in kept]

        convert = functools.partial(_convert_item, sample_rate=sample_rate, file_format=file_format, mono=mono)
        done = {True: 0, False: 0}
        load_decoders(source for source, _ in items)
        try:
            for result in map_files(convert, items, num_workers=num_workers, progress=progress,
                                    description="converting"):
                if result.ok:
                    done[result.value] += 1
                else:
                    failures.append((Path(result.item[0]).relative_to(audio_dir).as_posix(), result.reason))
        except KeyboardInterrupt:
            raise Interrupted(_kept(done, out_dir)) from None
        except OSError as error:
            if not is_user_os_error(error):
                raise
            raise OutputFolderError(f"{os_error_message(error, out_dir)}; {_kept(done, out_dir)}") from None
        failures.sort()
        failures_path = write_failures(out_dir / FAILURES_FILE, failures)
        manifest = base_manifest(
            "audio conversion",
            audio_dir=str(audio_dir.resolve()),
            out_dir=str(out_dir.resolve()),
            sample_rate=sample_rate,
            format=file_format,
            sample_type=OUTPUT_FORMATS[file_format][1],
            channels="mono (mean of the channels)" if mono else "as the source",
            resampler=f"soxr {soxr.__version__}, quality {RESAMPLE_QUALITY}",
            layout="<out_dir>/<path relative to audio_dir, without extension>.<format>",
            n_sources=len(folder),
            n_converted=done[True],
            n_skipped=done[False],
            n_failed=len(failures),
            failures_file=FAILURES_FILE,
        )
        return ConvertResult(
            out_dir=out_dir,
            n_converted=done[True],
            n_skipped=done[False],
            n_failed=len(failures),
            failures=tuple(failures),
            failures_path=failures_path,
            manifest_path=write_json(out_dir / MANIFEST_FILE, manifest),
            elapsed_seconds=time.perf_counter() - started,
        )


def _kept(done: dict[bool, int], out_dir: Path) -> str:
    converted = done[True] + done[False]
    files = f"{converted} file" + ("" if converted == 1 else "s")
    return f"the {files} converted so far are kept in '{out_dir}'; run the same command again to continue"


def _earlier_conversion(out_dir: Path):
    """What an older sonic's unmarked conversion folder holds (its ``convert.json`` says so): its
    manifest, failures file, converted files and their sub-folders."""
    try:
        earlier = json.loads((out_dir / MANIFEST_FILE).read_text()).get("artifact") == "audio conversion"
    except (OSError, ValueError, AttributeError):
        earlier = False
    suffixes = tuple(f".{name}" for name in OUTPUT_FORMATS)
    return lambda entry: earlier and (entry.name in (MANIFEST_FILE, FAILURES_FILE) or entry.is_dir()
                                      or entry.name.endswith(suffixes))


def convert_file(source: str | os.PathLike, target: str | os.PathLike, *, sample_rate: int, mono: bool = False) -> bool:
    """Convert ``source`` into ``target`` (format from its extension: .wav or .flac), unless already done.

    Returns True if converted, False if ``target`` already held the conversion. Raises
    :class:`AudioError` if ``source`` cannot be decoded or ``target`` cannot be written; then
    ``target`` is left as it was.
    """
    source, target = Path(source), Path(target)
    file_format = target.suffix.lower().lstrip(".")
    _check_options(sample_rate, file_format)
    if _already_done(source, target, sample_rate=sample_rate, mono=mono):
        return False
    try:
        with atomic_path(target) as temporary:
            _write(source, temporary, sample_rate=sample_rate, mono=mono, file_format=file_format)
    except AudioError as error:
        if _disk_full(target.parent):  # libsndfile words a full disk as a failed write: the run stops, not the file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target.parent)) from error
        raise
    return True


def _disk_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < MIN_FREE_BYTES
    except OSError:
        return False


def _convert_item(item: tuple[str, str], *, sample_rate: int, file_format: str, mono: bool) -> bool:
    source, target = item
    return convert_file(source, target, sample_rate=sample_rate, mono=mono)


def _check_options(sample_rate: int, file_format: str) -> None:
    if file_format not in OUTPUT_FORMATS:
        raise SonicError(f"unknown output format '{file_format}'; known: {', '.join(sorted(OUTPUT_FORMATS))}")
    if not (isinstance(sample_rate, int) and 0 < sample_rate <= MAX_SAMPLE_RATE):
        raise SonicError(f"sample rate must be a whole number of Hz from 1 to {MAX_SAMPLE_RATE}, got {sample_rate!r}")


def _already_done(source: Path, target: Path, *, sample_rate: int, mono: bool) -> bool:
    """Whether ``target`` holds ``source`` converted (see the module docstring for the rule)."""
    try:
        if target.stat().st_mtime < source.stat().st_mtime:
            return False
        written = soundfile.info(target)
        with open_audio(source) as audio:
            info = audio.info
    except (OSError, RuntimeError, AudioError):  # no target, unreadable target, or a source to report by converting
        return False
    if written.samplerate != sample_rate or written.channels != (1 if mono else info.channels):
        return False
    if info.frames is None:  # the source's length is known only once decoded (raw AAC)
        return True
    expected = math.ceil(info.frames * sample_rate / info.sample_rate)
    return abs(written.frames - expected) <= length_slack(expected, sample_rate)


def _write(source: Path, path: Path, *, sample_rate: int, mono: bool, file_format: str) -> None:
    """Stream ``source`` into ``path``: decode, mix down if ``mono``, resample, write; block by block."""
    with open_audio(source) as audio:
        info = audio.info
        channels = 1 if mono else info.channels
        container, subtype = OUTPUT_FORMATS[file_format]
        expected_frames = math.ceil((info.frames or 0) * sample_rate / info.sample_rate)
        if container == "WAV" and expected_frames * channels * 4 >= _WAV_LIMIT_BYTES:
            container = "RF64"
        resampler = None
        if sample_rate != info.sample_rate:
            resampler = soxr.ResampleStream(info.sample_rate, sample_rate, channels, quality=RESAMPLE_QUALITY)
        try:
            with soundfile.SoundFile(path, "w", sample_rate, channels, subtype, format=container) as out:
                n_read = n_written = 0
                for block in audio.blocks(mono=mono):
                    n_read += len(block)
                    block = block if resampler is None else resampler.resample_chunk(block, last=False)
                    out.write(block)
                    n_written += len(block)
                if resampler is not None:
                    wanted = math.ceil(n_read * sample_rate / info.sample_rate) - n_written
                    nothing = np.zeros((0, channels) if channels > 1 else 0, np.float32)
                    tail = resampler.resample_chunk(nothing, last=True)
                    out.write(_fit(tail, max(wanted, 0)))
        except (soundfile.LibsndfileError, soundfile.SoundFileRuntimeError) as error:
            raise AudioError(f"cannot write '{path}' as {file_format}: {str(error).splitlines()[0]}") from None


def _fit(frames: np.ndarray, length: int) -> np.ndarray:
    """``frames`` cut or zero-padded to ``length`` (as :func:`sonic.cream.audio.resample` pads its output)."""
    if len(frames) >= length:
        return frames[:length]
    return np.pad(frames, [(0, length - len(frames))] + [(0, 0)] * (frames.ndim - 1))
