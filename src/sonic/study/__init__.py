"""The study: one file states the grid; steps run in order and resume; results go to a store and a report.

``read_study`` reads a study file, ``check_study`` checks every name against the registries,
``run_experiment`` runs it (``sonic experiment``), the store (``sonic results``) holds every run
in Parquet queried with DuckDB, and ``write_report`` draws the HTML report (``sonic report``).
"""

from __future__ import annotations

from sonic._lazy import lazy_getattr

_EXPORTS = {
    "Study": "sonic.study.config",
    "read_study": "sonic.study.config",
    "parse_study": "sonic.study.config",
    "check_study": "sonic.study.check",
    "ExperimentResult": "sonic.study.execute",
    "run_experiment": "sonic.study.execute",
    "RESULT_COLUMNS": "sonic.study.store",
    "leaderboard": "sonic.study.store",
    "format_leaderboard": "sonic.study.store",
    "StudyConfig": "sonic.study.quick",
    "run_study": "sonic.study.quick",
    "format_results": "sonic.study.quick",
    "write_report": "sonic.study.report",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, globals(), _EXPORTS)
