"""`sonic` commands of cream: listening data and time splits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sonic.cli.app import app


@app.command("data-split")
def data_split(
    interactions: Annotated[Path, typer.Option(help="Listening events: .tsv/.csv (maybe .bz2, .gz) or .parquet/.pqt.")],
    protocol: Annotated[str, typer.Option(help="Split protocol: sonic, tamm2024 or tamm2025.")],
    out: Annotated[Path, typer.Option(help="Folder for train/val/test[/cold_test].parquet, stats.csv, split.json.")],
    start_date: Annotated[Optional[str], typer.Option(help="Window start, inclusive (default: protocol's).")] = None,
    test_date: Annotated[Optional[str], typer.Option(help="Train before it, evaluation on/after it.")] = None,
    end_date: Annotated[Optional[str], typer.Option(help="Window end, exclusive (default: the protocol's).")] = None,
    exclude_file: Annotated[
        Optional[Path], typer.Option(help="csv/tsv/parquet with a track_id column: tracks dropped everywhere.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the val/test user draw.")] = 42,
) -> None:
    """Split listening events in time by a published protocol and write the parts."""
    import time

    from sonic.cream.split_files import split_file, split_statistics
    from sonic.cream.splits import SplitConfig

    started = time.perf_counter()
    dates = {"start_date": start_date, "test_date": test_date, "end_date": end_date}
    config = SplitConfig.for_protocol(protocol, seed=seed, **dates)
    split = split_file(interactions, config, out, exclude_file=exclude_file)
    typer.echo(config.describe() + f", seed {config.seed}")
    typer.echo(split_statistics(split).to_string())
    files = ", ".join(f"{name}.parquet" for name in split.parts)
    typer.echo(f"wrote {files}, stats.csv and split.json to {out} in {time.perf_counter() - started:.1f} s")
