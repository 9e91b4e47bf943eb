"""``sonic report``: a study's static HTML report, readable with no network.

:func:`write_report` reads a study's output folder (its ``study.resolved.toml``, results store and step
records) and writes ``OUT/index.html`` with every figure beside it as PNG (``figures/``), the data
behind each figure and table as CSV (``data/``), the spectral picture gallery (``gallery/``) and the
listening section's excerpts (``excerpts/``).

The package's parts: :mod:`~sonic.study.report.data` reads the study (gaps become sentences),
:mod:`~sonic.study.report.statistics` computes each number, interval and test (pure functions over
frames), :mod:`~sonic.study.report.sections`, :mod:`~sonic.study.report.questions` and
:mod:`~sonic.study.report.cold` (hot and cold tracks, the shuffle controls, users by history) assemble what
each section shows, :mod:`~sonic.study.report.figures` draws, and :mod:`~sonic.study.report.page`
renders the Jinja2 templates under ``templates/`` with autoescaping.

``OUT`` must be new, empty, or a report sonic wrote (:func:`sonic.files.output_folder`, kind
``report``): a folder holding anything else is refused in one sentence and left as it was. The new
report is built in a temporary folder that then takes ``OUT``'s place whole, so a report is never
half written and nothing of the old one lingers.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPORT_KIND", "write_report"]

#: The kind of sonic output a report folder is marked with.
REPORT_KIND = "report"
#: What an older sonic's report folder held (adopted as sonic's own when its page says it is one).
_REPORT_ENTRIES = frozenset({"index.html", "figures", "data", "gallery"})


def write_report(study_dir: str | os.PathLike, out_dir: str | os.PathLike, *, num_workers: int | None = None) -> Path:
    """Write the report of the study run in ``study_dir`` into ``out_dir``; return ``out_dir/index.html``.

    ``num_workers``: worker processes for the picture gallery. Raises :class:`~sonic.errors.SonicError`
    (one sentence) for a folder that is not a study, or an ``out_dir`` holding files sonic did not write.
    """
    from sonic import files
    from sonic.study.report.data import load

    data = load(study_dir)
    out_dir = Path(out_dir)
    with files.output_folder(out_dir, REPORT_KIND, adopt=_older_report) as folder:
        marker = folder.marker()
        with files.atomic_folder(folder.path) as staging:
            _build(data, staging, num_workers=num_workers)
            files.write_json(staging / files.MARKER_NAME, marker)
    return out_dir / "index.html"


def _build(data, report_dir: Path, *, num_workers: int | None) -> None:
    from sonic import files
    from sonic.study.report import cold, listening, questions, sections
    from sonic.study.report.figures import DATA_DIR, FIGURES_DIR
    from sonic.study.report.page import render
    from sonic.study.report.chosen import chosen_settings

    for folder in (FIGURES_DIR, DATA_DIR, "gallery"):
        (report_dir / folder).mkdir(parents=True, exist_ok=True)
    parts = [
        sections.overview(data),
        sections.leaderboards(data, report_dir),
        chosen_settings(data, report_dir),
        questions.backends(data, report_dir),
        questions.dino(data, report_dir),
        questions.gain(data, report_dir, "lyrics", 3),
        questions.gain(data, report_dir, "metadata", 4),
        questions.by_k(data, report_dir),
        cold.cold_start(data, report_dir),
        cold.content_effect(data, report_dir),
        cold.by_history(data, report_dir),
        sections.beyond(data, report_dir),
        sections.training(data, report_dir),
        listening.listening(data, report_dir, num_workers=num_workers),
        sections.gallery(data, report_dir, num_workers=num_workers),
    ]
    study = data.study
    subtitle = f"{len(data.runs)} runs; seeds {', '.join(map(str, data.seeds))}; study file {study.source}"
    files.write_text(report_dir / "index.html", render(study.title, subtitle, parts))


def _older_report(entry: Path) -> bool:
    """Whether ``entry`` belongs to a report an older sonic wrote (before report folders were marked)."""
    if entry.name not in _REPORT_ENTRIES:
        return False
    try:
        with open(entry.parent / "index.html", encoding="utf-8", errors="replace") as page:
            head = page.read(4096)
    except OSError:
        return False
    return "window.sonicErrors" in head or 'content="sonic report"' in head
