"""`sonic` commands that use a finished study: a run's recommendations, and tracks that sound alike."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sonic.cli.app import app


@app.command("recommend")
def recommend_command(
    run_dir: Annotated[Path, typer.Argument(help="Run folder (sonic run-model --out, or a study's runs/NAME).")],
    out: Annotated[Path, typer.Option("--out", help="File for the lists: .parquet or .csv (user_id, track_id, "
                                                    "rank, score); a manifest is written beside it.")],
    user: Annotated[list[str] | None, typer.Option("--user", help="A train user of the run; repeatable.")] = None,
    users: Annotated[Path | None, typer.Option("--users", help="csv/tsv/Parquet file with a user_id column.")] = None,
    history: Annotated[
        Path | None,
        typer.Option("--history", help="Listening history of new listeners (user_id, track_id[, timestamp]): "
                                       "lists from these events alone."),
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Tracks per list.")] = 10,
    val_history: Annotated[
        str, typer.Option("--val-history", help="Whether the split's validation events join a user's history: "
                                                "auto (as the run did), always, never.")
    ] = "auto",
    split: Annotated[
        Path | None, typer.Option("--split", help="The run's split folder, if it moved since the run.")
    ] = None,
) -> None:
    """Recommend with a saved run's fitted model (no retraining), for its users or for new listeners."""
    from sonic.rouge.serve import recommend_to_file

    served = recommend_to_file(run_dir, out, users=user or [], users_file=users, history_file=history, k=k,
                               val_history=val_history, split_dir=split)  # fmt: skip
    for line in served.warnings:
        typer.echo(f"sonic: warning: {line}", err=True)
    users = f"{served.n_users} user{'' if served.n_users == 1 else 's'}"
    typer.echo(f"wrote {served.n_rows} recommendations for {users} to {served.path}")


@app.command("similar")
def similar_command(
    embedding: Annotated[Path, typer.Option("--embedding", help="Embedding table (.parquet, from sonic embed).")],
    track: Annotated[list[str] | None, typer.Option("--track", help="A track_id of the table; repeatable.")] = None,
    audio: Annotated[
        list[Path] | None,
        typer.Option("--audio", help="An audio file, embedded as the table was (need not be in it); repeatable."),
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Nearest tracks per query.")] = 10,
    index: Annotated[
        str, typer.Option("--index", help="auto (exact up to 50,000 rows, else ivf), exact, ivf or hnsw; an index "
                                          "is saved beside the table and rebuilt when the table changes.")
    ] = "auto",
    option: Annotated[
        list[str] | None, typer.Option("--option", help="Embedder option KEY=VALUE for --audio (e.g. device=cpu).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="File for the lists (.parquet or .csv); default: print them.")
    ] = None,
) -> None:
    """Tracks that sound like the given tracks or audio files: nearest neighbours by cosine in a table."""
    from sonic.cli.tails import embedder_options
    from sonic.tails.similar import similar_to_file

    frame, path = similar_to_file(embedding, track or [], audio=audio or [], k=k, index=index,
                                  options=embedder_options(option or []), out=out)  # fmt: skip
    if path is not None:
        typer.echo(f"wrote {len(frame)} neighbours of {frame['query'].nunique()} queries to {path}")
    else:
        typer.echo(frame.to_string(index=False))
