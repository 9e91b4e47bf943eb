"""Worker processes that decode audio files (and, for embedders that allow it, embed them).

:func:`task_outcomes` hands lists of files to a pool of worker processes and yields each
task's :class:`Outcome` list as it finishes; with no pool it does the same work here.
A file that cannot be used comes back with its reason; a worker that dies is one
:class:`AudioError` naming the files that were in progress.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import NamedTuple

import numpy as np

from sonic.cream.audio import check_waveform, decode
from sonic.errors import AudioError
from sonic.tails.base import Embedder

#: Tasks per worker (at least), so that the workers finish together.
_TASKS_PER_WORKER = 16
#: Tasks queued per worker at any time (bounds the decoded audio held in memory).
_QUEUED_PER_WORKER = 4


class DecodeJob(NamedTuple):
    """What a task needs besides its files (small: pickled with every task)."""

    sample_rate: int
    offset_seconds: float
    duration_seconds: float | None
    embed_here: bool  # embed where decoded; otherwise return the waveform


class Outcome(NamedTuple):
    """One file's result: its vector or waveform, or why it cannot be used."""

    index: int
    payload: np.ndarray | None  # (dim,) float32 vector if embedded where decoded, else (samples,) waveform
    reason: str | None  # why the file cannot be used, or None


def worker_pool(workers: int, embedder: Embedder | None):
    """``workers`` processes (the platform's start method), each given ``embedder`` once; none for 0."""
    if workers == 0:
        return contextlib.nullcontext()
    return ProcessPoolExecutor(max_workers=workers, initializer=_start_worker, initargs=(embedder,))


#: The embedder of a worker process, set once by :func:`_start_worker` (None: workers only decode).
_worker_embedder: Embedder | None = None


def _start_worker(embedder: Embedder | None) -> None:
    global _worker_embedder
    _worker_embedder = embedder


def task_outcomes(
    job: DecodeJob,
    items: list[tuple[int, str]],
    pool: ProcessPoolExecutor | None,
    workers: int,
    batch_size: int,
    embedder: Embedder,
) -> Iterator[list[Outcome]]:
    """Outcomes of ``items`` (index, path), task by task: in ``pool`` as tasks finish, or here if it is None."""
    if pool is None:
        for start in range(0, len(items), batch_size):
            yield prepare(job, items[start : start + batch_size], embedder)
        return
    task_size = max(1, min(batch_size, math.ceil(len(items) / (workers * _TASKS_PER_WORKER))))
    tasks = iter([items[start : start + task_size] for start in range(0, len(items), task_size)])
    queued = {pool.submit(prepare, job, task): task for task in itertools.islice(tasks, workers * _QUEUED_PER_WORKER)}
    while queued:
        finished, _ = wait(queued, return_when=FIRST_COMPLETED)
        for future in finished:
            try:
                outcomes = future.result()
            except BrokenProcessPool:
                raise _worker_died(list(queued.values())) from None
            del queued[future]
            yield outcomes
            for next_task in itertools.islice(tasks, 1):
                queued[pool.submit(prepare, job, next_task)] = next_task


def _worker_died(tasks: list[list[tuple[int, str]]], *, shown: int = 5) -> AudioError:
    """The error for a worker process that died, naming the files that were in progress."""
    paths = [path for task in tasks for _, path in task]
    names = ", ".join(f"'{path}'" for path in paths[:shown])
    if len(paths) > shown:
        names += f" and {len(paths) - shown} more"
    return AudioError(f"a worker process died (a decoder crash, or out of memory) while decoding one of {names}")


def prepare(job: DecodeJob, items: list[tuple[int, str]], embedder: Embedder | None = None) -> list[Outcome]:
    """Decode ``items`` and, if ``job.embed_here``, embed them (with the worker's embedder by default)."""
    outcomes, waveforms = [], []
    for index, path in items:
        try:
            waveform, _ = decode(
                path,
                sample_rate=job.sample_rate,
                offset_seconds=job.offset_seconds,
                duration_seconds=job.duration_seconds,
            )
        except AudioError as error:
            outcomes.append(Outcome(index, None, str(error)))
            continue
        reason = check_waveform(waveform, job.sample_rate)
        if reason is not None:
            outcomes.append(Outcome(index, None, reason))
        else:
            waveforms.append((index, waveform))
    if job.embed_here and waveforms:
        vectors = (embedder or _worker_embedder).embed([waveform for _, waveform in waveforms])
        return outcomes + [Outcome(index, vector, None) for (index, _), vector in zip(waveforms, vectors)]
    return outcomes + [Outcome(index, waveform, None) for index, waveform in waveforms]


