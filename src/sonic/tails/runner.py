"""The embedding runner behind ``sonic embed``: inputs prepared in worker processes, the model here.

:func:`embed_folder` embeds every input of an embedder's modality (:mod:`sonic.tails.sources`: audio
files decoded and resampled to the embedder's own rate, lyrics files, metadata rows) into
``<out>/<name>.parquet`` with ``<name>.manifest.json`` and ``<name>.failures.csv`` beside it.

- Worker processes load inputs (decode, resample); tasks go out in input order and their results are
  put back in that order, so batches of ``batch_size`` inputs are formed in input order and the model
  runs in this process (an embedder that declares ``runs_in_workers = True``, such as MFCC, embeds in
  the workers instead, and only vectors travel back). Workers die with this process.
- The forward pass runs without autograd, in float32 unless the embedder declares bfloat16 safe
  (:func:`sonic.tails.neural.embedder_context`; bf16 autocast on CUDA only then, recorded in the manifest);
  neural embedders send their batches from pinned memory (:func:`sonic.tails.neural.to_device`).
- Results are written in shards of ``shard_size`` inputs as they complete (:mod:`sonic.tails.shards`).
  Batches never straddle two shards, so a rerun after a crash or SIGKILL reuses the finished shards,
  embeds the rest, and writes the same table, bit for bit on the CPU, as an uninterrupted run; it says
  how many tracks it reused. The table, manifest and failures file are each written atomically; the
  shards are removed once the table is complete.
- An input that cannot be used (unreadable, undecodable, or embedded as NaN or infinite values) is
  listed in the failures file with the reason; it never stops the run.
- ``out_dir`` is claimed before the model is built or any file decoded (:func:`sonic.tails.table.embeddings_folder`):
  one run at a time writes into it (a second is refused naming the first's PID and command), and a
  read-only folder or a full disk is one sentence. Ctrl-C (:class:`sonic.errors.Interrupted`) or a disk
  that fills up mid-run stops the workers and says, in one sentence, how many shards are kept for a rerun.

Track ids are file paths relative to the input folder without extension (``audios/abc123.mp3`` is
``abc123``; ``album/track.ogg`` is ``album/track``), or a table's ``track_id``. When two files give
the same id (``a.mp3`` and ``a.ogg``), the first in sorted path order is embedded and the others are
failures naming it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sonic.cluster import check_engine, import_ray
from sonic.cream.audio import check_window
from sonic.errors import SonicError
from sonic.files import remove_temporaries
from sonic.parallel import progress_bar, run_tasks, worker_count
from sonic.tails.audio_pass import audio_pass
from sonic.tails.base import EMBEDDERS, Embedder
from sonic.tails.run_parts import (
    AUDIO_INPUTS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_SHARD_SIZE,
    EmbedResult,
    check_sizes,
    modality_of,
    stopped_in_one_sentence,
    table_manifest,
    write_outputs,
)
from sonic.tails.shard_work import (
    LoadJob,
    Outcome,
    ShardBuilder,
    ShardPlan,
    inference_context,
    items_per_task,
    start_worker,
)
from sonic.tails.shards import ShardStore
from sonic.tails.sources import AudioLoader, Source, open_source
from sonic.tails.table import LEGACY_TEMPORARIES, embeddings_folder

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_SHARD_SIZE", "EmbedResult", "embed_folder"]

if TYPE_CHECKING:
    from sonic.tails.ray_engine import RayOptions


def embed_folder(
    audio_dir: str | os.PathLike | None,
    model_type: str | Embedder,
    out_dir: str | os.PathLike,
    *,
    model_options: dict[str, Any] | None = None,
    lyrics_dir: str | os.PathLike | None = None,
    metadata_file: str | os.PathLike | None = None,
    music4all_root: str | os.PathLike | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_workers: int | None = None,
    offset_seconds: float = 0.0,
    duration_seconds: float | None = None,
    exclude: str | os.PathLike | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    progress: bool = True,
    engine: str = "local",
    ray: RayOptions | None = None,
) -> EmbedResult:
    """Embed every input of ``model_type`` into ``out_dir`` (see the module docstring).

    ``model_type`` is a registered name (``"mfcc_104"``) or an alias of one (``"MFCC"``: the table is named
    by the registered name, the manifest's ``requested_as`` keeps the alias), built with ``model_options``,
    or an embedder.
    Its modality says which input it needs: ``audio_dir`` (audio, image), ``lyrics_dir`` or ``music4all_root`` (text),
    ``metadata_file`` or ``music4all_root`` (tabular). ``num_workers`` processes load the inputs
    (default: one per CPU; 0 or 1: all in this process). Only the window ``offset_seconds`` ..
    ``+duration_seconds`` of each audio file is used (None: to the end). ``exclude`` is a csv or
    Parquet file whose ``track_id`` column lists tracks to skip. ``engine`` ``"ray"`` computes the
    shards on a Ray cluster (:mod:`sonic.tails.ray_engine`, options ``ray``) instead of local worker
    processes; everything else (shards, resume, table, manifest) is the same. On the local engine an
    audio or image embedder runs as a pass of one (:func:`sonic.tails.audio_pass.audio_pass`: decode at
    the file's rate, then the embedder's resampler, as :func:`sonic.tails.many.embed_many` does for
    several), and a table already complete from the same plan is kept (``skipped``). Raises
    :class:`SonicError` for an unknown model, a bad option, a missing input, or when nothing could be
    embedded (the failures csv is written first).
    """
    started = time.perf_counter()
    check_engine(engine)
    if engine == "ray":
        import_ray()  # before any work: without Ray, one sentence on how to install it
    if isinstance(model_type, str) and model_type not in EMBEDDERS:
        EMBEDDERS.create(model_type)  # one sentence listing the known names
    elif not isinstance(model_type, str) and model_options:
        raise SonicError("model options go with an embedder's name, not with an embedder already built")
    window = check_window(offset_seconds, duration_seconds)
    check_sizes(batch_size=batch_size, shard_size=shard_size)
    processes = worker_count(num_workers)
    out_dir = Path(out_dir)
    if engine == "local" and modality_of(model_type) in AUDIO_INPUTS:  # a pass of one (sonic.tails.many)
        (outcome,) = audio_pass(audio_dir, [(model_type, model_options)], out_dir, window=window, exclude=exclude,
                                batch_size=batch_size, shard_size=shard_size, workers=processes, progress=progress,
                                started=started)  # fmt: skip
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome
    with embeddings_folder(out_dir):  # one writer; a read-only folder or a full disk is found before any work
        if isinstance(model_type, str):
            embedder: Embedder = EMBEDDERS.create(model_type, **(model_options or {}))
            spec: Any = (model_type, dict(model_options or {}))  # what a Ray actor builds its copy from
        else:
            embedder = spec = model_type
        source = open_source(
            embedder,
            audio_dir=audio_dir,
            lyrics_dir=lyrics_dir,
            metadata_file=metadata_file,
            music4all_root=music4all_root,
            offset_seconds=window[0],
            duration_seconds=window[1],
            exclude=exclude,
        )
        fit = getattr(embedder, "fit", None)
        if callable(fit) and source.what == "metadata rows":  # scaling fitted on the whole table (metadata)
            fit([item.ref for item in source.items])
            spec = embedder  # Ray actors get the fitted embedder itself
        store = ShardStore(out_dir / f"{embedder.name}.shards", embedder.dim)
        store.clean()
        remove_temporaries(out_dir, legacy=LEGACY_TEMPORARIES)
        run = {"embedder": embedder.describe(), "dim": embedder.dim, "window": window, "inputs": source.what}
        plan = ShardPlan.of(source, run, shard_size)
        todo = [index for index in range(len(plan.ranges)) if not store.has(index, plan.keys[index])]
        n_reused = len(source.items) - sum(plan.size(index) for index in todo)
        with stopped_in_one_sentence([(store, plan, embedder.name)], out_dir):
            with progress_bar(len(source.items), f"embedding with {embedder.name}", progress, unit="track",
                              initial=n_reused) as bar:  # fmt: skip
                if engine == "ray":
                    from sonic.tails.ray_engine import RayOptions, compute_on_ray

                    compute = compute_on_ray(spec, embedder, source, store, plan, todo, batch_size=batch_size,
                                             seconds=window[1], options=ray or RayOptions())
                else:
                    workers = processes if source.in_workers else 0
                    compute = _compute(embedder, source, store, plan, todo, workers=workers, batch_size=batch_size,
                                       seconds=window[1])
                try:
                    for index in compute:
                        bar.update(plan.size(index))
                finally:
                    compute.close()  # stops the workers now, not when the generator is collected
            manifest = table_manifest(embedder, model_type, model_options, source, plan, window=window,
                                      batch_size=batch_size, shard_size=shard_size, engine=engine, exclude=exclude)
            result = write_outputs(embedder, source, store, plan, out_dir, manifest=manifest, n_reused=n_reused)
        store.remove()
    return EmbedResult(**result, n_reused=n_reused, elapsed_seconds=time.perf_counter() - started)


def _compute(
    embedder: Embedder,
    source: Source,
    store: ShardStore,
    plan: ShardPlan,
    todo: list[int],
    *,
    workers: int,
    batch_size: int,
    seconds: float | None,
) -> Iterator[int]:
    """Compute and write the shards ``todo``; yield each shard's index once written.

    ``seconds`` is the length of the audio window (None: whole files).
    """
    if not todo:
        return
    in_worker = workers > 0 and bool(getattr(embedder, "runs_in_workers", False))
    size = items_per_task(embedder, source, sum(plan.size(index) for index in todo), workers=workers,
                           batch_size=batch_size, in_worker=in_worker, seconds=seconds)
    tasks, shard_of = [], {}  # shard_of: first position of a task -> its shard
    for index in todo:
        start, stop = plan.ranges[index]
        for first in range(start, stop, size):
            tasks.append([(position, source.items[position].ref) for position in range(first, min(first + size, stop))])
            shard_of[first] = index
    if isinstance(source.load, AudioLoader):  # decoders imported before the workers fork
        from sonic.cream.audio import load_decoders

        load_decoders(task_items[1] for task in tasks for task_items in task)
    shards = {index: ShardBuilder(index, *plan.ranges[index], embedder.dim) for index in todo}
    finished: dict[int, list[Outcome]] = {}  # first position of a task -> its outcomes, until its turn
    order = iter(task[0][0] for task in tasks)
    turn = next(order)
    context = inference_context(embedder)
    for task, outcomes in run_tasks(
        LoadJob(source.load, in_worker),
        tasks,
        workers=workers,
        initializer=start_worker,
        initargs=(embedder if in_worker else None,),
        describe=lambda item: str(item[1]),
        activity=source.activity,
    ):
        finished[task[0][0]] = outcomes
        while turn in finished:
            shard = shards[shard_of[turn]]
            shard.add(finished.pop(turn), embedder, batch_size, embedded=in_worker, context=context)
            if shard.complete:
                shard.flush(embedder, context)
                store.write(shard.index, plan.keys[shard.index], shard.result())
                del shards[shard.index]
                yield shard.index
            turn = next(order, None)
