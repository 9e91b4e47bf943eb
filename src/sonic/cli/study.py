"""`sonic experiment`, `sonic study`, `sonic results`, `sonic report`: a study file run, stored and reported."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from sonic.cli.app import app


def _warn(line: str) -> None:
    print(f"sonic: warning: {line}", file=sys.stderr)


def _finish(result) -> None:
    """Print the leaderboard and the failures of a finished study; exit 1 when a step failed."""
    from sonic.study import format_results

    if len(result.results):
        print(format_results(result.results))
    print(f"\nresults: {result.results_path}  (store: {result.store_dir})")
    _exit_on_failures(result)


def _exit_on_failures(result) -> None:
    """Name every step that did not finish on stderr and exit 1; nothing when all finished."""
    if result.failures:
        for outcome in result.failures:
            print(f"sonic: {outcome.status}: {outcome.key}: {outcome.message}", file=sys.stderr)
        print(f"sonic: {len(result.failures)} of {len(result.outcomes)} steps did not finish; "
              "fix the cause and run again: finished steps are kept", file=sys.stderr)
        raise typer.Exit(1)


@app.command()
def experiment(
    study_file: Annotated[Path, typer.Argument(help="The study file (TOML): data, split, embeddings, recommenders...; "
                                                    "or a study's output folder, to run its study.resolved.toml again.")],
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: the study file without .toml; "
                                                     "a study's output folder itself).")] = None,
    num_workers: Annotated[Optional[int], typer.Option(help="Worker processes (default: all CPUs).")] = None,
    engine: Annotated[
        Optional[str],
        typer.Option(help="local, or ray: embed and run on a Ray cluster (default: the study file's, else local)."),
    ] = None,
    ray_address: Annotated[
        Optional[str], typer.Option(help="Ray cluster: auto, ray://head:10001 (default: a local Ray for the study).")
    ] = None,
    ray_gpus_per_run: Annotated[
        float, typer.Option(min=0.0, help="GPUs for each run of a neural recommender (snn, bert4rec) on Ray.")
    ] = 0.0,
) -> None:
    """Run a study file: split once, embed once, every run; finished steps are skipped on a rerun."""
    from sonic.study import run_experiment

    if out is None:
        out = study_file if study_file.is_dir() else study_file.with_suffix("")
    result = run_experiment(study_file, out, num_workers=num_workers, echo=print, warn=_warn, engine=engine,
                            ray_address=ray_address, gpus_per_run=ray_gpus_per_run)
    _finish(result)


@app.command()
def study(
    interactions: Annotated[Path, typer.Option(help="Listening events (tsv, tsv.bz2, csv or parquet).")],
    audio_dir: Annotated[Path, typer.Option(help="Folder of audio files; track id = path without extension.")],
    out: Annotated[Path, typer.Option(help="Folder for study.resolved.toml, the split, embeddings, runs and results.")],
    protocol: Annotated[str, typer.Option(help="Split protocol: sonic, tamm2024 or tamm2025.")] = "sonic",
    start_date: Annotated[Optional[str], typer.Option(help="Window start (default: the protocol's).")] = None,
    test_date: Annotated[Optional[str], typer.Option(help="Train/evaluation boundary.")] = None,
    end_date: Annotated[Optional[str], typer.Option(help="Window end (exclusive).")] = None,
    embedder: Annotated[Optional[list[str]], typer.Option(help="Embedder name; repeat for several.")] = None,
    model: Annotated[Optional[list[str]], typer.Option(help="Recommender name; repeat for several.")] = None,
    k: Annotated[Optional[list[int]], typer.Option(help="List length; repeat for several.")] = None,
    seed: Annotated[Optional[list[int]], typer.Option(help="Seed of the user split and of random models; "
                                                      "repeat for several.")] = None,
    num_workers: Annotated[Optional[int], typer.Option(help="Worker processes (default: all CPUs).")] = None,
) -> None:
    """Write a study file (OUT/study.resolved.toml) from these options and run it on your data."""
    from sonic.study import StudyConfig, run_study

    defaults = StudyConfig()
    config = StudyConfig(
        protocol=protocol, start_date=start_date, test_date=test_date, end_date=end_date,
        embedders=tuple(embedder or defaults.embedders), models=tuple(model or defaults.models),
        ks=tuple(k or defaults.ks), seeds=tuple(seed or defaults.seeds), num_workers=num_workers,
    )  # fmt: skip
    _finish(run_study(interactions, audio_dir, out, config, echo=print, warn=_warn))


@app.command()
def results(
    study_dir: Annotated[Path, typer.Argument(help="A study's output folder (with results/).")] = Path("sonic-demo"),
    where: Annotated[Optional[str], typer.Option(help="SQL condition on the store's columns, e.g. "
                                                      "\"metric = 'NDCG' AND k = 10\" (it reads nothing else).")] = None,
    trials: Annotated[bool, typer.Option("--trials", help="List every search trial with its validation "
                                                           "score instead; the chosen setting starred.")] = False,
) -> None:
    """Leaderboards from a study's results store (DuckDB over Parquet), intervals over seeds or users."""
    from sonic.study.store import STORE_DIR, format_leaderboard, leaderboard, query

    if trials:
        _print_trials(study_dir / STORE_DIR, where)
        return
    rows = query(study_dir / STORE_DIR, where)
    if rows.empty:
        print(f"no results match --where {where!r}" if where else
              f"no finished run of the study in '{study_dir}'; run `sonic experiment {study_dir}` to finish it")
        return
    print(format_leaderboard(leaderboard(rows)))


def _print_trials(store_dir: Path, where: str | None) -> None:
    from sonic.errors import SonicError
    from sonic.study.tuning import format_trials, trial_table

    if where is not None:
        raise SonicError("--where filters the leaderboard; --trials lists every trial of every search, take one")
    table = trial_table(store_dir)
    print(format_trials(table) if len(table) else f"no finished search trial in '{store_dir.parent}'; a study's "
          "[[recommenders]] entry with search = {...} runs them")


@app.command()
def report(
    study_dir: Annotated[Path, typer.Argument(help="A study's output folder.")] = Path("sonic-demo"),
    out: Annotated[Optional[Path], typer.Option(help="Report folder: new, empty or a report sonic wrote, which is "
                                                     "replaced (default: STUDY_DIR/report).")] = None,
    num_workers: Annotated[Optional[int], typer.Option(help="Worker processes for the picture gallery.")] = None,
) -> None:
    """Write the study's static HTML report (index.html with PNG figures and CSV data beside it)."""
    from sonic.study.report import write_report

    path = write_report(study_dir, out if out is not None else study_dir / "report", num_workers=num_workers)
    print(f"report: {path}")
