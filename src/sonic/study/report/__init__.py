"""``sonic report``: a study's static HTML report, readable with no network.

:func:`write_report` reads a study's output folder (its ``study.toml``, results store and step
records) and writes ``OUT/index.html`` with every figure beside it as PNG (``figures/``), the data
behind each figure and table as CSV (``data/``) and the spectral picture gallery (``gallery/``).
The folder is built under a temporary name and renamed, so a report is never half written.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from sonic.errors import SonicError

__all__ = ["write_report"]


def write_report(study_dir: str | os.PathLike, out_dir: str | os.PathLike, *, num_workers: int | None = None) -> Path:
    """Write the report of the study run in ``study_dir`` into ``out_dir``; return ``out_dir/index.html``."""
    from sonic.study import store
    from sonic.study.config import read_study
    from sonic.study.report import sections
    from sonic.study.report.page import page

    study_dir, out_dir = Path(study_dir), Path(out_dir)
    study_file = study_dir / "study.toml"
    if not study_file.is_file():
        raise SonicError(f"'{study_dir}' is not a study's output folder (no study.toml); run `sonic experiment` first")
    study = read_study(study_file)
    store_dir = study_dir / store.STORE_DIR
    results = store.query(store_dir)
    data = sections.ReportData(
        study=study, out_dir=study_dir, results=results, board=store.leaderboard(results),
        runs=store.runs(store_dir), failed_steps=_failed_steps(study_dir), store_dir=store_dir,
    )  # fmt: skip
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    for folder in ("figures", "data", "gallery"):
        (tmp / folder).mkdir(parents=True)
    parts = [
        sections.overview(data),
        sections.leaderboards(data, tmp),
        sections.backends(data, tmp),
        sections.dino(data, tmp),
        sections.gain(data, tmp, "lyrics", 3),
        sections.gain(data, tmp, "metadata", 4),
        sections.by_k(data, tmp),
        sections.hot_cold(data, tmp),
        sections.beyond(data, tmp),
        sections.training(data, tmp),
        sections.gallery(data, tmp, num_workers=num_workers),
    ]
    subtitle = f"{len(data.runs)} runs; seeds {', '.join(map(str, data.seeds))}; study file {study.source}"
    (tmp / "index.html").write_text(page(study.title, subtitle, parts), encoding="utf-8")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir / "index.html"


def _failed_steps(study_dir: Path) -> list[dict]:
    failed = []
    for path in sorted((study_dir / "steps").glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("status") == "failed":
            failed.append({"step": record.get("key", path.stem), "error": record.get("error", "")})
    return failed
