"""ROUGE: recommenders and evaluation.

The recommender protocol and registry (:mod:`sonic.rouge.base`), the recommenders,
metrics as pure functions (:mod:`sonic.rouge.metrics`), scoring of recommendation lists
(:mod:`sonic.rouge.evaluate`) and whole runs (:mod:`sonic.rouge.run`). Names load on first use.
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
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, globals(), _EXPORTS)
