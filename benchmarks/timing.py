"""Timing shared by the benchmark scripts (run as ``python benchmarks/<name>.py``: this folder is on sys.path)."""

from __future__ import annotations

import statistics
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np


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


def in_processes(function: Callable[[Any], Any], items: list[Any], workers: int) -> list[Any]:
    """``[function(item) for item in items]`` in ``workers`` processes, or in this process when ``workers`` is 0.

    The pool is started inside the call, as sonic's own functions start theirs, so that a baseline run
    this way pays what ours pays and gets the same number of processes. ``function`` must be picklable
    (a module-level function, or a ``functools.partial`` of one).
    """
    if workers < 1:
        return [function(item) for item in items]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(function, items))


def machine_scaling(workers: int, repeats: int = 3, rounds: int = 6) -> float:
    """How much faster ``workers`` processes do native work than one process, on this machine (median of ``repeats``).

    The work is zlib compression of 1 MB of noisy bytes, ``rounds`` times per process: compiled code
    that shares nothing between processes. A machine with ``workers`` free cores gives about ``workers``;
    a virtual machine whose CPUs share physical cores, or are capped, or busy elsewhere, gives less.
    It is a reference for what a pool of worker processes can gain on this machine at this moment.
    """
    if workers < 2:
        return 1.0
    one, many = [], []
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_compress, [1] * workers))  # workers started
        for _ in range(repeats):
            started = time.perf_counter()
            _compress(rounds * workers)
            one.append(time.perf_counter() - started)
            started = time.perf_counter()
            list(pool.map(_compress, [rounds] * workers))
            many.append(time.perf_counter() - started)
    return statistics.median(one) / statistics.median(many)


def _compress(rounds: int) -> int:
    data = np.random.default_rng(0).integers(0, 16, 1 << 20, dtype=np.uint8).tobytes()
    return sum(len(zlib.compress(data, 6)) for _ in range(rounds))
