"""Benchmark: MusiCNN clips per second, ours (PyTorch) against the original musicnn 0.1.0 package (TensorFlow).

Both sides embed the same audio files in one run on this machine: ``--clips`` generated 30-second
tracks at 22.05 kHz (16-bit wav; each side resamples to 16 kHz), or every file of ``--audio-dir``.

- ours: ``sonic.cream.audio.decode(path, sample_rate=16000)`` then ``MusiCNNEmbedder.embed`` on batches
  of ``--batch-size`` clips (every 3-second patch, the true penultimate, mean over patches), the
  model loaded once beforehand;
- original: ``benchmarks/musicnn_reference/tf_clips_per_second.py`` in its own venv (``--tf-python``),
  as the package is used (``extractor()`` per file) and with its graph kept loaded (TF at its best).

Ours is timed before and after the TF side (the faster is reported) so both see the same machine, with
torch's default number of threads and with one thread (on a machine shared with other jobs, torch's
spinning OpenMP threads lose much of their time).
Prints clips/s for each (wall time) and CPU seconds per clip (every thread of the process), and the
ratios ours / original: on a machine shared with other jobs the CPU ratio is the steadier one.

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
    with tempfile.TemporaryDirectory(prefix="musicnn-bench-") as scratch:
        if args.audio_dir:
            from sonic.cream.audio import find_audio_files

            paths = find_audio_files(args.audio_dir)
        else:
            paths = make_clips(Path(scratch), args.clips, 30.0)
        started = time.perf_counter()
        embedder = from_name(args.model, device="cpu")
        load_seconds = time.perf_counter() - started
        ours_seconds(embedder, paths[:1], 1)  # warm-up
        rounds: dict[int, list[tuple[float, float]]] = {n: [] for n in threads}

        def run_ours() -> np.ndarray:
            for n_threads in threads:
                torch.set_num_threads(n_threads)
                seconds, vectors = ours_seconds(embedder, paths, args.batch_size)
                rounds[n_threads].append(seconds)
            torch.set_num_threads(threads[0])
            return vectors

        run_ours()
        command = [args.tf_python, str(REFERENCE), "--model", args.model, *map(str, paths)]
        env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
        env.pop("PYTHONPATH", None)
        completed = subprocess.run(command, capture_output=True, text=True, env=env)
        if completed.returncode != 0:
            sys.exit(f"the TF side failed:\n{completed.stderr[-3000:]}")
        tf = json.loads(completed.stdout.strip().splitlines()[-1])
        vectors = run_ours()

    n = len(paths)
    print(f"{n} clips of 30 s, model {args.model}, torch {torch.__version__}, TensorFlow {tf['tensorflow']} "
          f"(its default threads); other jobs were running on this machine")
    print(f"{'':52}{'clips/s':>9}{'cpu s/clip':>12}")
    ours = {n_threads: min(values) for n_threads, values in rounds.items()}  # (wall, cpu) of the faster round
    rows = [(f"ours, {k} torch thread(s): decode + embed, {args.batch_size} a call", ours[k]) for k in threads]
    rows += [("original package: extractor() per file", tf["package"]),
             ("original graph kept loaded, a run per file", tf["graph"])]
    for label, (wall, cpu) in rows:
        print(f"{label:52}{n / wall:9.2f}{cpu / n:12.2f}")
    print(f"(ours: rounds before and after the TF side, the faster shown; model load {load_seconds:.1f} s, not counted)")
    best = min(ours.values())
    for label, (wall, cpu) in rows[len(threads):]:
        print(f"ours (best) / {label}: {wall / best[0]:.1f}x clips/s, {cpu / best[1]:.1f}x less CPU per clip")
    assert vectors.shape == (n, embedder.dim) and np.isfinite(vectors).all()


if __name__ == "__main__":
    main()
