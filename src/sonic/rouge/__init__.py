"""ROUGE: recommenders and evaluation.

The recommender protocol and registry (:mod:`sonic.rouge.base`), the recommenders,
metrics as pure functions (:mod:`sonic.rouge.metrics`, :mod:`sonic.rouge.beyond`), scoring of
recommendation lists (:mod:`sonic.rouge.evaluate`, :mod:`sonic.rouge.scoring`), whole runs
(:mod:`sonic.rouge.run`), paired significance (:mod:`sonic.rouge.significance`,
:mod:`sonic.rouge.compare`), a saved run's recommendations (:mod:`sonic.rouge.serve`). Names load on first use.
"""

from __future__ import annotations

from sonic._lazy import lazy_getattr

_EXPORTS = {
    "Recommender": "sonic.rouge.base",
    "RECOMMENDERS": "sonic.rouge.base",
    "load_recommender": "sonic.rouge.base",
    "shuffled": "sonic.rouge.base",
    "evaluate": "sonic.rouge.evaluate",
    "MetricsReport": "sonic.rouge.evaluate",
    "run_model": "sonic.rouge.run",
    "run_models": "sonic.rouge.run",
    "read_run": "sonic.rouge.run",
    "compare_runs": "sonic.rouge.compare",
    "paired_tests": "sonic.rouge.significance",
    "holm": "sonic.rouge.significance",
    "paired_tests_over_seeds": "sonic.rouge.significance",
    "user_means": "sonic.rouge.significance",
    "bootstrap_intervals": "sonic.rouge.significance",
    "mean_interval": "sonic.rouge.metrics",
    "load_run": "sonic.rouge.serve",
    "ServedRun": "sonic.rouge.serve",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, globals(), _EXPORTS)
