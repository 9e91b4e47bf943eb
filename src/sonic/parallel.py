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

Large numpy arrays in results (waveforms) do not travel back through the pool's pipe, which moves them
a pipe's capacity (64 KiB on Linux) at a time, switching between processes: where workers are forked, each
task in flight has a slot of shared memory (:class:`_ResultSlots`, mapped before the workers start),
the worker copies its arrays into the task's slot, and the caller copies them out and reuses the slot.
Arrays that do not fit travel through the pipe as before.

Worker processes ignore Ctrl-C (SIGINT, which a terminal sends to every process of the foreground group):
the parent alone answers it, stops its workers (:func:`stop_workers`: tasks not started are cancelled,
workers ended) and raises :class:`KeyboardInterrupt` once, without a traceback from any worker.

Worker processes never outlive their parent: each asks Linux to kill it when the parent dies
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``) and, elsewhere or in addition, a watchdog thread polls
``getppid``; a parent killed with SIGKILL (an out-of-memory killer) leaves no orphans behind.
Linux sends that signal when the *thread* that forked the worker ends, so call :func:`run_tasks`
from a thread that outlives the pool (the main thread, as every command does).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import math
import mmap
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import nullcontext
from typing import Any, NamedTuple

import numpy as np
from tqdm import tqdm

from sonic.errors import AudioError, SonicError

#: Tasks per worker (at least), so that the workers finish together.
TASKS_PER_WORKER = 16
#: Tasks queued per worker at any time (bounds what is held in memory).
QUEUED_PER_WORKER = 4
#: Shared memory per task in flight for the arrays of its result (only the pages used are ever touched).
RESULT_SLOT_BYTES = 16 << 20
#: Arrays at least this large go back through shared memory rather than the pipe.
SHARED_ARRAY_BYTES = 256 << 10
#: Seconds between two checks of a worker's watchdog that its parent still lives.
PARENT_POLL_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1


class FileResult(NamedTuple):
    """One item's outcome: ``value`` if it worked, else ``reason`` (one sentence)."""

    item: Any
    value: Any
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.reason is None


def worker_count(num_workers: int | None) -> int:
    """Worker processes for ``num_workers`` (None: one per CPU this process may use,
    :func:`available_cpus`); 0 means work in this process."""
    if num_workers is not None and not (isinstance(num_workers, int) and num_workers >= 0):
        raise SonicError(f"number of workers must be an integer >= 0, got {num_workers!r}")
    workers = available_cpus() if num_workers is None else num_workers
    return workers if workers > 1 else 0


def available_cpus(*, proc: str = "/proc", cgroup_root: str = "/sys/fs/cgroup") -> int:
    """The CPUs this process may use: those of its CPU affinity, capped by its cgroup's CPU quota.

    ``os.cpu_count()`` counts the machine's CPUs; a container limited by a quota (cgroup v2
    ``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``) or pinned by ``taskset`` has fewer.
    A quota of q microseconds per period p allows ceil(q / p) CPUs. At least 1.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota(proc, cgroup_root)
    if quota is not None:
        cpus = min(cpus, quota)
    return max(1, cpus)


def _cgroup_cpu_quota(proc: str, cgroup_root: str) -> int | None:
    """ceil(quota / period) of this process's cgroup (v2 or v1), or None when unlimited or unknown."""
    try:
        with open(os.path.join(proc, "self", "cgroup"), encoding="utf-8") as stream:
            lines = stream.read().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.count(":") < 2:
            continue
        _, controllers, path = line.split(":", 2)
        path = path.lstrip("/")
        if controllers == "":  # cgroup v2: "0::/path" -> cpu.max = "<quota|max> <period>"
            for folder in _parents(os.path.join(cgroup_root, path), cgroup_root):
                words = _read_words(os.path.join(folder, "cpu.max"))
                if words and len(words) == 2 and words[0] != "max":
                    return _ceil_ratio(words[0], words[1])
        elif "cpu" in controllers.split(","):  # cgroup v1: cpu.cfs_quota_us (-1: none) / cpu.cfs_period_us
            for mount in (controllers, "cpu", "cpu,cpuacct"):
                for folder in _parents(os.path.join(cgroup_root, mount, path), os.path.join(cgroup_root, mount)):
                    quota = _read_words(os.path.join(folder, "cpu.cfs_quota_us"))
                    period = _read_words(os.path.join(folder, "cpu.cfs_period_us"))
                    if quota and period and quota[0] != "-1":
                        return _ceil_ratio(quota[0], period[0])
    return None


def _parents(folder: str, root: str) -> list[str]:
    """``folder`` and its parents up to ``root`` (a quota may be set on an enclosing cgroup)."""
    found, root = [], os.path.normpath(root)
    folder = os.path.normpath(folder)
    while True:
        found.append(folder)
        if folder == root or len(folder) <= len(root):
            return found
        folder = os.path.dirname(folder)


def _read_words(path: str) -> list[str] | None:
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read().split()
    except OSError:
        return None


def _ceil_ratio(quota: str, period: str) -> int | None:
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None
    return max(1, math.ceil(quota_us / period_us)) if quota_us > 0 and period_us > 0 else None


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
    in_flight = workers * QUEUED_PER_WORKER
    slots = _ResultSlots(in_flight) if multiprocessing.get_start_method() == "fork" else None
    if slots is not None:
        initializer, initargs = _ResultSlots.worker_start, (slots, initializer, initargs)
    initializer, initargs = _start_worker, (os.getpid(), initializer, initargs)
    with slots or nullcontext():
        pool = ProcessPoolExecutor(max_workers=workers, initializer=initializer, initargs=initargs)
        try:

            def submit(task: list, slot: int | None) -> Future:
                return pool.submit(function if slot is None else _SlotFilling(function, slot), task)

            queued: dict[Future, tuple[list, int | None]] = {}
            for index, task in enumerate(itertools.islice(tasks, in_flight)):
                slot = None if slots is None else index
                queued[submit(task, slot)] = (task, slot)
            while queued:
                finished, _ = wait(queued, return_when=FIRST_COMPLETED)
                for future in finished:
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        items = [item for task, _ in queued.values() for item in task]
                        raise _worker_died(items, describe, activity) from None
                    task, slot = queued.pop(future)
                    if slots is not None:
                        result = slots.emptied(result, slot)
                    for next_task in itertools.islice(tasks, 1):
                        queued[submit(next_task, slot)] = (next_task, slot)
                    yield task, result
        except BaseException:  # Ctrl-C, an error, or the caller stopped early (GeneratorExit)
            stop_workers(pool)
            raise
        finally:
            pool.shutdown(wait=True)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool`` now: tasks not started are cancelled and its worker processes ended (SIGTERM), quietly.

    What a worker was writing stays a temporary file (:func:`sonic.files.remove_temporaries` clears it).
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())  # shutdown forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(OSError, AttributeError, ValueError):
            process.terminate()
    for process in processes:
        with contextlib.suppress(OSError, AttributeError, ValueError, AssertionError):
            process.join(5)


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


def _start_worker(parent_pid: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    """Worker start: ignore Ctrl-C (the parent stops its workers, see :func:`stop_workers`), die with the
    parent process (see the module docstring), then ``initializer(*initargs)``."""
    ignore_interrupts()
    exit_with_parent(parent_pid)
    if initializer is not None:
        initializer(*initargs)


def ignore_interrupts() -> None:
    """Make this (worker) process ignore SIGINT: Ctrl-C in a terminal reaches every process of the
    foreground group, and only the parent should answer it (one line, no worker tracebacks)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def exit_with_parent(parent_pid: int) -> None:
    """Make this (worker) process end as soon as ``parent_pid``, its parent, does.

    On Linux the kernel sends SIGKILL at the parent's death (``PR_SET_PDEATHSIG``); a daemon thread
    also polls ``getppid`` every :data:`PARENT_POLL_SECONDS` (every platform; it also covers a parent
    that died before the request was made).
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog alone
            pass
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="sonic-parent-watchdog", daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


class _ResultSlots:
    """Shared memory for large arrays of results: ``count`` slots of :data:`RESULT_SLOT_BYTES`, one per task in flight.

    Mapped (shared, anonymous) before the worker processes fork, so that they share it. A worker fills
    the slot of the task it ran (:class:`_SlotFilling`); the caller copies the arrays out (:meth:`emptied`)
    before that slot goes with another task.
    """

    #: The slots, in a worker process (set by :meth:`worker_start`).
    in_worker: _ResultSlots | None = None

    def __init__(self, count: int) -> None:
        self.memory = mmap.mmap(-1, count * RESULT_SLOT_BYTES, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)

    @staticmethod
    def worker_start(slots: _ResultSlots, initializer: Callable[..., None] | None, initargs: tuple) -> None:
        _ResultSlots.in_worker = slots
        if initializer is not None:
            initializer(*initargs)

    def filled(self, value: Any, slot: int) -> Any:
        """``value`` with each large array that fits copied into ``slot`` and replaced by a :class:`_InSlot`."""
        used = 0

        def fill(part: Any) -> Any:
            nonlocal used
            if (
                isinstance(part, np.ndarray)
                and not part.dtype.hasobject
                and SHARED_ARRAY_BYTES <= part.nbytes <= RESULT_SLOT_BYTES - used
            ):
                offset = slot * RESULT_SLOT_BYTES + used
                np.frombuffer(self.memory, part.dtype, part.size, offset).reshape(part.shape)[...] = part
                used += -(-part.nbytes // 64) * 64  # the next array starts aligned
                return _InSlot(offset, part.shape, part.dtype.str)
            return _mapped(part, fill)

        return fill(value)

    def emptied(self, value: Any, slot: int) -> Any:
        """``value`` with each :class:`_InSlot` replaced by a copy of its array; ``slot`` may be used again."""

        def empty(part: Any) -> Any:
            if isinstance(part, _InSlot):
                size = math.prod(part.shape)
                return np.frombuffer(self.memory, part.dtype, size, part.offset).reshape(part.shape).copy()
            return _mapped(part, empty)

        return empty(value)

    def __enter__(self) -> _ResultSlots:
        return self

    def __exit__(self, *exc_info) -> None:
        self.memory.close()


class _InSlot(NamedTuple):
    """Where a worker left an array in shared memory."""

    offset: int
    shape: tuple[int, ...]
    dtype: str


def _mapped(value: Any, function: Callable[[Any], Any]) -> Any:
    """``function`` applied to each element of ``value`` if it is a list, tuple or named tuple; else ``value``."""
    if isinstance(value, list):
        return [function(part) for part in value]
    if isinstance(value, tuple):
        parts = [function(part) for part in value]
        return type(value)._make(parts) if hasattr(value, "_fields") else tuple(parts)
    return value


class _SlotFilling:
    """``function(task)`` in a worker process, its large arrays left in the task's slot of shared memory."""

    def __init__(self, function: Callable[[list], Any], slot: int) -> None:
        self.function = function
        self.slot = slot

    def __call__(self, task: list) -> Any:
        result = self.function(task)
        slots = _ResultSlots.in_worker
        return result if slots is None else slots.filled(result, self.slot)


class _Bar(tqdm):
    """tqdm without its monitor thread (updates come once per task), so worker processes fork a single thread."""

    monitor_interval = 0


def progress_bar(total: int, description: str, enabled: bool, *, unit: str = "file", initial: int = 0) -> tqdm:
    """A tqdm bar (items/s and ETA) on stderr; disabled when ``enabled`` is False.

    ``initial`` items count as done before the bar starts (they do not count in its rate and ETA).
    """
    return _Bar(total=total, desc=description, unit=unit, disable=not enabled, dynamic_ncols=True, initial=initial)


def _worker_died(items: list, describe: Callable[[Any], str], activity: str, *, shown: int = 5) -> AudioError:
    """The error for a worker process that died, naming the items that were in progress."""
    names = ", ".join(f"'{describe(item)}'" for item in items[:shown])
    if len(items) > shown:
        names += f" and {len(items) - shown} more"
    return AudioError(f"a worker process died (a decoder crash, or out of memory) while {activity} one of {names}")
