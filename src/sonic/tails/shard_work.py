"""What both engines of the embedding runner share (:mod:`sonic.tails.runner`, :mod:`sonic.tails.ray_engine`).

The shard plan (which inputs go in which shard, and each shard's key), the job a worker runs on a task
of inputs (:class:`LoadJob`), the size of those tasks, the shard assembled from loaded inputs in
batches (:class:`ShardBuilder`) and the context each forward pass runs in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from sonic.errors import SonicError
from sonic.parallel import RESULT_SLOT_BYTES, task_size
from sonic.tails.base import Embedder
from sonic.tails.shards import Shard, shard_key
from sonic.tails.sources import Source

#: Length of a clip assumed when sizing tasks for whole files (Music4All's clips last 30 s).
TYPICAL_SECONDS = 30.0


@dataclass(frozen=True)
class ShardPlan:
    """Which inputs go in which shard, and each shard's key."""

    ranges: list[tuple[int, int]]  # [start, stop) positions in source.items
    keys: list[str]

    @classmethod
    def of(cls, source: Source, run: dict[str, Any], shard_size: int) -> ShardPlan:
        n = len(source.items)
        ranges = [(start, min(start + shard_size, n)) for start in range(0, n, shard_size)]
        keys = [
            shard_key(run, [(item.track_id, item.fingerprint) for item in source.items[start:stop]])
            for start, stop in ranges
        ]
        return cls(ranges, keys)

    def size(self, index: int) -> int:
        start, stop = self.ranges[index]
        return stop - start


class Outcome(NamedTuple):
    """One input's result from a worker: its payload (or its vector), or why it cannot be used."""

    position: int
    payload: Any
    reason: str | None


@dataclass(frozen=True)
class LoadJob:
    """What a worker does with a task of ``(position, ref)`` items (picklable)."""

    load: Any
    embed_in_worker: bool

    def __call__(self, task: list[tuple[int, Any]]) -> list[Outcome]:
        outcomes, ready = [], []
        for position, ref in task:
            try:
                ready.append((position, self.load(ref)))
            except SonicError as error:
                outcomes.append(Outcome(position, None, str(error)))
        if self.embed_in_worker and ready:
            vectors = _worker_embedder.embed([payload for _, payload in ready])
            ready = [(position, vector) for (position, _), vector in zip(ready, vectors)]
        outcomes.extend(Outcome(position, payload, None) for position, payload in ready)
        return sorted(outcomes, key=lambda outcome: outcome.position)


#: The embedder of a worker process that embeds where it loads (set by :func:`start_worker`).
_worker_embedder: Embedder | None = None


def start_worker(embedder: Embedder | None) -> None:
    global _worker_embedder
    _worker_embedder = embedder


def items_per_task(
    embedder: Embedder, source: Source, n_items: int, *, workers: int, batch_size: int, in_worker: bool,
    seconds: float | None,
) -> int:
    """Inputs per task sent to a worker: at most a batch, enough tasks to share among the workers, and
    for waveforms sent back, what fits in one task's slot of shared memory (:mod:`sonic.parallel`)."""
    if not workers:
        return batch_size
    size = task_size(n_items, workers, batch_size)
    if source.in_workers and not in_worker and embedder.sample_rate:
        waveform_bytes = int((seconds or TYPICAL_SECONDS) * embedder.sample_rate * 4)
        size = min(size, max(1, RESULT_SLOT_BYTES // waveform_bytes))
    return size


def inference_context(embedder: Embedder):
    """The context each forward pass runs in (:func:`sonic.tails.neural.embedder_context`): for a torch
    embedder no autograd, in float32 unless it declares ``precision = "bfloat16"`` (then bf16 autocast
    on CUDA); nothing for others."""
    from sonic.tails.neural import embedder_context

    return embedder_context(embedder)


class ShardBuilder:
    """The results of one shard as they arrive in order; batches are embedded as soon as they are full."""

    def __init__(self, index: int, start: int, stop: int, dim: int) -> None:
        self.index, self.start, self.stop = index, start, stop
        self.vectors = np.zeros((stop - start, dim), dtype=np.float32)
        self.reasons: list[str | None] = [None] * (stop - start)
        self.waiting: list[tuple[int, Any]] = []  # (position, payload) loaded, not embedded yet
        self.seen = 0

    @property
    def complete(self) -> bool:
        return self.seen == self.stop - self.start

    def add(self, outcomes: list[Outcome], embedder: Embedder, batch_size: int, *, embedded: bool, context) -> None:
        for outcome in outcomes:
            self.seen += 1
            if outcome.reason is not None:
                self.reasons[outcome.position - self.start] = outcome.reason
            elif embedded:
                self._keep([outcome.position - self.start], np.asarray(outcome.payload)[None], embedder)
            else:
                self.waiting.append((outcome.position, outcome.payload))
        while len(self.waiting) >= batch_size:
            self._embed(self.waiting[:batch_size], embedder, context)
            self.waiting = self.waiting[batch_size:]

    def flush(self, embedder: Embedder, context) -> None:
        if self.waiting:
            self._embed(self.waiting, embedder, context)
            self.waiting = []

    def _embed(self, batch: list[tuple[int, Any]], embedder: Embedder, context) -> None:
        with context():
            vectors = np.asarray(embedder.embed([payload for _, payload in batch]))
        if vectors.shape != (len(batch), embedder.dim):
            raise ValueError(
                f"embedder {embedder.name!r} returned shape {vectors.shape} for a batch of {len(batch)}; "
                f"the protocol wants ({len(batch)}, {embedder.dim})"
            )
        self._keep([position - self.start for position, _ in batch], vectors, embedder)

    def _keep(self, rows: list[int], vectors: np.ndarray, embedder: Embedder) -> None:
        """Store ``vectors`` (len(rows), dim) at ``rows``; a vector with a NaN or infinite value is that
        input's failure instead (its row stays zeros)."""
        finite = np.isfinite(vectors).all(axis=1)
        for row, ok in zip(rows, finite):
            if not ok:
                self.reasons[row] = f"{embedder.name} gave NaN or infinite values for this input"
        self.vectors[np.asarray(rows)[finite]] = vectors[finite]

    def result(self) -> Shard:
        return Shard(np.arange(self.start, self.stop, dtype=np.int64), self.vectors, self.reasons)
