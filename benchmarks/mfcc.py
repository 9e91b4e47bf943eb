"""Benchmark: sonic's ``embed_folder(..., "mfcc_104")`` against librosa in as many processes.

Generates ``--tracks`` clips of ``--seconds`` seconds, 44.1 kHz stereo (tones and noise that
change from clip to clip), written as ``--format`` (mp3 by default, as Music4All's ``audios/``;
also ogg for Ogg Vorbis, or 16-bit wav) into a temporary folder. Then, in the same run:

- ours: ``embed_folder(folder, "mfcc_104", out, num_workers=--workers)`` (decode, mono mix-down,
  soxr resampling to 22050 Hz and MFCC in the workers; the whole call, pool start and writing the
  table included);
- baseline: for each file, ``librosa.load(path, sr=22050)`` then
  ``librosa.feature.mfcc(y, sr=22050, n_mfcc=104, n_fft=2048, hop_length=512, n_mels=128).mean(axis=1)``,
  in a pool of ``--workers`` processes started inside the timing as ours is (in this process for
  ``--workers 0``, as ours then runs), so the ratio compares the same number of processes.

Both sides are warmed up once on a one-clip folder first, so that neither pays its one-off costs
(first imports, numba compilation) inside the timing.

Each side runs ``--repeats`` times, taking turns; the median is reported. The vectors must agree (largest
difference below 1e-4 of the largest coefficient), or the script exits with status 1.

    python benchmarks/mfcc.py [--tracks 60] [--seconds 30] [--format mp3|ogg|wav] [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import soundfile
from timing import in_processes, timed

from sonic.tails.runner import embed_folder
from sonic.tails.table import read_embeddings

SAMPLE_RATE = 44100
FORMATS = {"mp3": ("MP3", "MPEG_LAYER_III"), "ogg": ("OGG", "VORBIS"), "wav": ("WAV", "PCM_16")}
TARGET_SPEEDUP = 3.0
AGREEMENT = 1e-4  # largest |ours - librosa| over the largest |librosa| coefficient


def make_clips(folder: Path, n_tracks: int, seconds: float, file_format: str, seed: int) -> list[Path]:
    """Stereo 44.1 kHz clips: a few tones with vibrato plus coloured noise, different per clip."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    container, subtype = FORMATS[file_format]
    paths = []
    for index in range(n_tracks):
        channels = []
        for _ in range(2):
            pitches = 110.0 * 2 ** rng.uniform(0, 4, size=3)
            voice = sum(np.sin(2 * np.pi * f * t + 3 * np.sin(2 * np.pi * rng.uniform(2, 6) * t)) for f in pitches)
            hiss = np.convolve(rng.standard_normal(len(t)), np.ones(rng.integers(1, 8)), "same")
            channels.append(0.15 * voice / 3 + 0.02 * hiss)
        path = folder / f"track{index:04d}.{file_format}"
        stereo = np.stack(channels, axis=1).astype(np.float32)
        soundfile.write(path, stereo, SAMPLE_RATE, format=container, subtype=subtype)
        paths.append(path)
    return paths


def librosa_mfcc(path: Path) -> np.ndarray:
    """The baseline's work on one file: librosa.load then librosa's MFCC, mean over time. (104,)."""
    import librosa

    y, sr = librosa.load(path, sr=22050)
    return librosa.feature.mfcc(y=y, sr=sr, n_mfcc=104, n_fft=2048, hop_length=512, n_mels=128).mean(axis=1)


def librosa_loop(paths: list[Path], workers: int) -> np.ndarray:
    """The baseline: ``librosa_mfcc`` of every file in ``workers`` processes (0: in this one). (n, 104)."""
    return np.stack(in_processes(librosa_mfcc, paths, workers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--format", choices=sorted(FORMATS), default="mp3")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="'(aifc|audioop|sunau)' is deprecated", category=DeprecationWarning)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "audio"
        folder.mkdir()
        print(f"writing {args.tracks} clips of {args.seconds:g} s, 44.1 kHz stereo {args.format} ...", flush=True)
        paths = make_clips(folder, args.tracks, args.seconds, args.format, args.seed)

        warm_up = Path(tmp) / "warm-up"
        warm_up.mkdir()
        (warm_up / paths[0].name).symlink_to(paths[0])
        librosa_loop(paths[:1], 0)  # numba compilation, first imports (forked workers inherit them)
        embed_folder(warm_up, "mfcc_104", Path(tmp) / "warm-up-out", num_workers=args.workers, progress=False)

        def ours():
            return embed_folder(folder, "mfcc_104", Path(tmp) / "out", num_workers=args.workers, progress=False)

        seconds, results = timed({"ours": ours, "baseline": lambda: librosa_loop(paths, args.workers)}, args.repeats)
        table, expected = read_embeddings(results["ours"].table_path), results["baseline"]
        ours_seconds, baseline_seconds = seconds["ours"], seconds["baseline"]

    rows, found = table.lookup(np.array([path.stem for path in paths]))
    if not found.all():
        sys.exit(f"missing from our table: {np.array(paths)[~found]}")
    worst = float(np.max(np.abs(table.vectors[rows] - expected)) / np.max(np.abs(expected)))
    ours_rate, baseline_rate = args.tracks / ours_seconds, args.tracks / baseline_seconds
    speedup = ours_rate / baseline_rate
    print(f"ours      embed_folder, {args.workers} workers:     {ours_rate:6.1f} tracks/s ({ours_seconds:.2f} s)")
    print(f"baseline  librosa, {args.workers} worker processes: {baseline_rate:6.1f} tracks/s "
          f"({baseline_seconds:.2f} s)")
    print(f"speed-up {speedup:.2f}x (target {TARGET_SPEEDUP:g}x: {'met' if speedup >= TARGET_SPEEDUP else 'NOT met'})")
    print(f"largest difference {worst:.1e} of the largest coefficient (allowed {AGREEMENT:g})")
    if worst > AGREEMENT:
        sys.exit("the vectors disagree")


if __name__ == "__main__":
    main()
