"""Benchmark: the demo study as `sonic demo` runs it, against the demo study before PyTorch parts were added.

Builds the demo catalogue once (``--out``/data; kept between runs), then, in the same run:

- ours: the demo's study file (:func:`sonic.demo.demo_study`): mfcc_104, musicnn, dino_vits16_random,
  lyrics, metadata and two fusions; random, pop, knn and snn; two seeds;
- baseline: the same file without its PyTorch parts (``demo_study(with_torch=False)``: mfcc_104,
  lyrics, metadata, the fusions; random, pop, knn), which is what the demo ran before.

Each study runs from an empty folder (nothing skipped). Prints each step's wall seconds, each
study's wall and CPU seconds (this process and its worker processes) and the ratios ours / baseline:
on a machine shared with other jobs the CPU ratio is the steadier one.

    python benchmarks/demo.py [--out /tmp/sonic-demo-bench] [--only ours|baseline]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import time
from pathlib import Path


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(name: str, study, out: Path) -> tuple[float, float]:
    from sonic.study import run_experiment

    if out.exists():
        shutil.rmtree(out)
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = run_experiment(study, out, progress=False)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    steps: dict[str, float] = {}
    for outcome in result.outcomes:
        kind, _, step = outcome.key.partition("/")
        group = step if kind == "embed" else f"{kind} {step.split('-')[0]}" if kind == "run" else kind
        steps[group] = steps.get(group, 0.0) + outcome.seconds
    print(f"{name}: {len(result.outcomes)} steps, {len(result.failures)} failed; wall {wall:.1f} s, CPU {cpu:.1f} s")
    for group, seconds in sorted(steps.items(), key=lambda item: -item[1]):
        print(f"    {group:28} {seconds:7.1f} s")
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/sonic-demo-bench"))
    parser.add_argument("--only", choices=("ours", "baseline"))
    args = parser.parse_args()
    from sonic.demo import CatalogueConfig, demo_study, generate_catalogue

    generate_catalogue(args.out / "data", CatalogueConfig(seed=0))
    studies = {"baseline": demo_study(args.out, with_torch=False), "ours": demo_study(args.out, with_torch=True)}
    times = {name: run(name, study, args.out / name) for name, study in studies.items()
             if args.only in (None, name)}
    if len(times) == 2:
        (wall_b, cpu_b), (wall_o, cpu_o) = times["baseline"], times["ours"]
        print(f"ours / baseline: wall {wall_o / wall_b:.2f}x, CPU {cpu_o / cpu_b:.2f}x")


if __name__ == "__main__":
    main()
