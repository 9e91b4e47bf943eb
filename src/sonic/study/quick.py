"""``sonic study``: a study file written from a few options, then run like any other.

:func:`run_study` turns a :class:`StudyConfig` into a :class:`~sonic.study.config.Study` on one
events file and one audio folder and runs it with :func:`sonic.study.execute.run_experiment`, which
writes it to ``OUT/study.resolved.toml``; ``sonic experiment OUT`` runs it again, and a copy of the
file, edited, is a study file of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sonic.study.config import (
    DataSection,
    EmbeddingsSection,
    EvaluationSection,
    RecommenderSpec,
    ReportSection,
    SplitSection,
    Study,
)
from sonic.study.execute import ExperimentResult, run_experiment
from sonic.study.store import format_leaderboard, leaderboard


@dataclass(frozen=True)
class StudyConfig:
    """What ``sonic study`` runs. Dates left ``None`` take the protocol's published defaults."""

    protocol: str = "sonic"
    start_date: str | None = None
    test_date: str | None = None
    end_date: str | None = None
    embedders: tuple[str, ...] = ("mfcc_104",)
    models: tuple[str, ...] = ("random", "pop", "knn")
    splits: tuple[str, ...] = ("val", "test")
    ks: tuple[int, ...] = (10, 50)
    seeds: tuple[int, ...] = (42,)
    num_workers: int | None = None

    def to_study(self, events_path: str | os.PathLike, audio_dir: str | os.PathLike) -> Study:
        """The study file this configuration stands for, on these data (absolute paths)."""
        return Study(
            title="sonic study",
            data=DataSection(events=Path(events_path).resolve(), audio=Path(audio_dir).resolve()),
            split=SplitSection(self.protocol, self.start_date, self.test_date, self.end_date),
            embeddings=EmbeddingsSection(names=self.embedders),
            recommenders=tuple(RecommenderSpec(name, name) for name in self.models),
            evaluation=EvaluationSection(modes=self.splits, ks=self.ks, seeds=self.seeds),
            report=ReportSection(k=ReportSection.k if ReportSection.k in self.ks else min(self.ks)),
        )


def run_study(events_path: str | os.PathLike, audio_dir: str | os.PathLike, out_dir: str | os.PathLike,
              config: StudyConfig = StudyConfig(), *, progress: bool = True,
              echo: Callable[[str], None] | None = None,
              warn: Callable[[str], None] | None = None) -> ExperimentResult:
    """Run ``config`` on a listening-events file and an audio folder; write everything under ``out_dir``."""
    return run_experiment(config.to_study(events_path, audio_dir), out_dir, num_workers=config.num_workers,
                          progress=progress, echo=echo, warn=warn)


def format_results(results: pd.DataFrame, *, ks: tuple[int, ...] | None = None) -> str:
    """The leaderboard of a results table (:data:`sonic.study.store.RESULT_COLUMNS`) as text."""
    return format_leaderboard(leaderboard(results), ks=ks)
