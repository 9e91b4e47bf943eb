"""Benchmark: MERT-v1-95M (random weights) on 30 s clips, end to end through the runner against the forward pass alone.

The model is built from MERT-v1-95M's published config.json (12 layers, 768-d, the 7-layer 512-channel
feature encoder, 75 frames/s at 24 kHz) with random weights, written as a checkpoint folder in the
published format (config.json, preprocessor_config.json, pytorch_model.bin) and loaded by name through
``EMBEDDERS.create("mert-v1-95m", checkpoint=folder)``, as a downloaded one would be: nothing is downloaded.

``--tracks`` clips of ``--seconds`` s are written as 44.1 kHz stereo mp3 files (benchmarks/embed_cpu.py's
generator). Then, taking turns, ``--repeats`` times:

- runner: ``embed_folder`` end to end: decoding, mono mix-down and soxr resampling to 24 kHz in
  ``--workers`` processes, batches of ``--batch-size`` clips, the forward pass (one 30 s window per clip;
  bf16 autocast on CUDA), shards and the final table written;
- forward alone (baseline): the same embedder's ``embed`` on the same clips decoded and resampled
  beforehand (not timed), in batches of ``--batch-size``, under the same inference context.

It prints clips/s of both and their ratio (target on a GPU: at least 0.8), and checks that both
sides give the same vectors.

    python benchmarks/embed_gpu.py [--tracks 64] [--seconds 30] [--batch-size 32] [--workers 8] [--repeats 2]
        [--device auto|cpu|cuda]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from embed_cpu import make_clips
from timing import timed

from sonic.cream.audio import decode
from sonic.tails.base import EMBEDDERS
from sonic.testing.tiny import tiny_mert
from sonic.tails.runner import embed_folder
from sonic.tails.shard_work import inference_context
from sonic.tails.table import read_embeddings

#: MERT-v1-95M's published architecture (config.json), beside the keys tiny_mert writes.
MERT_V1_95M = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "conv_dim": [512] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "num_feat_extract_layers": 7,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        checkpoint, _ = tiny_mert(root / "MERT-v1-95M", **MERT_V1_95M)
        embedder = EMBEDDERS.create(
            "mert-v1-95m", checkpoint=str(checkpoint), device=args.device, batch_size=args.batch_size,
            window_seconds=args.seconds,
        )
        folder = root / "clips"
        folder.mkdir()
        paths = make_clips(folder, args.tracks, args.seconds)
        waveforms = [decode(path, sample_rate=embedder.sample_rate)[0] for path in paths]
        lengths = sorted({w.size for w in waveforms})
        context = inference_context(embedder)
        out = root / "out"

        def runner() -> np.ndarray:
            shutil.rmtree(out, ignore_errors=True)
            result = embed_folder(folder, embedder, out, num_workers=args.workers, batch_size=args.batch_size,
                                  progress=False)
            return read_embeddings(result.table_path).vectors

        def forward() -> np.ndarray:
            rows = []
            for start in range(0, len(waveforms), args.batch_size):
                with context():
                    rows.append(embedder.embed(waveforms[start : start + args.batch_size]))
            return np.concatenate(rows)

        forward()  # warm up: first forward (and CUDA kernels)
        seconds, results = timed({"runner": runner, "forward": forward}, args.repeats)

    scale = float(np.abs(results["forward"]).max()) or 1.0
    difference = float(np.abs(results["runner"] - results["forward"]).max()) / scale
    ours, alone = args.tracks / seconds["runner"], args.tracks / seconds["forward"]
    print(f"MERT-v1-95M architecture, random weights, on {embedder.device} ({embedder.describe()['precision']}): "
          f"{args.tracks} mp3 clips of {args.seconds:g} s (decoded lengths {lengths[0]}..{lengths[-1]} samples at "
          f"24 kHz), batch {args.batch_size}, {args.workers} workers, median of {args.repeats}")
    print(f"runner end to end (decode, resample, forward, write): {ours:8.3f} clips/s ({seconds['runner']:.2f} s)")
    print(f"forward pass alone on decoded clips (baseline):       {alone:8.3f} clips/s ({seconds['forward']:.2f} s)")
    print(f"ratio runner / forward alone: {ours / alone:.2f}  (vectors differ by {difference:.1e} relative)")
    tolerance = 1e-5 if embedder.describe()["precision"] == "float32" else 1e-2
    return 0 if difference <= tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
