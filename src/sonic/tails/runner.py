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

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sonic.cluster import check_engine, import_ray
from sonic.cream.audio import check_window, write_failures
from sonic.errors import AudioError, Interrupted, SonicError
from sonic.files import OutputFolderError, is_user_os_error, os_error_message, remove_temporaries
from sonic.manifest import base_manifest
from sonic.parallel import progress_bar, run_tasks, worker_count
from sonic.tails.base import EMBEDDERS, Embedder
from sonic.tails.neural import declared_precision
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
from sonic.tails.table import (
    LEGACY_TEMPORARIES,
    EmbeddingTable,
    embeddings_folder,
    manifest_path,
    write_embeddings,
)

if TYPE_CHECKING:
    from sonic.tails.ray_engine import RayOptions

#: Inputs per ``embed`` call (and the most inputs in one task sent to a worker).
DEFAULT_BATCH_SIZE = 16
#: Inputs per shard written to disk.
DEFAULT_SHARD_SIZE = 256


@dataclass(frozen=True)
class EmbedResult:
    """What :func:`embed_folder` wrote and how it went."""

    table_path: Path
    manifest_path: Path
    failures_path: Path
    n_embedded: int
    n_failed: int
    n_reused: int  # inputs whose results an earlier, interrupted run had already written
    failures: tuple[tuple[str, str], ...]  # (input's name, reason), sorted by name
    elapsed_seconds: float
    skipped: bool = False  # the table was already complete from the same inputs and settings: left as it was

    @property
    def tracks_per_second(self) -> float:
        """Inputs handled (embedded or failed) per second of wall time."""
        return (self.n_embedded + self.n_failed) / max(self.elapsed_seconds, 1e-9)


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
    processes; everything else (shards, resume, table, manifest) is the same. Raises :class:`SonicError` for an
    unknown model, a bad option, a missing input, or when nothing could be embedded (the failures
    csv is written first).
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
    _check_sizes(batch_size=batch_size, shard_size=shard_size)
    processes = worker_count(num_workers)
    out_dir = Path(out_dir)
    if engine == "local" and _modality(model_type) in AUDIO_INPUTS:  # a pass of one (sonic.tails.many)
        from sonic.tails.many import audio_pass

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


@contextlib.contextmanager
def stopped_in_one_sentence(parts: list[tuple[ShardStore, ShardPlan, str]], out_dir: Path) -> Iterator[None]:
    """Ctrl-C, or a disk that fills up, in the block: one sentence saying how many shards of each
    ``(store, plan, name)`` of ``parts`` are kept (counted on disk, so a shard written just before counts)
    and that a rerun continues."""

    def kept() -> str:
        counts = [f"{sum(store.has(index, key) for index, key in enumerate(plan.keys))} of {len(plan.ranges)} "
                  f"shards of {name}" for store, plan, name in parts]  # fmt: skip
        return f"{', '.join(counts)} are kept in '{out_dir}'; run the same command again to continue"

    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(kept()) from None
    except OSError as error:
        if not is_user_os_error(error):
            raise
        raise OutputFolderError(f"{os_error_message(error, out_dir)}; {kept()}") from None


def table_manifest(embedder: Embedder, model_type: str | Embedder, model_options: dict[str, Any] | None,
                   source: Source, plan: ShardPlan, *, window: tuple[float, float | None], batch_size: int,
                   shard_size: int, engine: str, exclude: str | os.PathLike | None) -> dict[str, Any]:
    """What a table's manifest says of the run that made it (:func:`write_outputs` adds the counts).

    ``plan_key`` (:func:`plan_key`) tells a later run whether this table is already the one it would make.
    """
    described = embedder.describe()
    return {
        **described,
        **({} if "precision" in described or getattr(embedder, "device", None) is None
           else {"precision": declared_precision(embedder)}),  # fmt: skip
        "embedder": embedder.name,
        **({"requested_as": model_type} if isinstance(model_type, str) and model_type != embedder.name else {}),
        "options": dict(model_options or {}) if isinstance(model_type, str) else None,  # to build it again
        "modality": embedder.modality,
        "dim": embedder.dim,
        "sample_rate": embedder.sample_rate,
        "window": {"offset_seconds": window[0], "duration_seconds": window[1]},
        **_resampler(embedder),
        "batch_size": batch_size,
        "shard_size": shard_size,
        "engine": engine,
        "exclude_file": None if exclude is None else str(Path(exclude).resolve()),
        "plan_key": plan_key(plan),
        **source.manifest,
    }


def plan_key(plan: ShardPlan) -> str:
    """sha256 of every shard's key (embedder, window, inputs and their fingerprints) and the versions of
    sonic and the libraries that shape its numbers: equal keys, equal tables."""
    import hashlib
    import json

    from sonic.manifest import package_versions

    text = json.dumps({"shards": plan.keys, "versions": package_versions()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


#: The modalities read from audio files (one pass decodes each file once for all of them).
AUDIO_INPUTS = ("audio", "image")


def _modality(model_type: str | Embedder) -> str:
    """The modality of a registered name (from the catalogue, nothing built) or of an embedder."""
    if isinstance(model_type, str):
        from sonic.tails.base import info

        return info(model_type).modality
    return model_type.modality


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise SonicError(f"{name.replace('_', ' ')} must be a positive integer, got {value!r}")


def _resampler(embedder: Embedder) -> dict[str, Any]:
    if embedder.modality not in ("audio", "image"):
        return {}
    import soxr

    from sonic.cream.audio import RESAMPLE_QUALITY

    return {"resampler": f"soxr {soxr.__version__}, quality {RESAMPLE_QUALITY}", "channels": "mono (mean)"}


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


def write_outputs(
    embedder: Embedder,
    source: Source,
    store: ShardStore,
    plan: ShardPlan,
    out_dir: Path,
    *,
    manifest: dict[str, Any],
    n_reused: int,
) -> dict[str, Any]:
    """Gather the shards; write the failures csv, then the table and its manifest; raise if nothing was embedded."""
    track_ids, vectors, failures = [], [], list(source.failures)
    for index in range(len(plan.ranges)):
        shard = store.read(index)
        ok = np.array([reason is None for reason in shard.reasons], dtype=bool)
        for position, reason in zip(shard.positions, shard.reasons):
            if reason is None:
                track_ids.append(source.items[position].track_id)
            else:
                failures.append((source.items[position].name, reason))
        vectors.append(shard.vectors[ok])
    failures.sort()
    failures_path = write_failures(out_dir / f"{embedder.name}.failures.csv", failures)
    if not track_ids:
        raise AudioError(
            f"none of the {len(failures)} {source.what} {source.where} could be embedded; "
            f"the reasons are in '{failures_path}'"
        )
    manifest = base_manifest(
        "embeddings",
        **manifest,
        n_inputs=len(source.items) + len(source.failures) + source.n_excluded,
        n_embedded=len(track_ids),
        n_failed=len(failures),
        n_excluded=source.n_excluded,
        n_reused=n_reused,
        failures_file=failures_path.name,
    )
    manifest["versions"].update(_model_versions())
    table = EmbeddingTable(np.asarray(track_ids, dtype=str), np.concatenate(vectors), manifest)
    table_path = write_embeddings(table, out_dir / f"{embedder.name}.parquet")
    return {
        "table_path": table_path,
        "manifest_path": manifest_path(table_path),
        "failures_path": failures_path,
        "n_embedded": len(track_ids),
        "n_failed": len(failures),
        "failures": tuple(failures),
    }


def _model_versions() -> dict[str, str]:
    """Versions of the model libraries this process has loaded (torch, transformers...)."""
    import sys
    from importlib import metadata

    versions = {}
    for module, package in (("torch", "torch"), ("transformers", "transformers"), ("timm", "timm"),
                            ("sentence_transformers", "sentence-transformers"), ("safetensors", "safetensors")):
        if module in sys.modules:
            with contextlib.suppress(metadata.PackageNotFoundError):
                versions[package] = metadata.version(package)
    return versions
