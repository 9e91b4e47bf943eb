"""`sonic` commands of rouge: evaluate recommendation files, run a recommender on a split."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sonic.cli.app import app

if TYPE_CHECKING:
    import pandas as pd


@app.command("evaluate")
def evaluate_command(
    recommendations: Path = typer.Option(
        ..., "--recommendations", help="csv/tsv/parquet: user_id, track_id, rank or score."
    ),
    ground_truth: Path = typer.Option(
        ..., "--ground-truth", help="csv/tsv/parquet: user_id, track_id (more columns ignored)."
    ),
    k: list[int] = typer.Option([10], "--k", help="Cut-off; repeat for several (--k 10 --k 50)."),
    output: Path = typer.Option(..., "--output", help="JSON file for the flat means, e.g. metrics.json."),
) -> None:
    """Score recommendation lists against ground truth (HitRate, Precision, Recall, MRR, NDCG)."""
    from sonic.manifest import write_json
    from sonic.rouge.evaluate import evaluate_files

    report = evaluate_files(recommendations, ground_truth, k)
    write_json(output, report.means())
    print(_format_table(report.table()))
    print(f"wrote {output}")


@app.command("run-model")
def run_model_command(
    model_name: str = typer.Option(..., "--model-name", help="Recommender: knn, pop or random."),
    split_dir: Path = typer.Option(..., "--split-dir", help="Split directory with train/val/test.parquet."),
    mode: str = typer.Option("val", "--mode", help="Evaluate on 'val' or 'test'."),
    out: Path = typer.Option(..., "--out", help="Directory for config.json, recommendations and metrics."),
    embedding: str | None = typer.Option(None, "--embedding", help="Embedding table: a .parquet path or a name."),
    embeddings_dir: Path | None = typer.Option(None, "--embeddings-dir", help="Where <name>.parquet tables live."),
    k: list[int] = typer.Option([10, 50], "--k", help="Cut-off; repeat for several."),
    seed: int = typer.Option(0, "--seed", help="Random seed passed to fit."),
) -> None:
    """Fit a recommender on a split's train events and evaluate it on its val or test events."""
    from sonic.rouge.run import run_model

    result = run_model(
        model_name,
        split_dir,
        embedding=embedding,
        embeddings_dir=embeddings_dir,
        mode=mode,
        ks=k,
        out_dir=out,
        seed=seed,
    )
    for warning in result.model_info.get("warnings", []):
        print(f"sonic: warning: {warning}", file=sys.stderr)
    print(_format_table(result.report.table()))
    print(f"wrote {result.out_dir}")


def _format_table(table: pd.DataFrame) -> str:
    """The metrics table as aligned text, four decimals."""
    return table.to_string(index=False, float_format=lambda value: f"{value:.4f}")
