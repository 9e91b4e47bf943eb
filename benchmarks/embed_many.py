"""Benchmark: one pass over the audio for several embedders against separate runs of each.

Generates ``--clips`` clips of ``--seconds`` seconds (stereo 44.1 kHz mp3, as Music4All's ``audios/``;
:func:`embed_cpu.make_clips`) in a temporary folder. Embedders:

- ``mfcc_104``;
- ``musicnn``: the packaged MSD_musicnn weights when they are cached (``sonic fetch musicnn``), else the
  tiny random-weight fixture of :mod:`sonic.testing` in the same checkpoint format (labelled so);
- ``dino_vits16_random``: ViT-S/16 with random weights (sonic's control);
- a tiny waveform transformer: music2vec's architecture at the fixture's size (hidden 32, the published
  feature encoder's strides at 16 channels), random weights (:func:`sonic.testing.tiny.tiny_music2vec`,
  labelled so).

Then, in one run, with the same worker count: **separate** runs (``embed_folder`` once per embedder, each
decoding every file) and **one pass** (``embed_many``: each file decoded once, every embedder fed from
it). Each side's CPU-seconds (this process and its worker processes, ``resource.getrusage`` self +
children) and wall time are printed with their ratio, and the tables of the two sides are checked equal
bit for bit (``np.array_equal`` on track ids and vectors; manifests may differ).

``--tiny``: musicnn and the DINO control are tiny random fixtures too, so the models cost little and the
decoding the pass saves shows (a stand-in, on a CPU machine, for the CPU side of a run whose models sit on
a GPU). On a GPU machine run it without ``--tiny``: musicnn, the DINO control and the transformer go to
``--device`` (default ``auto``: CUDA when there is one), so the CPU-seconds are those the GPU run leaves
on the CPU (decoding, resampling, spectral pictures, MFCC).

    python benchmarks/embed_many.py [--clips 200] [--seconds 30] [--workers 2] [--batch-size 16] [--tiny]
        [--device auto|cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from embed_cpu import make_clips  # noqa: E402

from sonic.tails.many import embed_many  # noqa: E402
from sonic.tails.neural import pick_device  # noqa: E402
from sonic.tails.runner import embed_folder  # noqa: E402
from sonic.tails.table import read_embeddings  # noqa: E402


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def embedders(weights: Path, *, tiny: bool = False, device: str = "cpu") -> tuple[list, list[str]]:
    """The four embedders and a label for each (what its weights are). ``tiny``: musicnn and the DINO
    control as sonic.testing's tiny random fixtures too (models cheap, so decoding's share shows); ``device``:
    where musicnn's packaged weights, the DINO control and the transformer run (the tiny fixtures: CPU)."""
    from sonic.tails.base import EMBEDDERS
    from sonic.tails.models.fetch import fetch_status
    from sonic.tails.models.music2vec import from_name as music2vec
    from sonic.testing import EMBEDDER_FIXTURES
    from sonic.testing.tiny import PUBLISHED_CONVOLUTIONS, tiny_music2vec

    cached = {entry.name: entry.present for entry in fetch_status()}
    if cached.get("musicnn") and not tiny:
        musicnn = EMBEDDERS.create("musicnn", device=device)
        musicnn_label = f"musicnn: packaged MSD_musicnn weights, on {device}"
    else:
        musicnn = EMBEDDER_FIXTURES["musicnn"](weights / "musicnn")
        musicnn_label = "musicnn: RANDOM-WEIGHT tiny fixture" + ("" if tiny else " (packaged weights not cached)")
    tiny_music2vec(weights / "music2vec", **PUBLISHED_CONVOLUTIONS)  # the published 320-sample hop, 16 channels
    transformer = music2vec("music2vec-v1", checkpoint=str(weights / "music2vec"), device=device)
    if tiny:
        dino = EMBEDDER_FIXTURES["dino_vits16_random"](weights / "dino")
        dino_label = "dino_vits16_random: tiny ViT fixture (width 64, 2 blocks), RANDOM weights"
    else:
        dino = EMBEDDERS.create("dino_vits16_random", device=device)
        dino_label = f"dino_vits16_random: ViT-S/16, random weights (sonic's control), on {device}"
    items = ["mfcc_104", musicnn, dino, transformer]
    labels = ["mfcc_104", musicnn_label, dino_label,
              f"music2vec-v1 architecture, tiny fixture, RANDOM weights, on {device}"]
    return items, labels


def timed(function) -> tuple[object, float, float]:
    cpu, wall = cpu_seconds(), time.perf_counter()
    result = function()
    return result, cpu_seconds() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--tiny", action="store_true",
                        help="musicnn and the DINO control as tiny random fixtures (cheap models: decoding's share)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda: where the models run (not with --tiny)")
    args = parser.parse_args()
    device = "cpu" if args.tiny else str(pick_device(args.device))
    with tempfile.TemporaryDirectory(prefix="sonic-embed-many-") as tmp:
        root = Path(tmp)
        (root / "audios").mkdir()
        make_clips(root / "audios", args.clips, args.seconds)
        items, labels = embedders(root / "weights", tiny=args.tiny, device=device)
        settings = {"num_workers": args.workers, "batch_size": args.batch_size, "progress": False}
        for item in items:  # build and load each model once before timing (a dino control writes its weights)
            embed_many(root / "audios", [item], root / "warm", offset_seconds=0.0, duration_seconds=1.5, **settings)

        separate, separate_cpu, separate_wall = timed(
            lambda: [embed_folder(root / "audios", item, root / "separate", **settings) for item in items])
        together, pass_cpu, pass_wall = timed(lambda: embed_many(root / "audios", items, root / "pass", **settings))

        print(f"{args.clips} mp3 clips of {args.seconds:g} s (stereo 44.1 kHz), {args.workers} workers, "
              f"batch {args.batch_size}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for label in labels:
            print(f"  embedder: {label}")
        print(f"separate runs : {separate_cpu:8.1f} CPU-s  {separate_wall:8.1f} s wall")
        print(f"one pass      : {pass_cpu:8.1f} CPU-s  {pass_wall:8.1f} s wall")
        print(f"ratio (separate / one pass): CPU {separate_cpu / pass_cpu:.2f}x, wall {separate_wall / pass_wall:.2f}x")
        equal = True
        for alone, joined in zip(separate, together, strict=True):
            first, second = read_embeddings(alone.table_path), read_embeddings(joined.table_path)
            same = np.array_equal(first.track_ids, second.track_ids) and np.array_equal(first.vectors, second.vectors)
            equal &= same
            print(f"  {alone.table_path.stem}: {len(first.track_ids)} tracks, dim {first.dim}, "
                  f"{'identical' if same else 'DIFFERENT'}")
        print("tables identical bit for bit" if equal else "TABLES DIFFER")
        if not equal:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
