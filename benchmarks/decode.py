"""Benchmark: sonic's ``decode_many`` against ``librosa.load`` in as many processes, on 30 s windows.

Generates ``--tracks`` files of ``--minutes`` minutes per format (``--formats``: mp3 and Ogg Vorbis by
default), 44.1 kHz stereo (tones with vibrato and noise, different per file), in a temporary folder.
Then, in the same run, each side reads the window ``--offset`` .. ``+--duration`` seconds of every
file, mixed to mono and resampled to ``--sample-rate`` (soxr HQ on both sides):

- ours: ``decode_many(paths, sample_rate=..., offset_seconds=..., duration_seconds=..., num_workers=--workers)``
  (the whole call: pool start, decoding in the workers, waveforms sent back);
- baseline: for each file, ``librosa.load(path, sr=..., offset=..., duration=...)``, in a pool of
  ``--workers`` processes started inside the timing as ours is, the waveforms sent back to the caller
  as ours are (in this process for ``--workers 0``), so the ratio compares the same number of processes;
- for reference, both in the calling process (no workers), which separates the speed of one file's
  decoding from what the worker processes add;
- for reference, how much faster ``--workers`` processes do native work (zlib) than one process on this
  machine (``timing.machine_scaling``), a reference for what a worker pool can gain here. A virtual machine's
  CPUs may share physical cores or be capped, and then give well under ``--workers``.

Both sides are warmed up once on one file first (imports, first calls). Each side runs ``--repeats``
times, taking turns; the median is reported. Every waveform must agree with librosa's (same length,
largest difference below 1e-4), or the script exits with status 1.

    python benchmarks/decode.py [--tracks 8] [--minutes 5] [--formats mp3,ogg] [--workers N] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import soundfile
from timing import in_processes, machine_scaling, timed

from sonic.cream.audio.load import decode_many

SAMPLE_RATE = 44100
FORMATS = {"mp3": ("MP3", "MPEG_LAYER_III"), "ogg": ("OGG", "VORBIS"), "flac": ("FLAC", "PCM_16")}
TARGET_SPEEDUP = 3.0
AGREEMENT = 1e-4  # largest |ours - librosa| sample difference
WRITE_FRAMES = 16384  # libsndfile's Vorbis encoder crashes on much larger writes


def make_files(folder: Path, n_tracks: int, minutes: float, file_format: str, seed: int, workers: int) -> list[Path]:
    """Stereo 44.1 kHz files: a minute of tones with vibrato plus noise (different per file), repeated.

    Encoding takes seconds per file, so files are written in ``workers`` processes.
    """
    paths = [folder / f"track{index:03d}.{file_format}" for index in range(n_tracks)]
    jobs = [(path, minutes, file_format, seed * 100_000 + index) for index, path in enumerate(paths)]
    with ProcessPoolExecutor(max(workers, 1)) as pool:
        list(pool.map(make_file, *zip(*jobs)))
    return paths


def make_file(path: Path, minutes: float, file_format: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(60 * SAMPLE_RATE) / SAMPLE_RATE
    channels = []
    for _ in range(2):
        pitches = 110.0 * 2 ** rng.uniform(0, 4, size=3)
        voice = sum(np.sin(2 * np.pi * f * t + 3 * np.sin(2 * np.pi * rng.uniform(2, 6) * t)) for f in pitches)
        channels.append(0.15 * voice / 3 + 0.02 * rng.standard_normal(len(t)))
    minute = np.stack(channels, axis=1).astype(np.float32)
    container, subtype = FORMATS[file_format]
    with soundfile.SoundFile(path, "w", SAMPLE_RATE, 2, subtype, format=container) as out:
        for _ in range(round(minutes)):
            for start in range(0, len(minute), WRITE_FRAMES):
                out.write(minute[start : start + WRITE_FRAMES])


def librosa_window(path: Path, sample_rate: int, offset: float, duration: float) -> np.ndarray:
    """The baseline's work on one file: librosa.load of the window."""
    import librosa

    return librosa.load(path, sr=sample_rate, offset=offset, duration=duration)[0]


def librosa_loop(
    paths: list[Path], sample_rate: int, offset: float, duration: float, workers: int
) -> list[np.ndarray]:
    """The baseline: ``librosa_window`` of every file in ``workers`` processes (0: in this one)."""
    window = partial(librosa_window, sample_rate=sample_rate, offset=offset, duration=duration)
    return in_processes(window, paths, workers)


def ours(paths: list[Path], sample_rate: int, offset: float, duration: float, workers: int) -> list[np.ndarray]:
    results = decode_many(
        paths, sample_rate=sample_rate, offset_seconds=offset, duration_seconds=duration, num_workers=workers
    )
    failed = [result.reason for result in results if not result.ok]
    if failed:
        sys.exit(f"ours failed: {failed[0]}")
    return [result.value for result in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=8, help="files per format")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--formats", default="mp3,ogg", help=f"comma-separated, of {', '.join(FORMATS)}")
    parser.add_argument("--offset", type=float, default=60.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--sample-rate", type=int, default=22050)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    unknown = sorted(set(args.formats.split(",")) - set(FORMATS))
    if unknown:
        parser.error(f"unknown format {unknown[0]!r} in --formats; known: {', '.join(FORMATS)}")
    warnings.filterwarnings("ignore", message="'(aifc|audioop|sunau)' is deprecated", category=DeprecationWarning)
    window = (args.sample_rate, args.offset, args.duration)

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for file_format in args.formats.split(","):
            print(f"writing {args.tracks} files of {args.minutes:g} min, 44.1 kHz stereo {file_format} ...", flush=True)
            paths += make_files(Path(tmp), args.tracks, args.minutes, file_format, args.seed, args.workers)
        librosa_loop(paths[:1], *window, workers=0)  # first imports; forked workers inherit them
        ours(paths[:1], *window, workers=0)

        sides = {
            "ours": lambda: ours(paths, *window, workers=args.workers),
            "baseline": lambda: librosa_loop(paths, *window, workers=args.workers),
            "ours_here": lambda: ours(paths, *window, workers=0),
            "baseline_here": lambda: librosa_loop(paths, *window, workers=0),
        }
        seconds, results = timed(sides, args.repeats)

    pairs = list(zip(results["ours"], results["baseline"]))
    lengths_agree = all(len(a) == len(b) for a, b in pairs)
    worst = max(float(np.max(np.abs(a - b))) for a, b in pairs) if lengths_agree else np.inf
    ours_rate, baseline_rate = len(paths) / seconds["ours"], len(paths) / seconds["baseline"]
    speedup = ours_rate / baseline_rate
    print(f"{len(paths)} windows of {args.duration:g} s at {args.offset:g} s, resampled to {args.sample_rate} Hz; "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    print(f"ours      decode_many, {args.workers} workers:          {ours_rate:6.1f} files/s ({seconds['ours']:.2f} s)")
    print(f"baseline  librosa.load, {args.workers} worker processes: {baseline_rate:6.1f} files/s "
          f"({seconds['baseline']:.2f} s)")
    here_rate, baseline_here_rate = len(paths) / seconds["ours_here"], len(paths) / seconds["baseline_here"]
    print(f"(in this process, no workers: ours {here_rate:6.1f} files/s, librosa.load {baseline_here_rate:6.1f} "
          f"files/s, {here_rate / baseline_here_rate:.2f}x)")
    scaling = machine_scaling(args.workers)
    print(f"(ours, {args.workers} workers against no workers: {ours_rate / here_rate:.2f}x; on this machine "
          f"{args.workers} processes of native code run {scaling:.2f}x as fast as one)")  # fmt: skip
    print(f"speed-up {speedup:.2f}x (target {TARGET_SPEEDUP:g}x: {'met' if speedup >= TARGET_SPEEDUP else 'NOT met'})")
    print(f"largest sample difference {worst:.1e} (allowed {AGREEMENT:g}); lengths agree: {lengths_agree}")
    if not worst <= AGREEMENT:
        sys.exit("the waveforms disagree")


if __name__ == "__main__":
    main()
