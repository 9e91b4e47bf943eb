"""`sonic demo` and `sonic study`: the whole study, on the built-in demo or on the user's data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sonic.cli.app import app


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo catalogue and every result.")] = Path("sonic-demo"),
    seed: Annotated[int, typer.Option(help="Seed of the generated catalogue and listeners.")] = 0,
    num_workers: Annotated[Optional[int], typer.Option(help="Worker processes (default: all CPUs).")] = None,
) -> None:
    """Build a small synthetic Music4All-shaped catalogue and run the whole study on it."""
    import time

    from sonic.demo import run_demo
    from sonic.study import format_results

    started = time.perf_counter()
    result = run_demo(out, seed=seed, num_workers=num_workers)
    print(format_results(result.results))
    print(f"\nresults: {result.results_path}  ({time.perf_counter() - started:.0f} s)")


@app.command()
def study(
    interactions: Annotated[Path, typer.Option(help="Listening events (tsv, tsv.bz2, csv or parquet).")],
    audio_dir: Annotated[Path, typer.Option(help="Folder of audio files; track id = path without extension.")],
    out: Annotated[Path, typer.Option(help="Folder for the split, embeddings, runs and results.csv.")],
    protocol: Annotated[str, typer.Option(help="Split protocol: sonic, tamm2024 or tamm2025.")] = "sonic",
    start_date: Annotated[Optional[str], typer.Option(help="Window start (default: the protocol's).")] = None,
    test_date: Annotated[Optional[str], typer.Option(help="Train/evaluation boundary.")] = None,
    end_date: Annotated[Optional[str], typer.Option(help="Window end (exclusive).")] = None,
    embedder: Annotated[Optional[list[str]], typer.Option(help="Embedder name; repeat for several.")] = None,
    model: Annotated[Optional[list[str]], typer.Option(help="Recommender name; repeat for several.")] = None,
    k: Annotated[Optional[list[int]], typer.Option(help="List length; repeat for several.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the user split and of random models.")] = 42,
    num_workers: Annotated[Optional[int], typer.Option(help="Worker processes (default: all CPUs).")] = None,
) -> None:
    """Run the whole study on your own listening data and audio folder."""
    from sonic.study import StudyConfig, format_results, run_study

    defaults = StudyConfig()
    config = StudyConfig(
        protocol=protocol, start_date=start_date, test_date=test_date, end_date=end_date,
        embedders=tuple(embedder or defaults.embedders), models=tuple(model or defaults.models),
        ks=tuple(k or defaults.ks), seed=seed, num_workers=num_workers,
    )
    result = run_study(interactions, audio_dir, out, config)
    print(format_results(result.results))
    print(f"\nresults: {result.results_path}")
