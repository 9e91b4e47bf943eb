"""Benchmark: what does ``--engine ray`` cost on one machine, against the local runner, same run?

Generates ``--tracks`` mp3 clips (44.1 kHz stereo, as Music4All's ``audios/``; the clips of
``embed_cpu.py``), starts a local Ray of ``--workers`` CPUs once (as a cluster that is already up;
its start time is printed apart), warms both engines up on a few clips, then, taking turns
``--repeats`` times, the same folder job end to end (decode, resample, embed, shards, table):

- local (baseline): ``embed_folder(folder, model, out, num_workers=--workers)``;
- ray: ``embed_folder(folder, model, out, engine="ray")`` on that Ray.

It prints clips/s of both and the ratio of wall times (ray / local: Ray's overhead on one machine,
1.0 = none) and checks that both tables hold equal vectors per track. A GPU machine:
``--model-type`` a neural embedder and ``--gpus-per-actor 1`` puts the model on the GPU for Ray
(the local runner picks the GPU itself).

    python benchmarks/embed_ray.py [--model-type mfcc_104] [--tracks 200] [--seconds 10] [--workers 2]
        [--batch-size 16] [--repeats 2] [--gpus-per-actor 0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from embed_cpu import make_clips
from timing import timed

from sonic.tails.ray_engine import RayOptions
from sonic.tails.runner import embed_folder
from sonic.tails.table import read_embeddings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-type", default="mfcc_104")
    parser.add_argument("--tracks", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--gpus-per-actor", type=float, default=0.0)
    args = parser.parse_args()
    import ray

    with tempfile.TemporaryDirectory() as temporary:
        folder, warm = Path(temporary) / "clips", Path(temporary) / "warm"
        folder.mkdir()
        warm.mkdir()
        paths = make_clips(folder, args.tracks, args.seconds)
        for path in paths[: 2 * args.workers]:
            shutil.copy(path, warm / path.name)
        started = time.perf_counter()
        source = str(Path(__file__).resolve().parents[1] / "src")
        ray.init(num_cpus=args.workers, include_dashboard=False, logging_level="ERROR",
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}})
        ray_start = time.perf_counter() - started
        options = RayOptions(gpus_per_actor=args.gpus_per_actor)

        def run(engine: str, where: Path, out: Path) -> dict:
            shutil.rmtree(out, ignore_errors=True)
            result = embed_folder(where, args.model_type, out, num_workers=args.workers, batch_size=args.batch_size,
                                  progress=False, engine=engine, ray=options)
            table = read_embeddings(result.table_path)
            return dict(zip(table.track_ids.tolist(), table.vectors))

        for engine in ("local", "ray"):  # warm up: imports, pools, Ray's workers
            run(engine, warm, Path(temporary) / f"warm-{engine}")
        sides = {engine: (lambda engine=engine: run(engine, folder, Path(temporary) / engine))
                 for engine in ("local", "ray")}  # fmt: skip
        seconds, results = timed(sides, args.repeats)
        ray.shutdown()

    local, on_ray = results["local"], results["ray"]
    equal = sorted(local) == sorted(on_ray) and all(np.array_equal(local[key], on_ray[key]) for key in local)
    print(f"model {args.model_type}: {args.tracks} mp3 clips of {args.seconds:g} s, batch {args.batch_size}, "
          f"{args.workers} CPUs, median of {args.repeats}; Ray started in {ray_start:.1f} s (not counted)")
    print(f"local runner (baseline): {args.tracks / seconds['local']:8.2f} clips/s ({seconds['local']:.2f} s)")
    print(f"--engine ray:            {args.tracks / seconds['ray']:8.2f} clips/s ({seconds['ray']:.2f} s)")
    print(f"ratio of wall times ray / local: {seconds['ray'] / seconds['local']:.2f}  "
          f"(tables {'equal' if equal else 'DIFFER'} per track id)")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
