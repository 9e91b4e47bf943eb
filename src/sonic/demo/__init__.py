"""The built-in demo: a synthetic Music4All-shaped catalogue and the whole study run on it."""

from __future__ import annotations

import os
from pathlib import Path

from sonic.demo.catalogue import Catalogue, CatalogueConfig, generate_catalogue
from sonic.study import StudyConfig, StudyResult, run_study

__all__ = ["Catalogue", "CatalogueConfig", "generate_catalogue", "run_demo"]


def run_demo(out_dir: str | os.PathLike = "sonic-demo", *, seed: int = 0,
             catalogue: CatalogueConfig | None = None, study: StudyConfig | None = None,
             num_workers: int | None = None, progress: bool = True) -> StudyResult:
    """Build the demo catalogue under ``out_dir/data`` and run the study on it under ``out_dir``."""
    out_dir = Path(out_dir)
    catalogue = catalogue or CatalogueConfig(seed=seed)
    study = study or StudyConfig(num_workers=num_workers)
    built = generate_catalogue(out_dir / "data", catalogue, num_workers=num_workers)
    return run_study(built.events_path, built.audio_dir, out_dir, study, progress=progress)
