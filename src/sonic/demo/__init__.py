"""The built-in demo: a synthetic Music4All-shaped catalogue, the demo study run on it, and its report."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sonic.demo.catalogue import Catalogue, CatalogueConfig, generate_catalogue

__all__ = ["Catalogue", "CatalogueConfig", "DemoResult", "STUDY_FILE", "demo_study", "generate_catalogue", "run_demo"]

#: The demo's study file (paths relative to the demo's output folder); examples/demo.toml is a copy.
STUDY_FILE = Path(__file__).with_name("study.toml")


@dataclass(frozen=True)
class DemoResult:
    """The demo study's outcome (:class:`sonic.study.execute.ExperimentResult`) and its report."""

    experiment: object
    report_path: Path

    @property
    def results(self):
        return self.experiment.results

    @property
    def results_path(self) -> Path:
        return self.experiment.results_path

    @property
    def out_dir(self) -> Path:
        return self.experiment.out_dir


def demo_study(out_dir: str | os.PathLike, **replace: object):
    """The demo study with its paths under ``out_dir``; ``replace`` swaps whole sections (``evaluation=...``)."""
    import dataclasses

    from sonic.study.config import parse_study

    study = parse_study(tomllib.loads(STUDY_FILE.read_text()), base_dir=Path(out_dir).resolve(), source=STUDY_FILE)
    return dataclasses.replace(study, **replace) if replace else study


def run_demo(out_dir: str | os.PathLike = "sonic-demo", *, seed: int = 0,
             catalogue: CatalogueConfig | None = None, study=None, num_workers: int | None = None,
             progress: bool = True, echo: Callable[[str], None] | None = None,
             warn: Callable[[str], None] | None = None) -> DemoResult:
    """Build the demo catalogue under ``out_dir/data``, run the demo study (or ``study``) under
    ``out_dir``, and write its report to ``out_dir/report/index.html``."""
    from sonic.study.execute import run_experiment
    from sonic.study.report import write_report

    out_dir = Path(out_dir)
    catalogue = catalogue or CatalogueConfig(seed=seed)
    generate_catalogue(out_dir / "data", catalogue, num_workers=num_workers)
    experiment = run_experiment(study or demo_study(out_dir), out_dir, num_workers=num_workers, progress=progress,
                                echo=echo, warn=warn)
    report = write_report(out_dir, out_dir / "report", num_workers=num_workers)
    return DemoResult(experiment, report)
