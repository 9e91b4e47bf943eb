"""One pass over the audio for several embedders: each file decoded once, every embedder fed from it.

:func:`compute_pass` is the local engine of :mod:`sonic.tails.many` (and of ``sonic embed`` with one
audio or image embedder, which is a pass of one). Worker processes decode each file's window once, at
the file's own rate (:meth:`sonic.tails.sources.AudioLoader.decode_native`); each embedder then gets
its own copy at its own rate (:meth:`~sonic.tails.sources.AudioLoader.from_native`: soxr, then the
checks), cut into its own windows by the embedder itself. Embedders of one rate share one resampling.
An embedder that runs in the workers (MFCC) embeds there and sends back only vectors; the waveforms of
the others come back (through shared memory) and are embedded here, in batches formed exactly as a run
of that embedder alone forms them (:class:`sonic.tails.shard_work.ShardBuilder`): the same inputs, in
the same order, never straddling two shards. So a table made in one pass is the table made alone.

Every embedder keeps its own shards (:class:`sonic.tails.shards.ShardStore`) and shard plan; a file is
decoded for the embedders that still lack its shard, and each shard is written as soon as its embedder
has it, so a killed pass resumes per embedder.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sonic.errors import SonicError
from sonic.parallel import RESULT_SLOT_BYTES, run_tasks, task_size
from sonic.tails.base import Embedder
from sonic.tails.shard_work import TYPICAL_SECONDS, Outcome, ShardBuilder, ShardPlan, inference_context
from sonic.tails.shards import ShardStore
from sonic.tails.sources import AudioLoader, Source


@dataclass
class Member:
    """One embedder of a pass: its loader (rate and window), shard store, plan and the shards it lacks.

    ``error`` is set when its ``embed`` raised: it takes no further part in the pass, the others go on.
    """

    embedder: Embedder
    loader: AudioLoader
    store: ShardStore
    plan: ShardPlan
    todo: set[int]
    error: BaseException | None = None
    in_worker: bool = False
    shards: dict[int, ShardBuilder] = field(default_factory=dict)


@dataclass(frozen=True)
class PassJob:
    """What a worker does with a task of ``(position, path, members)`` items (picklable): decode each file
    once at its own rate, then give each member in ``members`` (indices into ``loaders``) its waveform,
    embedded here for a member whose embedder runs in the workers.

    Returns one list of :class:`Outcome` per loader, in input order (empty for a loader no item asked for).
    """

    loaders: tuple[AudioLoader, ...]

    def __call__(self, task: list[tuple[int, str, tuple[int, ...]]]) -> list[list[Outcome]]:
        outcomes: list[list[Outcome]] = [[] for _ in self.loaders]
        ready: list[list[tuple[int, Any]]] = [[] for _ in self.loaders]
        for position, path, members in task:
            try:
                native, rate = self.loaders[members[0]].decode_native(path)
            except SonicError as error:
                for member in members:
                    outcomes[member].append(Outcome(position, None, str(error)))
                continue
            resampled: dict[int, Any] = {}  # by rate: members of one rate share one resampling
            for member in members:
                loader = self.loaders[member]
                try:
                    if loader.sample_rate not in resampled:
                        resampled[loader.sample_rate] = _attempt(loader, native, rate)
                    waveform = resampled[loader.sample_rate]
                    if isinstance(waveform, SonicError):
                        raise waveform
                except SonicError as error:
                    outcomes[member].append(Outcome(position, None, str(error)))
                    continue
                ready[member].append((position, waveform))
        for member, items in enumerate(ready):
            embedder = _worker_embedders[member] if member < len(_worker_embedders) else None
            if embedder is not None and items:
                vectors = embedder.embed([payload for _, payload in items])
                items = [(position, vector) for (position, _), vector in zip(items, vectors)]
            outcomes[member].extend(Outcome(position, payload, None) for position, payload in items)
            outcomes[member].sort(key=lambda outcome: outcome.position)
        return outcomes


def _attempt(loader: AudioLoader, native: Any, rate: int) -> Any:
    """``loader.from_native(native, rate)``, or the :class:`SonicError` it raised (kept for members of one rate)."""
    try:
        return loader.from_native(native, rate)
    except SonicError as error:
        return error


#: The embedders of a worker process that embed where they load, by member (None for the others).
_worker_embedders: tuple[Embedder | None, ...] = ()


def start_pass_worker(embedders: tuple[Embedder | None, ...]) -> None:
    global _worker_embedders
    _worker_embedders = embedders


def compute_pass(
    members: list[Member],
    source: Source,
    *,
    workers: int,
    batch_size: int,
    seconds: float | None,
) -> Iterator[tuple[int, int]]:
    """Compute and write every member's missing shards; yield ``(member, shard)`` as each is written.

    ``seconds`` is the length of the audio window (None: whole files). Every member's plan has the same
    ranges (the same inputs, the same shard size). A member whose ``embed`` raises gets that error in
    ``error`` and is left out from then on; the pass goes on for the others.
    """
    todo = sorted(set().union(*(member.todo for member in members)))
    if not todo:
        return
    plan = members[0].plan
    for member in members:
        member.in_worker = workers > 0 and bool(getattr(member.embedder, "runs_in_workers", False))
    size = _items_per_task(members, sum(plan.size(index) for index in todo), workers=workers,
                           batch_size=batch_size, seconds=seconds)  # fmt: skip
    tasks, shard_of = [], {}  # shard_of: first position of a task -> its shard
    for index in todo:
        wanted = tuple(number for number, member in enumerate(members) if index in member.todo)
        start, stop = plan.ranges[index]
        for first in range(start, stop, size):
            tasks.append([(position, source.items[position].ref, wanted)
                          for position in range(first, min(first + size, stop))])  # fmt: skip
            shard_of[first] = index
    from sonic.cream.audio import load_decoders  # decoders imported before the workers fork

    load_decoders(item[1] for task in tasks for item in task)
    for member in members:
        member.shards = {index: ShardBuilder(index, *plan.ranges[index], member.embedder.dim) for index in member.todo}
    contexts = [inference_context(member.embedder) for member in members]
    finished: dict[int, list[list[Outcome]]] = {}  # first position of a task -> its outcomes, until its turn
    order = iter(task[0][0] for task in tasks)
    turn = next(order)
    in_workers = tuple(member.embedder if member.in_worker else None for member in members)
    for task, outcomes in run_tasks(
        PassJob(tuple(member.loader for member in members)),
        tasks,
        workers=workers,
        initializer=start_pass_worker,
        initargs=(in_workers,),
        describe=lambda item: str(item[1]),
        activity=source.activity,
    ):
        finished[task[0][0]] = outcomes
        while turn in finished:
            by_member = finished.pop(turn)
            for number, member in enumerate(members):
                if by_member[number] and member.error is None:
                    yield from _add(number, member, shard_of[turn], by_member[number], batch_size, contexts[number])
            turn = next(order, None)
        if all(member.error is not None for member in members):
            return  # nothing left to feed: stop the workers now


def _add(number: int, member: Member, index: int, outcomes: list[Outcome], batch_size: int,
         context) -> Iterator[tuple[int, int]]:
    """Add a task's outcomes to ``member``'s shard ``index``; write the shard when complete (an error
    in its ``embed`` is the member's)."""
    shard = member.shards[index]
    try:
        shard.add(outcomes, member.embedder, batch_size, embedded=member.in_worker, context=context)
        if not shard.complete:
            return
        shard.flush(member.embedder, context)
    except (KeyboardInterrupt, OSError):
        raise
    except Exception as error:  # noqa: BLE001  one embedder failing must not stop the others
        member.error = error
        member.shards.clear()
        return
    member.store.write(shard.index, member.plan.keys[shard.index], shard.result())
    del member.shards[shard.index]
    yield number, shard.index


def _items_per_task(members: list[Member], n_items: int, *, workers: int, batch_size: int,
                    seconds: float | None) -> int:
    """Inputs per task: at most a batch, enough tasks for the workers, and the waveforms sent back for
    every member embedded here within one task's slot of shared memory (:mod:`sonic.parallel`)."""
    if not workers:
        return batch_size
    size = task_size(n_items, workers, batch_size)
    rates = sum(member.embedder.sample_rate for member in members if not member.in_worker)
    if rates:
        waveform_bytes = int((seconds or TYPICAL_SECONDS) * rates * 4)
        size = min(size, max(1, RESULT_SLOT_BYTES // waveform_bytes))
    return size
