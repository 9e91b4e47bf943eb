"""Several embedders in one run: ``sonic embed --model-type A,B,...``.

:func:`embed_many` embeds with every embedder named. The audio and image embedders share one pass over
the audio (:func:`audio_pass`, engine :mod:`sonic.tails.one_pass`): each file is decoded once, at its
own rate, and every embedder gets its own resampling and its own windows of it. The others (lyrics,
metadata) run as they do alone (:func:`sonic.tails.runner.embed_folder`), after the pass.

Each embedder still has its own table, manifest and failures file (``<name>.parquet``...), its own
shards and its own resume: a table already complete from the same inputs and settings (its manifest's
``plan_key``) is left as it is (skipped), and a half-finished one resumes from its shards. The tables are
those each embedder makes alone, bit for bit: ``sonic embed --model-type mfcc_104`` is a pass of one.
An embedder that fails does not stop the others; :func:`embed_many` raises its error once every other
table is written.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sonic.errors import SonicError
from sonic.files import remove_temporaries
from sonic.parallel import progress_bar, worker_count
from sonic.tails.base import EMBEDDERS, Embedder
from sonic.tails.one_pass import Member, compute_pass
from sonic.tails.runner import (
    AUDIO_INPUTS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_SHARD_SIZE,
    EmbedResult,
    _modality,
    embed_folder,
    plan_key,
    stopped_in_one_sentence,
    table_manifest,
    write_outputs,
)
from sonic.tails.shard_work import ShardPlan
from sonic.tails.shards import ShardStore
from sonic.tails.sources import AudioLoader, open_source
from sonic.tails.table import LEGACY_TEMPORARIES, MANIFEST_KEY, embeddings_folder, manifest_path

if TYPE_CHECKING:
    from sonic.tails.ray_engine import RayOptions

#: An embedder to build: a name (or alias) with its options, or an embedder already built.
Spec = tuple["str | Embedder", "dict[str, Any] | None"]


def model_types(given: str | Embedder | Sequence[str | Embedder]) -> list[str | Embedder]:
    """``"mfcc_104,musicnn"`` (or a list of names and embedders) -> the list; every name checked (an
    unknown one is the registry's sentence listing the known names), none named twice."""
    items = given.split(",") if isinstance(given, str) else [given] if isinstance(given, Embedder) else list(given)
    items = [item.strip() if isinstance(item, str) else item for item in items]
    if not items or any(item == "" for item in items):
        raise SonicError(f"--model-type takes one name or several separated by commas, got {given!r}")
    seen: dict[str, str | Embedder] = {}
    for item in items:
        name = EMBEDDERS.resolve(item) if isinstance(item, str) else item.name
        if name in seen:
            raise SonicError(f"embedder {name!r} is named twice in {_names(items)}; name each embedder once")
        seen[name] = item
    return items


def embed_many(
    audio_dir: str | os.PathLike | None,
    model_type: str | Sequence[str | Embedder],
    out_dir: str | os.PathLike,
    *,
    model_options: Mapping[str, dict[str, Any]] | None = None,
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
) -> tuple[EmbedResult, ...]:
    """Embed with every embedder of ``model_type`` (``"a,b"`` or a list) into ``out_dir``; one result each,
    in the order named. ``model_options`` maps a name (as written) to its options. The other arguments
    are :func:`sonic.tails.runner.embed_folder`'s. On the ``ray`` engine each embedder runs on its own.
    An embedder that fails leaves the others to finish; then its error is raised.
    """
    from sonic.cluster import check_engine
    from sonic.cream.audio import check_window

    started = time.perf_counter()
    check_engine(engine)
    items = model_types(model_type)
    options = dict(model_options or {})
    unknown = sorted(set(options) - {item for item in items if isinstance(item, str)})
    if unknown:
        raise SonicError(f"options given for {unknown[0]!r}, which is not among the embedders named: {_names(items)}")
    window = check_window(offset_seconds, duration_seconds)
    common = {"batch_size": batch_size, "shard_size": shard_size, "exclude": exclude}
    audio = [item for item in items if _modality(item) in AUDIO_INPUTS] if engine == "local" else []
    results: dict[int, EmbedResult | BaseException] = {}
    if audio:
        if audio_dir is None:
            raise SonicError(f"embedders {_names(audio)} embed audio; give the audio folder with --audio-dir")
        outcomes = audio_pass(audio_dir, [(item, _options(item, options)) for item in audio], out_dir,
                              window=window, workers=worker_count(num_workers), progress=progress,
                              started=started, **common)  # fmt: skip
        results.update({items.index(item): outcome for item, outcome in zip(audio, outcomes)})
    for number, item in enumerate(items):
        if number in results:
            continue
        try:
            results[number] = embed_folder(
                audio_dir, item, out_dir, model_options=_options(item, options), lyrics_dir=lyrics_dir,
                metadata_file=metadata_file, music4all_root=music4all_root, num_workers=num_workers,
                offset_seconds=offset_seconds, duration_seconds=duration_seconds, progress=progress, engine=engine,
                ray=ray, **common,
            )  # fmt: skip
        except (SonicError, OSError) as error:  # the others still run; raised below
            results[number] = error
    errors = [outcome for _, outcome in sorted(results.items()) if isinstance(outcome, BaseException)]
    if errors:
        raise errors[0]
    return tuple(results[number] for number in range(len(items)))  # type: ignore[misc]


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


def _options(item: str | Embedder, options: Mapping[str, dict[str, Any]]) -> dict[str, Any] | None:
    return options.get(item) if isinstance(item, str) else None


def _names(items: Sequence[str | Embedder]) -> str:
    return ", ".join(item if isinstance(item, str) else item.name for item in items)
