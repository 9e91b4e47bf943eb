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
    from sonic.rouge.evaluate import evaluate_files, write_means

    report = evaluate_files(recommendations, ground_truth, k)
    write_means(report, output)
    print(_format_table(report.table()))
    print(f"wrote {output}")


@app.command("run-model")
def run_model_command(
    model_name: str = typer.Option(..., "--model-name", help="Recommender: any registered name (knn, pop, ...)."),
    split_dir: Path | None = typer.Option(
        None, "--split-dir", help="Split folder (train.parquet and the evaluated files; default: split/)."
    ),
    mode: list[str] = typer.Option(
        ["val"], "--mode", help="Split file to evaluate: val, test, cold_test...; repeat for several slices."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Run folder; with several embeddings or seeds, OUT/<embedding>/seed-<seed>/ "
        "(default: runs/<model>-<embeddings>-<modes>-k<ks>-seed<seeds>, plus a hash of any other option)."
    ),
    embedding: list[str] = typer.Option(
        [], "--embedding", help="Embedding table: a .parquet path, a name, or a fusion a+b; repeat for several."
    ),
    embeddings_dir: Path | None = typer.Option(
        None, "--embeddings-dir", help="Where <name>.parquet tables live (default: embeddings/)."
    ),
    k: list[int] = typer.Option([10, 50], "--k", help="Cut-off; repeat for several."),
    seed: list[int] = typer.Option([0], "--seed", help="Random seed; repeat: a run per seed + the mean over seeds."),
    shuffle: bool = typer.Option(False, "--shuffle", help="Control: permute the embeddings across tracks (seeded)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda... (models that train)."),
    option: list[str] = typer.Option([], "--option", help="Model option key=value (e.g. catalogue=all); repeatable."),
    diversity_embedding: str | None = typer.Option(
        None, "--diversity-embedding", help="Embedding space for intra-list diversity (default: the run's)."
    ),
    beyond: bool = typer.Option(
        True, "--beyond/--no-beyond", help="Also score coverage, novelty, ARP, long-tail share and ILD."
    ),
    cold_candidates: str = typer.Option(
        "cold", "--cold-candidates", help="What cold_test ranks: cold (its own new tracks) or all (every track "
        "of the split)."
    ),
) -> None:
    """Fit a recommender on a split's train events and evaluate it on the chosen split files."""
    from sonic.project import EMBEDDINGS_DIR, SPLIT_DIR
    from sonic.rouge.options import split_pairs
    from sonic.rouge.run import run_models
    from sonic.rouge.run_names import default_run_dir

    options = split_pairs(option)
    if out is None:
        out = default_run_dir(model_name, embeddings=embedding, mode=mode, ks=k, seeds=seed, shuffle=shuffle,
                              split_dir=split_dir, embeddings_dir=embeddings_dir, options=options, device=device,
                              diversity_embedding=diversity_embedding, beyond=beyond,
                              cold_candidates=cold_candidates)
    split_dir = SPLIT_DIR if split_dir is None else split_dir
    embeddings_dir = EMBEDDINGS_DIR if embeddings_dir is None else embeddings_dir
    result = run_models(
        model_name,
        split_dir,
        embeddings=embedding or [None],
        seeds=seed,
        out_dir=out,
        embeddings_dir=embeddings_dir,
        mode=mode,
        ks=k,
        options=options,
        shuffle=shuffle,
        device=device,
        diversity_embedding=diversity_embedding,
        beyond=beyond,
        cold_candidates=cold_candidates,
    )
    for run in result.runs:
        for warning in run.warnings:
            print(f"sonic: warning: {warning}", file=sys.stderr)
        print(f"{run.out_dir}")
        print(_format_table(run.metrics))
    for label, aggregate in result.over_seeds.items():
        print(f"{label}: mean over {int(aggregate['n_seeds'].max())} seeds, 95% t-interval over seeds")
        print(_format_table(aggregate))
    used = [run.config.get("embedding") or {} for run in result.runs]
    tables = list(dict.fromkeys(str(e.get("path") or Path(embeddings_dir) / e["name"]) for e in used if e))
    print(f"read {Path(split_dir)}/" + (f" and {', '.join(tables)}" if tables else "") + f"; wrote {out}")


@app.command("compare")
def compare_command(
    runs: list[Path] = typer.Argument(..., help="Run folders written by run-model: RUN_A RUN_B [RUN_C ...]."),
    metric: list[str] = typer.Option([], "--metric", help="Metric to test (default: the accuracy metrics)."),
    k: list[int] = typer.Option([], "--k", help="Cut-off to test (default: every k both runs hold)."),
    slice_name: list[str] = typer.Option([], "--slice", help="Slice (split file) to test (default: all shared)."),
    all_pairs: bool = typer.Option(False, "--all-pairs", help="Test every pair of runs, not the first against each."),
    output: Path | None = typer.Option(None, "--output", help="Also write the table as csv."),
) -> None:
    """Paired t-test and Wilcoxon signed-rank test between runs on the same users, Holm-corrected."""
    from sonic.rouge.compare import compare_runs, write_comparison

    table = compare_runs(runs, metrics=metric, ks=k, slices=slice_name, all_pairs=all_pairs)
    print(_format_table(table))
    print(f"{len(table)} tests; p_holm: Holm's correction across all of them")
    if output is not None:
        write_comparison(table, output)
        print(f"wrote {output}")


def _format_table(table: pd.DataFrame) -> str:
    """A table as aligned text: four decimals, or three significant digits below 0.001 (small p-values)."""
    return table.to_string(index=False, float_format=lambda v: f"{v:.2e}" if 0 < abs(v) < 1e-3 else f"{v:.4f}")
