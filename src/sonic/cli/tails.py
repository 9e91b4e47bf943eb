"""`sonic` commands of tails."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sonic.cli.app import app


@app.command()
def embed(
    audio_dir: Annotated[Path, typer.Option("--audio-dir", help="Folder searched recursively for audio files.")],
    model_type: Annotated[str, typer.Option("--model-type", help="Embedder name, e.g. mfcc_104.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for <name>.parquet, its manifest and failures csv.")],
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Waveforms per embedding call.")] = 16,
    num_workers: Annotated[
        int | None,
        typer.Option("--num-workers", min=0, help="Decoding processes (default: one per CPU; 0 or 1: none)."),
    ] = None,
    offset_seconds: Annotated[
        float, typer.Option("--offset-seconds", min=0.0, help="Start of the window in each file.")
    ] = 0.0,
    duration_seconds: Annotated[
        float | None, typer.Option("--duration-seconds", help="Length of the window (default: to the end of the file).")
    ] = None,
    exclude_file: Annotated[
        Path | None,
        typer.Option("--exclude-file", help="csv or Parquet file whose track_id column lists tracks to skip."),
    ] = None,
) -> None:
    """Embed every audio file under a folder into one embedding table."""
    from sonic.tails.pipeline import embed_folder

    result = embed_folder(
        audio_dir,
        model_type,
        out,
        batch_size=batch_size,
        num_workers=num_workers,
        offset_seconds=offset_seconds,
        duration_seconds=duration_seconds,
        exclude=exclude_file,
    )
    typer.echo(f"embedded {result.n_embedded} tracks into {result.table_path}")
    if result.n_failed:
        typer.echo(f"failed {result.n_failed} files; reasons in {result.failures_path}")
    typer.echo(f"{result.tracks_per_second:.1f} tracks/s ({result.elapsed_seconds:.1f} s)")


@app.command()
def fetch(
    name: Annotated[str, typer.Argument(help="What to fetch: musicnn (its four checkpoints, from musicnn==0.1.0).")],
    wheel: Annotated[
        Path | None, typer.Option("--wheel", help="A local copy of the wheel, instead of pip download from PyPI.")
    ] = None,
) -> None:
    """Fetch published model weights into the local cache (checked against a pinned sha256)."""
    from sonic.tails.models.musicnn_weights import fetch_weights

    typer.echo(f"{name} weights in {fetch_weights(name, wheel=wheel)}")
