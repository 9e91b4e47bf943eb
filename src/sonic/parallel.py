"""Work over many files in worker processes, with a progress bar; one file's failure never stops the run.

Two levels:

- :func:`run_tasks` calls ``function(task)`` for each task (a list of items) in a pool of worker
  processes, at most a few tasks queued per worker (bounding memory), and yields ``(task, result)``
  as tasks finish. With no workers it runs them here, in order. A worker process that dies (a
  decoder crash, out of memory) ends the run with one :class:`AudioError` naming the items in flight.
- :func:`map_files` calls ``function(item)`` for each item and yields a :class:`FileResult` per
  item, in the order they finish: the value, or the reason (the :class:`SonicError` message) why
  this item failed. It shows a tqdm bar (items/s, ETA, failures).

``function`` must be a module-level function (worker processes receive it by pickling).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NamedTuple

from tqdm import tqdm

from sonic.errors import AudioError, SonicError

#: Tasks per worker (at least), so that the workers finish together.
TASKS_PER_WORKER = 16
#: Tasks queued per worker at any time (bounds what is held in memory).
QUEUED_PER_WORKER = 4


class FileResult(NamedTuple):
    """One item's outcome: ``value`` if it worked, else ``reason`` (one sentence)."""

    item: Any
    value: Any
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.reason is None


def worker_count(num_workers: int | None) -> int:
    """Worker processes for ``num_workers`` (None: one per CPU); 0 means work in this process."""
    if num_workers is not None and not (isinstance(num_workers, int) and num_workers >= 0):
        raise SonicError(f"number of workers must be an integer >= 0, got {num_workers!r}")
    workers = (os.cpu_count() or 1) if num_workers is None else num_workers
    return workers if workers > 1 else 0


def task_size(n_items: int, workers: int, most: int) -> int:
    """Items per task: enough tasks for every worker to get :data:`TASKS_PER_WORKER`, at most ``most``."""
    return max(1, min(most, math.ceil(n_items / (max(workers, 1) * TASKS_PER_WORKER))))


def run_tasks(
    function: Callable[[list], Any],
    tasks: Iterable[list],
    *,
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    describe: Callable[[Any], str] = str,
    activity: str = "working on",
) -> Iterator[tuple[list, Any]]:
    """``(task, function(task))`` for each task: as they finish in ``workers`` processes, or in order here.

    ``initializer(*initargs)`` runs once in each worker process (or once here). ``describe(item)``
    names an item, and ``activity`` what was done to it, in the error raised when a worker process dies.
    """
    tasks = iter(tasks)
    if workers == 0:
        if initializer is not None:
            initializer(*initargs)
        for task in tasks:
            yield task, function(task)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=initializer, initargs=initargs) as pool:
        queued = {pool.submit(function, task): task for task in itertools.islice(tasks, workers * QUEUED_PER_WORKER)}
        while queued:
            finished, _ = wait(queued, return_when=FIRST_COMPLETED)
            for future in finished:
                try:
                    result = future.result()
                except BrokenProcessPool:
                    in_flight = [item for task in queued.values() for item in task]
                    raise _worker_died(in_flight, describe, activity) from None
                task = queued.pop(future)
                yield task, result
                for next_task in itertools.islice(tasks, 1):
                    queued[pool.submit(function, next_task)] = next_task


def map_files(
    function: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    num_workers: int | None = None,
    progress: bool = True,
    description: str = "working",
    unit: str = "file",
    most_per_task: int = 8,
) -> Iterator[FileResult]:
    """A :class:`FileResult` per item of ``items``, in the order they finish (see the module docstring).

    ``num_workers`` processes (None: one per CPU; 0 or 1: this process). A :class:`SonicError` raised
    by ``function`` becomes that item's ``reason``; any other exception is a bug and propagates.
    """
    workers = worker_count(num_workers)
    size = task_size(len(items), workers, most_per_task)
    tasks = (list(items[start : start + size]) for start in range(0, len(items), size))
    with progress_bar(len(items), description, progress, unit=unit) as bar:
        n_failed = 0
        for _, results in run_tasks(_CallEach(function), tasks, workers=workers):
            for result in results:
                n_failed += not result.ok
                yield result
            bar.update(len(results))
            bar.set_postfix(failed=n_failed, refresh=False)


class _CallEach:
    """``function`` over a task's items, each failure kept as that item's reason (picklable)."""

    def __init__(self, function: Callable[[Any], Any]) -> None:
        self.function = function

    def __call__(self, task: list) -> list[FileResult]:
        results = []
        for item in task:
            try:
                results.append(FileResult(item, self.function(item), None))
            except SonicError as error:
                results.append(FileResult(item, None, str(error)))
        return results


class _Bar(tqdm):
    """tqdm without its monitor thread (updates come once per task), so worker processes fork a single thread."""

    monitor_interval = 0


def progress_bar(total: int, description: str, enabled: bool, *, unit: str = "file") -> tqdm:
    """A tqdm bar (items/s and ETA) on stderr; disabled when ``enabled`` is False."""
    return _Bar(total=total, desc=description, unit=unit, disable=not enabled, dynamic_ncols=True)


def _worker_died(items: list, describe: Callable[[Any], str], activity: str, *, shown: int = 5) -> AudioError:
    """The error for a worker process that died, naming the items that were in progress."""
    names = ", ".join(f"'{describe(item)}'" for item in items[:shown])
    if len(items) > shown:
        names += f" and {len(items) - shown} more"
    return AudioError(f"a worker process died (a decoder crash, or out of memory) while {activity} one of {names}")
