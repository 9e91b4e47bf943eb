"""`sonic demo`: the whole study and its report, on a built-in synthetic catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sonic.cli.app import app

#: List lengths the demo prints (results.csv, the store and the report hold every k of the study).
PRINTED_KS = (10, 50)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo catalogue and every result.")] = Path("sonic-demo"),
    seed: Annotated[int, typer.Option(help="Seed of the generated catalogue and listeners.")] = 0,
    num_workers: Annotated[Optional[int], typer.Option(help="Worker processes (default: all CPUs).")] = None,
    dino_checkpoint: Annotated[Optional[str], typer.Option(
        help="A published DINO ViT-S/16 checkpoint (timm folder or the release's .pth): runs dino_vits16 on it "
             "instead of the random-weights control dino_vits16_random.")] = None,
) -> None:
    """Build a small synthetic Music4All-shaped catalogue, run the demo study on it and write its report."""
    import time

    from sonic.cli.study import _exit_on_failures, _warn
    from sonic.demo import run_demo
    from sonic.study import format_results

    started = time.perf_counter()
    result = run_demo(out, seed=seed, num_workers=num_workers, echo=print, warn=_warn, dino_checkpoint=dino_checkpoint)
    print()
    print(format_results(result.results, ks=PRINTED_KS))
    print(f"\nresults: {result.results_path}  ({time.perf_counter() - started:.0f} s; every k in the report)")
    print(f"report: {result.report_path}")
    _exit_on_failures(result.experiment)
