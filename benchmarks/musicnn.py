"""Benchmark: MusiCNN clips per second, ours (PyTorch) against the original musicnn 0.1.0 package (TensorFlow).

Both sides embed the same audio files in one run on this machine: ``--clips`` generated 30-second
tracks at 22.05 kHz (16-bit wav; each side resamples to 16 kHz), or every file of ``--audio-dir``.

- ours: ``sonic.cream.audio.decode(path, sample_rate=16000)`` then ``MusiCNNEmbedder.embed`` on batches
  of ``--batch-size`` clips (every 3-second patch, the true penultimate, mean over patches), the
  model loaded once beforehand; in float32 (the default, equal to the TF graph to 1e-4) and in the
  opt-in ``precision="bfloat16"`` (not equal: its deviation on these clips is printed too);
- original: ``benchmarks/musicnn_reference/tf_clips_per_second.py`` in its own venv (``--tf-python``),
  as the package is used (``extractor()`` per file) and with its graph kept loaded (TF at its best).

Ours is timed before and after the TF side (the faster is reported) so both see the same machine, with
torch's default number of threads and with one thread (on a machine shared with other jobs, torch's
spinning OpenMP threads lose much of their time).
Prints clips/s for each (wall time) and CPU seconds per clip (every thread of the process), and the
ratios ours / original: on a machine shared with other jobs the CPU ratio is the steadier one.

And the arithmetic bound, measured in the same run: the network's GFLOP per 30-second clip (multiply-
adds x 2, counted from its layer shapes), this CPU's float32 and bfloat16 matrix-product rates
(2048 x 2048 products, torch's default threads and one thread), hence the most clips/s a forward
pass at matrix-product speed could reach here, before any decoding.

    python benchmarks/musicnn.py [--clips 8] [--tf-python /tmp/tfvenv/bin/python] [--model MSD_musicnn]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).parent / "musicnn_reference" / "tf_clips_per_second.py"
RATE = 22050


def make_clips(folder: Path, n: int, seconds: float) -> list[Path]:
    """``n`` different synthetic 30-second songs (chords, beats, noise) as 16-bit wav at 22.05 kHz."""
    import soundfile

    paths = []
    t = np.arange(int(seconds * RATE)) / RATE
    for i in range(n):
        rng = np.random.default_rng(i)
        root = rng.uniform(80, 300)
        chord = sum(np.sin(2 * np.pi * root * ratio * t) for ratio in (1.0, 1.26, 1.5, 2.0)) / 4
        beat = np.sin(2 * np.pi * rng.uniform(1, 3) * t) > 0.95
        song = 0.3 * chord * (0.5 + 0.5 * np.sin(2 * np.pi * 0.2 * t)) + 0.2 * beat * rng.standard_normal(t.size)
        path = folder / f"clip{i:02d}.wav"
        soundfile.write(path, np.clip(song, -1, 1).astype(np.float32), RATE, subtype="PCM_16")
        paths.append(path)
    return paths


def ours_seconds(embedder, paths: list[Path], batch_size: int) -> tuple[tuple[float, float], np.ndarray]:
    """((wall s, cpu s), vectors) of decoding and embedding ``paths``, ``batch_size`` clips per call."""
    from sonic.cream.audio import decode

    started, cpu = time.perf_counter(), time.process_time()
    vectors = []
    for start in range(0, len(paths), batch_size):
        waveforms = [decode(path, sample_rate=16000)[0] for path in paths[start : start + batch_size]]
        vectors.append(embedder.embed(waveforms))
    return (time.perf_counter() - started, time.process_time() - cpu), np.concatenate(vectors)


def network_gflop(embedder, clip_seconds: float = 30.0) -> tuple[float, int]:
    """(GFLOP of the forward pass over a clip's patches, patches per clip), from the layer shapes (musicnn)."""
    net, frames, mels = embedder.network, embedder.frames, 96
    multiply_adds = 0
    for branch in net.front:  # valid over mels, same length over frames
        multiply_adds += frames * (mels - branch.kw + 1) * branch.channels * branch.kh * branch.kw
    for kernel in net.mid[::2]:  # (out, in, 7)
        multiply_adds += frames * kernel.numel()
    multiply_adds += net.dense.numel() + net.output.numel()
    patches = embedder.patches(np.zeros(int(clip_seconds * 16000), np.float32)).shape[0]
    return 2 * multiply_adds * patches / 1e9, patches


def gemm_gflop_per_second(dtype, size: int = 2048, repeats: int = 3) -> float:
    """This CPU's matrix-product rate (size x size @ size x size, best of ``repeats``) at torch's thread setting."""
    import torch

    a = torch.randn(size, size).to(dtype)
    a @ a
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="generated 30-second clips (default 8)")
    parser.add_argument("--audio-dir", type=Path, default=None, help="use these files instead of generated clips")
    parser.add_argument("--model", default="MSD_musicnn")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per embed call (ours)")
    parser.add_argument("--tf-python", default="/tmp/tfvenv/bin/python", help="python of the TensorFlow venv")
    args = parser.parse_args()

    import torch

    from sonic.tails.models.musicnn import from_name

    threads = sorted({torch.get_num_threads(), 1}, reverse=True)  # torch's default, and one thread
    precisions = ("float32", "bfloat16")
    with tempfile.TemporaryDirectory(prefix="musicnn-bench-") as scratch:
        if args.audio_dir:
            from sonic.cream.audio import find_audio_files

            paths = find_audio_files(args.audio_dir)
        else:
            paths = make_clips(Path(scratch), args.clips, 30.0)
        started = time.perf_counter()
        embedders = {precision: from_name(args.model, device="cpu", precision=precision) for precision in precisions}
        load_seconds = (time.perf_counter() - started) / len(precisions)
        for embedder in embedders.values():
            ours_seconds(embedder, paths[:1], 1)  # warm-up
        rounds: dict[tuple[str, int], list[tuple[float, float]]] = {(p, n): [] for p in precisions for n in threads}
        vectors: dict[str, np.ndarray] = {}

        def run_ours() -> None:
            for precision, n_threads in rounds:
                torch.set_num_threads(n_threads)
                seconds, vectors[precision] = ours_seconds(embedders[precision], paths, args.batch_size)
                rounds[precision, n_threads].append(seconds)
            torch.set_num_threads(threads[0])

        run_ours()
        command = [args.tf_python, str(REFERENCE), "--model", args.model, *map(str, paths)]
        env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
        env.pop("PYTHONPATH", None)
        completed = subprocess.run(command, capture_output=True, text=True, env=env)
        if completed.returncode != 0:
            sys.exit(f"the TF side failed:\n{completed.stderr[-3000:]}")
        tf = json.loads(completed.stdout.strip().splitlines()[-1])
        run_ours()
    gemm = {}
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        gemm[n_threads] = {dtype: gemm_gflop_per_second(dtype) for dtype in (torch.float32, torch.bfloat16)}
    torch.set_num_threads(threads[0])

    n = len(paths)
    print(f"{n} clips of 30 s, model {args.model}, torch {torch.__version__}, TensorFlow {tf['tensorflow']} "
          f"(its default threads); load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'':62}{'clips/s':>9}{'cpu s/clip':>12}")
    ours = {key: min(values) for key, values in rounds.items()}  # (wall, cpu) of the faster round
    rows = [(f"ours {p}, {k} torch thread(s): decode + embed, {args.batch_size} a call", ours[p, k])
            for p, k in rounds]
    rows += [("original package: extractor() per file", tf["package"]),
             ("original graph kept loaded, a run per file", tf["graph"])]
    for label, (wall, cpu) in rows:
        print(f"{label:62}{n / wall:9.2f}{cpu / n:12.2f}")
    print(f"(ours: rounds before and after the TF side, the faster shown; model load {load_seconds:.1f} s each, "
          "not counted)")
    for p in precisions:
        wall_best, cpu_best = (min(ours[p, k][i] for k in threads) for i in (0, 1))  # over the thread counts
        for label, (wall, cpu) in rows[len(rounds) :]:
            print(f"ours {p} (best) / {label}: {wall / wall_best:.1f}x clips/s, "
                  f"{cpu / cpu_best:.1f}x less CPU per clip")

    difference = np.abs(vectors["bfloat16"] - vectors["float32"]).max()
    a, b = vectors["bfloat16"].astype(np.float64), vectors["float32"].astype(np.float64)
    cosine = ((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min()
    print(f"bfloat16 against float32 on these clips (mean penultimate): max |diff| {difference:.4f}, "
          f"smallest cosine {cosine:.6f} (float32 is the one equal to the TF graph)")

    gflop, patches = network_gflop(embedders["float32"])
    package_rate = n / tf["package"][0]
    print(f"arithmetic: {gflop:.1f} GFLOP per 30-s clip ({patches} patches of {gflop / patches:.2f}), from the layer "
          "shapes; matrix products measured now (2048 x 2048):")
    for k in threads:
        for dtype, name in ((torch.float32, "float32"), (torch.bfloat16, "bfloat16")):
            rate = gemm[k][dtype]
            print(f"  {name:9} {k} thread(s): {rate:6.0f} GFLOP/s -> forward alone at most {rate / gflop:5.2f} clips/s"
                  f" = {rate / gflop / package_rate:4.1f}x the package's clips/s")
    for precision, embedder in embedders.items():
        assert vectors[precision].shape == (n, embedder.dim) and np.isfinite(vectors[precision]).all()


if __name__ == "__main__":
    main()
