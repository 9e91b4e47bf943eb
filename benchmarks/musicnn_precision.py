"""Benchmark: MusiCNN in bfloat16 against float32 on real recordings: deviation, album neighbours, speed.

The input is a folder of albums (first-level subfolders, as ``benchmarks/album_neighbours.py`` takes).
Each file's first ``--duration-seconds`` are decoded once (16 kHz, ``sonic.cream.audio.decode``), cut
into 3-second patches and run through the published model twice, ``precision="float32"`` and
``precision="bfloat16"``, in one process. Printed:

- per patch: the penultimate layer's largest absolute difference, and the cosine of bf16's vector
  to float32's (smallest, 0.1% quantile, median);
- per clip (mean over patches, what ``sonic embed`` writes): the same;
- same-album nearest neighbours of both sets (precision@1 in tracks, precision@5, MAP; raw and
  z-scored vectors), with ``album_neighbours.py``'s scoring;
- the forward passes' CPU seconds and wall seconds, float32 as the baseline, and the ratio.

    python benchmarks/musicnn_precision.py --audio-dir DIR [--duration-seconds 30] [--model musicnn]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from album_neighbours import album_scores, audio_files, standardised  # noqa: E402


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (n, d) arrays (float64)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio-dir", type=Path, required=True, help="folder whose first-level subfolders are albums")
    parser.add_argument("--duration-seconds", type=float, default=30.0, help="first seconds of each file (default 30)")
    parser.add_argument("--model", default="musicnn")
    args = parser.parse_args()

    import torch

    from sonic.cream.audio import decode
    from sonic.tails.models.musicnn import from_name

    paths = audio_files(args.audio_dir)
    albums = np.array([path.relative_to(args.audio_dir).parts[0] for path in paths])
    waveforms = [decode(path, sample_rate=16000, duration_seconds=args.duration_seconds)[0] for path in paths]
    embedders = {precision: from_name(args.model, device="cpu", precision=precision)
                 for precision in ("float32", "bfloat16")}
    patches = [embedders["float32"].patches(waveform) for waveform in waveforms]
    per_patch, per_clip, seconds = {}, {}, {}
    for precision, embedder in embedders.items():
        embedder.forward(patches[0])  # warm-up
        started, cpu = time.perf_counter(), time.process_time()
        outputs = [embedder.forward(clip)["penultimate"] for clip in patches]
        seconds[precision] = (time.perf_counter() - started, time.process_time() - cpu)
        per_patch[precision] = np.concatenate(outputs)
        per_clip[precision] = np.stack([output.mean(axis=0) for output in outputs])

    n_patches = sum(len(clip) for clip in patches)
    print(f"{len(paths)} files in {len(set(albums))} albums, first {args.duration_seconds:g} s each, {n_patches} "
          f"patches; model {embedders['float32'].model}, torch {torch.__version__} with {torch.get_num_threads()} "
          f"thread(s); load average {os.getloadavg()[0]:.1f}")
    print("bfloat16 against float32, penultimate layer:")
    for label, vectors in (("per patch", per_patch), ("per clip (mean)", per_clip)):
        difference = np.abs(vectors["bfloat16"] - vectors["float32"])
        cosine = cosines(vectors["bfloat16"], vectors["float32"])
        scale = np.abs(vectors["float32"]).max()
        print(f"  {label:16} max |diff| {difference.max():.4f} (largest |value| {scale:.2f}); cosine min "
              f"{cosine.min():.6f}, 0.1% quantile {np.quantile(cosine, 0.001):.6f}, median {np.median(cosine):.6f}")
    print(f"same-album neighbours ({len(paths)} tracks):  precision@1 (tracks)  precision@5  MAP")
    for precision, vectors in per_clip.items():
        for label, view in (("raw", vectors), ("z-scored", standardised(vectors))):
            scores = album_scores(view, albums)
            hits = f"{scores.hits_at_1:5d} / {scores.n_queries:<5d} {scores.precision_at_1:.3f}"
            rest = f"{scores.precision_at_k:11.3f}  {scores.mean_average_precision:.3f}"
            print(f"  {precision:9} {label:9} {hits}  {rest}")
    (wall32, cpu32), (wall16, cpu16) = seconds["float32"], seconds["bfloat16"]
    print(f"forward passes: float32 {wall32:.1f} s wall, {cpu32:.1f} s CPU; bfloat16 {wall16:.1f} s wall, "
          f"{cpu16:.1f} s CPU; bfloat16 / float32: {wall32 / wall16:.2f}x faster (wall), {cpu32 / cpu16:.2f}x (CPU)")


if __name__ == "__main__":
    main()
