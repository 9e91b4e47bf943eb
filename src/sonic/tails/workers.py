"""Worker processes that decode audio files (and, for embedders that allow it, embed them).

:func:`task_outcomes` hands lists of files to worker processes (:func:`sonic.parallel.run_tasks`) and
yields each task's :class:`Outcome` list as it finishes; with no workers it does the same work here.
A file that cannot be used comes back with its reason; a worker that dies is one
:class:`AudioError` naming the files that were in progress.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from sonic.cream.audio import check_waveform, decode, load_decoders
from sonic.errors import AudioError
from sonic.parallel import run_tasks, task_size
from sonic.tails.base import Embedder


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


#: The embedder of a worker process, set once by :func:`_start_worker` (None: workers only decode).
_worker_embedder: Embedder | None = None


def _start_worker(embedder: Embedder | None) -> None:
    global _worker_embedder
    _worker_embedder = embedder


def task_outcomes(
    job: DecodeJob,
    items: list[tuple[int, str]],
    *,
    workers: int,
    batch_size: int,
    embedder: Embedder,
) -> Iterator[list[Outcome]]:
    """Outcomes of ``items`` (index, path), task by task: in ``workers`` processes as tasks finish, or here.

    Worker processes receive ``embedder`` once, and only if ``job.embed_here``.
    """
    size = task_size(len(items), workers, batch_size) if workers else batch_size
    tasks = (items[start : start + size] for start in range(0, len(items), size))
    if workers == 0:
        function, initializer, initargs = functools.partial(prepare, job, embedder=embedder), None, ()
    else:
        worker_embedder = embedder if job.embed_here else None
        function, initializer, initargs = functools.partial(prepare, job), _start_worker, (worker_embedder,)
    load_decoders(path for _, path in items)
    for _, outcomes in run_tasks(
        function,
        tasks,
        workers=workers,
        initializer=initializer,
        initargs=initargs,
        describe=lambda item: item[1],
        activity="decoding",
    ):
        yield outcomes


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
        vectors = (_worker_embedder if embedder is None else embedder).embed([waveform for _, waveform in waveforms])
        return outcomes + [Outcome(index, vector, None) for (index, _), vector in zip(waveforms, vectors)]
    return outcomes + [Outcome(index, waveform, None) for index, waveform in waveforms]
