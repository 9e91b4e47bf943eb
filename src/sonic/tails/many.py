"""Several embedders in one run: ``sonic embed --model-type A,B,...``.

:func:`embed_many` embeds with every embedder named. The audio and image embedders share one pass over
the audio (:func:`sonic.tails.audio_pass.audio_pass`, engine :mod:`sonic.tails.one_pass`): each file is decoded once, at its
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

import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sonic.errors import SonicError
from sonic.parallel import worker_count
from sonic.tails.audio_pass import audio_pass
from sonic.tails.base import EMBEDDERS, Embedder
from sonic.tails.run_parts import (
    AUDIO_INPUTS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_SHARD_SIZE,
    EmbedResult,
    check_sizes,
    modality_of,
)
from sonic.tails.runner import embed_folder

if TYPE_CHECKING:
    from sonic.tails.ray_engine import RayOptions


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
    check_sizes(batch_size=batch_size, shard_size=shard_size)
    common = {"batch_size": batch_size, "shard_size": shard_size, "exclude": exclude}
    audio = [item for item in items if modality_of(item) in AUDIO_INPUTS] if engine == "local" else []
    results: dict[int, EmbedResult | BaseException] = {}
    if audio:
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


def _options(item: str | Embedder, options: Mapping[str, dict[str, Any]]) -> dict[str, Any] | None:
    return options.get(item) if isinstance(item, str) else None


def _names(items: Sequence[str | Embedder]) -> str:
    return ", ".join(item if isinstance(item, str) else item.name for item in items)
