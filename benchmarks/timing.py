"""Timing shared by the benchmark scripts (run as ``python benchmarks/<name>.py``, which puts this folder on the path)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def timed(functions: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Median seconds and last result of each function, called in turn ``repeats`` times.

    Taking turns lets every side see the same state of a shared machine.
    """
    seconds: dict[str, list[float]] = {name: [] for name in functions}
    results: dict[str, Any] = {}
    for _ in range(repeats):
        for name, function in functions.items():
            started = time.perf_counter()
            results[name] = function()
            seconds[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in seconds.items()}, results
