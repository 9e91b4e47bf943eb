"""A whole study: split the listening data, embed the audio, run every recommender, evaluate.

This is the composition of the three parts that ``sonic study`` and ``sonic demo`` run.
Every step writes its own artifact with a manifest under ``out_dir``::

    split/        train / val / test Parquet files, stats.csv, split.json
    embeddings/   <embedder>.parquet + manifest + failures
    runs/<model>-<embedding>-<split>/   config, recommendations, metrics
    results.csv   model, embedding, split, metric, k, mean, ci_low, ci_high
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sonic.errors import SonicError

RESULT_COLUMNS = ("model", "embedding", "split", "metric", "k", "mean", "ci_low", "ci_high")
NO_EMBEDDING = "-"
CONTENT_FREE_MODELS = frozenset({"random", "pop"})


@dataclass(frozen=True)
class StudyConfig:
    """What a study runs. Dates left ``None`` take the protocol's published defaults."""

    protocol: str = "sonic"
    start_date: str | None = None
    test_date: str | None = None
    end_date: str | None = None
    embedders: tuple[str, ...] = ("mfcc_104",)
    models: tuple[str, ...] = ("random", "pop", "knn")
    splits: tuple[str, ...] = ("val", "test")
    ks: tuple[int, ...] = (10, 50)
    seed: int = 42
    num_workers: int | None = None


@dataclass(frozen=True)
class StudyResult:
    """The results table (columns :data:`RESULT_COLUMNS`) and where it was written."""

    results: pd.DataFrame
    results_path: Path
    out_dir: Path


def run_study(events_path: str | os.PathLike, audio_dir: str | os.PathLike, out_dir: str | os.PathLike,
              config: StudyConfig = StudyConfig(), *, progress: bool = True) -> StudyResult:
    """Run ``config`` on a listening-events file and an audio folder; write everything under ``out_dir``."""
    from sonic.cream.data import SplitConfig, load_events, split_events, write_split
    from sonic.rouge.base import RECOMMENDERS
    from sonic.rouge.run import run_model
    from sonic.tails.base import EMBEDDERS
    from sonic.tails.pipeline import embed_folder

    for name in config.models:
        if name not in RECOMMENDERS:
            RECOMMENDERS.create(name)  # raises the "unknown recommender ...; known: ..." error
    for name in config.embedders:
        if name not in EMBEDDERS:
            EMBEDDERS.create(name)
    out_dir = Path(out_dir)
    split_config = SplitConfig.for_protocol(config.protocol, start_date=config.start_date,
                                            test_date=config.test_date, end_date=config.end_date, seed=config.seed)
    split_dir = out_dir / "split"
    write_split(split_events(load_events(events_path), split_config), split_dir, input_path=events_path)

    embeddings_dir = out_dir / "embeddings"
    for name in config.embedders:
        embed_folder(audio_dir, name, embeddings_dir, num_workers=config.num_workers, progress=progress)

    tables = []
    for model in config.models:
        embeddings = (NO_EMBEDDING,) if model in CONTENT_FREE_MODELS else config.embedders
        for embedding in embeddings:
            for split in config.splits:
                run = run_model(model, split_dir, embedding=None if embedding == NO_EMBEDDING else embedding,
                                embeddings_dir=embeddings_dir, mode=split, ks=config.ks,
                                out_dir=out_dir / "runs" / f"{model}-{embedding}-{split}", seed=config.seed)
                table = run.report.table().assign(model=model, embedding=embedding, split=split)
                tables.append(table)
    if not tables:
        raise SonicError("the study has no model to run; name at least one with --model")
    results = pd.concat(tables, ignore_index=True).loc[:, list(RESULT_COLUMNS)]
    results_path = out_dir / "results.csv"
    results.to_csv(results_path, index=False)
    return StudyResult(results=results, results_path=results_path, out_dir=out_dir)


def format_results(results: pd.DataFrame) -> str:
    """One text table per (split, k): a row per model and embedding, ``mean ±half-width`` per metric."""
    blocks = []
    metrics = list(dict.fromkeys(results["metric"]))
    for (split, k), group in results.groupby(["split", "k"], sort=False):
        header = f"{split} @{k}".ljust(22) + "".join(m.rjust(15) for m in metrics)
        lines = [header, "-" * len(header)]
        for (model, embedding), rows in group.groupby(["model", "embedding"], sort=False):
            cells = rows.set_index("metric")
            text = "".join(
                f"{cells.at[m, 'mean']:.4f} ±{(cells.at[m, 'ci_high'] - cells.at[m, 'ci_low']) / 2:.4f}".rjust(15)
                for m in metrics
            )
            lines.append(f"{model} / {embedding}".ljust(22) + text)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
