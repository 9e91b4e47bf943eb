"""One pass over an audio folder for several audio and image embedders (:mod:`sonic.tails.one_pass`),
each with its own table, manifest, failures file, shards and resume (see :mod:`sonic.tails.many`)."""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sonic.errors import SonicError
from sonic.files import remove_temporaries
from sonic.parallel import progress_bar
from sonic.tails.base import EMBEDDERS, Embedder
from sonic.tails.one_pass import Member, compute_pass
from sonic.tails.run_parts import EmbedResult, plan_key, stopped_in_one_sentence, table_manifest, write_outputs
from sonic.tails.shard_work import ShardPlan
from sonic.tails.shards import ShardStore
from sonic.tails.sources import AudioLoader, open_source
from sonic.tails.table import LEGACY_TEMPORARIES, MANIFEST_KEY, embeddings_folder, manifest_path

#: An embedder to build: a name (or alias) with its options, or an embedder already built.
Spec = tuple["str | Embedder", "dict[str, Any] | None"]


def audio_pass(
    audio_dir: str | os.PathLike | None,
    specs: Sequence[Spec],
    out_dir: str | os.PathLike,
    *,
    window: tuple[float, float | None],
    exclude: str | os.PathLike | None,
    batch_size: int,
    shard_size: int,
    workers: int,
    progress: bool,
    started: float | None = None,
) -> list[EmbedResult | BaseException]:
    """One pass over ``audio_dir`` for the audio and image embedders ``specs`` (``(name or embedder,
    options)``), all over the audio window ``window``, with ``workers`` decoding processes (0: here).

    Returns, per spec, its :class:`EmbedResult` or the error that stopped it (the others go on). An error
    before any embedding starts (an unknown option, a missing folder, a folder another run is writing) is
    raised. Ctrl-C or a full disk stops the pass with one sentence saying what each embedder keeps.
    """
    started = time.perf_counter() if started is None else started
    out_dir = Path(out_dir)
    with embeddings_folder(out_dir):  # one writer; a read-only folder or a full disk is found before any work
        built = [_build(item, options) for item, options in specs]
        source = open_source(built[0], audio_dir=audio_dir, offset_seconds=window[0], duration_seconds=window[1],
                             exclude=exclude)  # fmt: skip
        outcomes: list[EmbedResult | BaseException | None] = [None] * len(built)
        members: list[tuple[int, Member]] = []
        for number, embedder in enumerate(built):
            store = ShardStore(out_dir / f"{embedder.name}.shards", embedder.dim)
            store.clean()
            run = {"embedder": embedder.describe(), "dim": embedder.dim, "window": window, "inputs": source.what}
            plan = ShardPlan.of(source, run, shard_size)
            done = _finished(out_dir, embedder.name, plan_key(plan), started)
            if done is not None:
                outcomes[number] = done
                continue
            todo = {index for index in range(len(plan.ranges)) if not store.has(index, plan.keys[index])}
            loader = AudioLoader(embedder.sample_rate, *window)
            members.append((number, Member(embedder, loader, store, plan, todo)))
        remove_temporaries(out_dir, legacy=LEGACY_TEMPORARIES)
        if not members:
            return outcomes  # type: ignore[return-value]
        reused = {number: len(source.items) - sum(member.plan.size(index) for index in member.todo)
                  for number, member in members}  # fmt: skip
        parts = [(member.store, member.plan, member.embedder.name) for _, member in members]
        with stopped_in_one_sentence(parts, out_dir):
            what = ", ".join(member.embedder.name for _, member in members)
            with progress_bar(len(source.items) * len(members), f"embedding with {what}", progress, unit="track",
                              initial=sum(reused.values())) as bar:  # fmt: skip
                compute = compute_pass([member for _, member in members], source, workers=workers,
                                       batch_size=batch_size, seconds=window[1])  # fmt: skip
                try:
                    for number, index in compute:
                        bar.update(members[number][1].plan.size(index))
                finally:
                    compute.close()  # stops the workers now, not when the generator is collected
            for number, member in members:
                outcomes[number] = _written(specs[number], member, source, out_dir, reused[number], started,
                                            window=window, batch_size=batch_size, shard_size=shard_size,
                                            exclude=exclude)  # fmt: skip
    return outcomes  # type: ignore[return-value]


def _written(spec: Spec, member: Member, source, out_dir: Path, n_reused: int, started: float,
             **settings: Any) -> EmbedResult | BaseException:
    """``member``'s table written from its shards (its shards then removed), or the error that stopped it."""
    if member.error is not None:
        return member.error
    model_type, options = spec
    manifest = table_manifest(member.embedder, model_type, options, source, member.plan, engine="local", **settings)
    try:
        result = write_outputs(member.embedder, source, member.store, member.plan, out_dir, manifest=manifest,
                               n_reused=n_reused)  # fmt: skip
    except SonicError as error:  # nothing could be embedded: that embedder's failure
        return error
    member.store.remove()
    return EmbedResult(**result, n_reused=n_reused, elapsed_seconds=time.perf_counter() - started)


def _finished(out_dir: Path, name: str, key: str, started: float) -> EmbedResult | None:
    """The result of ``<name>.parquet`` if it is complete and its manifest's ``plan_key`` is ``key``, else None."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table_path = out_dir / f"{name}.parquet"
    try:
        metadata = pq.read_schema(table_path).metadata or {}
        manifest = json.loads(metadata[MANIFEST_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException):
        return None
    failures_path = out_dir / str(manifest.get("failures_file") or f"{name}.failures.csv")
    if manifest.get("plan_key") != key or not failures_path.is_file():
        return None
    with open(failures_path, newline="", encoding="utf-8") as stream:
        failures = tuple((row[0], row[1]) for row in list(csv.reader(stream))[1:] if len(row) >= 2)
    n_embedded, n_failed = int(manifest["n_embedded"]), int(manifest["n_failed"])
    return EmbedResult(table_path, manifest_path(table_path), failures_path, n_embedded, n_failed,
                       n_embedded + n_failed, failures, time.perf_counter() - started, skipped=True)


def _build(item: str | Embedder, options: dict[str, Any] | None) -> Embedder:
    if isinstance(item, str):
        return EMBEDDERS.create(item, **(options or {}))
    if options:
        raise SonicError("model options go with an embedder's name, not with an embedder already built")
    return item
