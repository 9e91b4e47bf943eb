"""``sonic embed --engine ray``: the shards of the local runner computed on a Ray cluster.

Only the computing of the shards moves to the cluster; everything else is the local runner's
(:mod:`sonic.tails.runner`): the inputs and their order, the shard plan and keys, the shard files
(:class:`~sonic.tails.shards.ShardStore`), the table, the failures file and the manifest. So a rerun
skips the shards an interrupted run finished (whichever engine wrote them) and the table equals the
local runner's.

- Inputs are loaded (decoded, resampled) by Ray tasks of one CPU each, a few inputs per task.
- The model runs in actors (:class:`ModelActor`), each with ``gpus_per_actor`` GPUs (0: on CPU) and
  its own copy of the embedder; every shard goes to the actor with the fewest shards in hand, which
  embeds its loaded inputs in batches of ``batch_size`` formed exactly as the local runner forms them
  (batches in input order, never straddling two shards). An embedder that declares
  ``runs_in_workers = True`` (MFCC) embeds inside the loading tasks instead and needs no actor.
- The driver writes each shard as it comes back, bounding the shards in flight (memory), so a driver
  killed halfway loses only the shards in flight.

The audio (and lyrics, metadata) must be readable under the same path on every node, and the output
folder is written by the driver (see ``docs/scale.md``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sonic.cluster import cluster_resources, connected
from sonic.errors import SonicError
from sonic.parallel import QUEUED_PER_WORKER
from sonic.tails.base import EMBEDDERS, Embedder
from sonic.tails.shard_work import LoadJob, ShardBuilder, inference_context, items_per_task, start_worker
from sonic.tails.shards import Shard, ShardStore
from sonic.tails.sources import Source


@dataclass(frozen=True)
class RayOptions:
    """Where and how the shards are computed on Ray.

    ``address``: the cluster (None: a local instance for the run, or the Ray already initialised here;
    ``"auto"``: the cluster this node belongs to; ``"ray://head:10001"``: Ray Client). ``actors``: model
    actors (None: one per ``gpus_per_actor`` GPUs of the cluster when GPUs are asked for, else one).
    ``gpus_per_actor``: GPUs each model actor holds (0: the model runs on CPU). ``cpus_per_actor``: CPUs
    each model actor holds. ``cpus_per_loader``: CPUs each loading task holds.
    """

    address: str | None = None
    actors: int | None = None
    gpus_per_actor: float = 0.0
    cpus_per_actor: float = 1.0
    cpus_per_loader: float = 1.0

    def __post_init__(self) -> None:
        if self.actors is not None and not (isinstance(self.actors, int) and self.actors >= 1):
            raise SonicError(f"ray actors must be a positive integer (or None), got {self.actors!r}")
        for name in ("gpus_per_actor", "cpus_per_actor", "cpus_per_loader"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and not isinstance(value, bool) and value >= 0):
                raise SonicError(f"{name.replace('_', ' ')} must be a number >= 0, got {value!r}")


class ModelActor:
    """One copy of the embedder on a Ray worker (a GPU when the actor holds one); embeds shards."""

    def __init__(self, spec: tuple[str, dict[str, Any]] | Embedder) -> None:
        self.embedder = EMBEDDERS.create(spec[0], **spec[1]) if isinstance(spec, tuple) else spec
        self.context = inference_context(self.embedder)

    def embed_shard(self, index: int, start: int, stop: int, batch_size: int, *tasks: list) -> Shard:
        """The shard of inputs ``start`` .. ``stop`` from its tasks' loaded outcomes, in input order."""
        return _assemble(index, start, stop, self.embedder, batch_size, tasks, embedded=False, context=self.context)

    def device(self) -> str:
        return str(getattr(self.embedder, "device", "cpu"))


def _assemble(index, start, stop, embedder, batch_size, tasks, *, embedded: bool, context) -> Shard:
    builder = ShardBuilder(index, start, stop, embedder.dim)
    for outcomes in tasks:
        builder.add(outcomes, embedder, batch_size, embedded=embedded, context=context)
    builder.flush(embedder, context)
    if not builder.complete:
        raise RuntimeError(f"shard {index} got {builder.seen} results for {stop - start} inputs")
    return builder.result()


def _load_task(load: Any, embedder: Embedder | None, task: list[tuple[int, Any]]) -> list:
    """Load a task's inputs (and embed them when ``embedder`` is given): the local runner's worker job."""
    start_worker(embedder)
    return LoadJob(load, embedder is not None)(task)


def _gather_shard(index: int, start: int, stop: int, embedder: Embedder, *tasks: list) -> Shard:
    """The shard of inputs already embedded by their loading tasks."""
    return _assemble(index, start, stop, embedder, 1, tasks, embedded=True, context=contextlib.nullcontext)


def compute_on_ray(
    spec: tuple[str, dict[str, Any]] | Embedder,
    embedder: Embedder,
    source: Source,
    store: ShardStore,
    plan: Any,
    todo: list[int],
    *,
    batch_size: int,
    seconds: float | None,
    options: RayOptions,
) -> Iterator[int]:
    """Compute and write the shards ``todo`` on Ray; yield each shard's index once written.

    ``spec`` is what each actor builds its embedder from (a registered name and its options, so that
    a GPU actor's copy picks its GPU; or the embedder itself, pickled); ``embedder`` is the driver's
    copy. The other arguments are the local runner's.
    """
    if not todo:
        return
    with connected(options.address) as ray:
        yield from _Scheduler(ray, spec, embedder, source, store, plan, batch_size, seconds, options).run(todo)


class _Scheduler:
    """Submits the shards' tasks, bounds the shards in flight, writes the shards that come back."""

    def __init__(self, ray, spec, embedder, source, store, plan, batch_size, seconds, options) -> None:
        self.ray, self.embedder, self.source, self.store, self.plan = ray, embedder, source, store, plan
        self.batch_size, self.options = batch_size, options
        resources = cluster_resources(ray)
        if options.gpus_per_actor > resources["GPU"]:
            raise SonicError(
                f"each model actor asks for {options.gpus_per_actor:g} GPU but the Ray cluster has "
                f"{resources['GPU']:g}; give fewer GPUs per actor (0 runs the model on CPU)"
            )
        self.in_worker = bool(getattr(embedder, "runs_in_workers", False))
        cpus = max(1, int(resources["CPU"]))
        n_items = sum(plan.size(index) for index in range(len(plan.ranges)))
        self.size = items_per_task(embedder, source, n_items, workers=cpus, batch_size=batch_size,
                                    in_worker=self.in_worker, seconds=seconds)
        self.load = ray.remote(_load_task).options(num_cpus=options.cpus_per_loader)
        self.load_arguments = (ray.put(source.load), ray.put(embedder) if self.in_worker else None)
        self.actors: list[Any] = []
        if self.in_worker:
            self.gather = ray.remote(_gather_shard).options(num_cpus=0)
            self.embedder_ref = self.load_arguments[1]
            workers = cpus
        else:
            count = options.actors or (
                max(1, int(resources["GPU"] // options.gpus_per_actor)) if options.gpus_per_actor else 1
            )
            if count * options.cpus_per_actor + options.cpus_per_loader > resources["CPU"]:
                raise SonicError(
                    f"{count} model actors of {options.cpus_per_actor:g} CPU leave no CPU for loading on a Ray "
                    f"cluster of {resources['CPU']:g} CPUs; give fewer actors or fewer CPUs per actor"
                )
            actor = ray.remote(ModelActor).options(num_cpus=options.cpus_per_actor, num_gpus=options.gpus_per_actor)
            spec_ref = spec if isinstance(spec, tuple) else ray.put(spec)
            self.actors = [actor.remote(spec_ref) for _ in range(count)]
            workers = count
        shard_size = max(plan.size(index) for index in range(len(plan.ranges)))
        self.limit = max(2, 2 * workers, math.ceil(QUEUED_PER_WORKER * cpus * self.size / shard_size))

    def run(self, todo: list[int]) -> Iterator[int]:
        ray, waiting = self.ray, list(todo)
        pending: dict[Any, tuple[int, int | None]] = {}  # result ref -> (shard, actor)
        in_hand = [0] * len(self.actors)
        try:
            while waiting or pending:
                while waiting and len(pending) < self.limit:
                    index = waiting.pop(0)
                    actor = min(range(len(self.actors)), key=in_hand.__getitem__) if self.actors else None
                    pending[self._submit(index, actor)] = (index, actor)
                    if actor is not None:
                        in_hand[actor] += 1
                done, _ = ray.wait(list(pending), num_returns=1)
                index, actor = pending.pop(done[0])
                if actor is not None:
                    in_hand[actor] -= 1
                self.store.write(index, self.plan.keys[index], ray.get(done[0]))
                yield index
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
            for actor in self.actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor)

    def _submit(self, index: int, actor: int | None) -> Any:
        start, stop = self.plan.ranges[index]
        items = self.source.items
        chunks = [range(first, min(first + self.size, stop)) for first in range(start, stop, self.size)]
        tasks = [self.load.remote(*self.load_arguments, [(p, items[p].ref) for p in chunk]) for chunk in chunks]
        if actor is None:
            return self.gather.remote(index, start, stop, self.embedder_ref, *tasks)
        return self.actors[actor].embed_shard.remote(index, start, stop, self.batch_size, *tasks)
