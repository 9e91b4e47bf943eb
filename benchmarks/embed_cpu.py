"""Benchmark: does the embedding runner keep the model busy?

Generates ``--tracks`` clips of ``--seconds`` seconds (44.1 kHz stereo, tones and noise that change from
clip to clip) as mp3 files, as Music4All's ``audios/``. Then, in the same run, taking turns:

- runner: ``embed_folder(folder, model, out, num_workers=--workers, batch_size=--batch-size)``, end to
  end: decoding, mono mix-down and soxr resampling in worker processes, batches in input order, the
  forward pass, the shards and the final table written (pool start included);
- forward alone: the same embedder's ``embed`` over the same clips, decoded and resampled beforehand
  (not timed), in batches of ``--batch-size`` in this process, under the same inference context.

It prints clips per second of both, their ratio (runner / forward alone), and the share of the runner's
wall time the model spent in its forward pass. A ratio near 1 means decoding and writing hide behind
the model; on a CPU-only machine the workers' decoding takes cores from the model, so the ratio also
shows what decoding costs there. The vectors of both sides must be equal (to 1e-5 of the largest value).

``--model-type``: a registered name (default ``musicnn``; when its module is not part of this tree yet
the script says so and uses ``mfcc_104``), or ``random-cnn``: a random-weight torch model defined here
(a strided 1-d convolution stack over the 16 kHz waveform, 200-d output, about MusiCNN's size), which
exercises the runner's torch path without any checkpoint.

    python benchmarks/embed_cpu.py [--model-type musicnn|mfcc_104|random-cnn] [--tracks 32] [--seconds 30]
        [--workers 2] [--batch-size 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
from timing import timed

from sonic.cream.audio import decode
from sonic.errors import SonicError
from sonic.tails.base import EMBEDDERS
from sonic.tails.runner import embed_folder
from sonic.tails.shard_work import inference_context
from sonic.tails.table import read_embeddings

SAMPLE_RATE = 44100
FALLBACK = "mfcc_104"


def make_clips(folder: Path, n_tracks: int, seconds: float, seed: int = 0) -> list[Path]:
    """Stereo 44.1 kHz mp3 clips: a few tones with vibrato plus coloured noise, different per clip."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    paths = []
    for index in range(n_tracks):
        channels = []
        for _ in range(2):
            pitches = 110.0 * 2 ** rng.uniform(0, 4, size=3)
            voice = sum(np.sin(2 * np.pi * f * t + 3 * np.sin(2 * np.pi * rng.uniform(2, 6) * t)) for f in pitches)
            hiss = np.convolve(rng.standard_normal(len(t)), np.ones(rng.integers(1, 8)), "same")
            channels.append(0.15 * voice / 3 + 0.02 * hiss)
        path = folder / f"track{index:04d}.mp3"
        soundfile.write(path, np.stack(channels, axis=1).astype(np.float32), SAMPLE_RATE, format="MP3",
                        subtype="MPEG_LAYER_III")
        paths.append(path)
    return paths


class RandomCNN:
    """A random-weight torch embedder (16 kHz audio -> 200-d), built here for the benchmark only."""

    name, dim, sample_rate, modality = "random-cnn", 200, 16000, "audio"

    def __init__(self, seed: int = 0) -> None:
        import torch

        torch.manual_seed(seed)
        self.device = torch.device("cpu")
        layers, channels = [torch.nn.Conv1d(1, 64, 400, stride=160)], 64  # 25 ms frames every 10 ms
        for width in (128, 128, 256, 256):
            layers += [torch.nn.ReLU(), torch.nn.Conv1d(channels, width, 3, stride=2)]
            channels = width
        self.body = torch.nn.Sequential(*layers).eval()
        self.head = torch.nn.Linear(channels, self.dim).eval()

    def embed(self, batch) -> np.ndarray:
        import torch

        from sonic.tails.neural import to_device

        out = []
        with torch.inference_mode():
            for waveform in batch:  # clips may differ in length: one at a time, no padding
                x = to_device(waveform[None, None, :], self.device)
                out.append(self.head(self.body(x).mean(dim=-1))[0].float().numpy())
        return np.stack(out).astype(np.float32)

    def describe(self) -> dict:
        return {"model": self.name, "checkpoint": "random weights, seed 0"}


class Clocked:
    """An embedder that adds up the seconds spent in its ``embed`` (everything else is passed through)."""

    def __init__(self, embedder) -> None:
        self.inner, self.seconds = embedder, 0.0

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def embed(self, batch) -> np.ndarray:
        started = time.perf_counter()
        try:
            return self.inner.embed(batch)
        finally:
            self.seconds += time.perf_counter() - started


def build(model_type: str):
    if model_type == "random-cnn":
        return RandomCNN()
    try:
        return EMBEDDERS.create(model_type)
    except SonicError as error:
        if "not part of this installation" not in str(error):
            raise
        print(f"{error}; using {FALLBACK} instead")
        return EMBEDDERS.create(FALLBACK)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-type", default="musicnn")
    parser.add_argument("--tracks", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    embedder = build(args.model_type)

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary) / "clips"
        folder.mkdir()
        paths = make_clips(folder, args.tracks, args.seconds)
        waveforms = [decode(path, sample_rate=embedder.sample_rate)[0] for path in paths]
        context = inference_context(embedder)
        out = Path(temporary) / "out"

        in_workers = getattr(embedder, "runs_in_workers", False) and args.workers > 1
        busy = []  # fraction of each runner call's wall time spent in the model's forward pass

        def runner() -> np.ndarray:
            shutil.rmtree(out, ignore_errors=True)
            clocked = embedder if in_workers else Clocked(embedder)
            started = time.perf_counter()
            result = embed_folder(folder, clocked, out, num_workers=args.workers, batch_size=args.batch_size,
                                  progress=False)
            if not in_workers:
                busy.append(clocked.seconds / (time.perf_counter() - started))
            return read_embeddings(result.table_path).vectors

        def forward() -> np.ndarray:
            rows = []
            for start in range(0, len(waveforms), args.batch_size):
                with context():
                    rows.append(embedder.embed(waveforms[start : start + args.batch_size]))
            return np.concatenate(rows)

        runner()  # warm up: imports, first pool, first forward
        seconds, results = timed({"runner": runner, "forward": forward}, args.repeats)

    scale = float(np.abs(results["forward"]).max()) or 1.0
    difference = float(np.abs(results["runner"] - results["forward"]).max()) / scale
    ours, alone = args.tracks / seconds["runner"], args.tracks / seconds["forward"]
    print(f"model {embedder.name}: {args.tracks} mp3 clips of {args.seconds:g} s, batch {args.batch_size}, "
          f"{args.workers} workers, median of {args.repeats}")
    print(f"runner end to end (decode, resample, forward, write): {ours:8.2f} clips/s ({seconds['runner']:.2f} s)")
    print(f"forward pass alone on decoded clips (baseline):       {alone:8.2f} clips/s ({seconds['forward']:.2f} s)")
    print(f"ratio runner / forward alone: {ours / alone:.2f}  (vectors differ by {difference:.1e} relative)")
    if busy:
        print(f"the model was busy {100 * float(np.median(busy)):.0f}% of the runner's wall time (median)")
    else:
        print("the model runs in the worker processes (runs_in_workers): its busy time is not measured")
    return 0 if difference <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
