"""Embed new files the way a table was embedded: its embedder, options and window, read from its manifest.

The embedder is built from the registry by the manifest's ``embedder`` name and ``options`` (what
``sonic embed`` was given; ``options`` given here override them, e.g. ``device``), and checked against
the manifest: every parameter its ``describe()`` shares with the manifest (model, dimension, sample
rate, layer, window, pooling, weights' sha256...) must be the same, apart from where it runs
(``device``, ``batch_size``, ``precision``, the checkpoint's path). A file then goes the runner's
way: :class:`sonic.tails.sources.AudioLoader` decodes it to mono at the embedder's rate over the
table's window (audio and image embedders), or it is read as lyrics (text), and the embedder embeds
it in the runner's :func:`sonic.tails.shard_work.inference_context`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sonic.errors import AudioError, DataError, SonicError
from sonic.tails.base import EMBEDDERS, Embedder

#: ``describe()`` entries that say where or how fast an embedder runs, not what its vectors are.
RUNTIME_KEYS = frozenset({"device", "batch_size", "precision", "checkpoint", "source", "weights_file",
                          "ignored_parameters"})  # fmt: skip


def table_embedder(manifest: Mapping[str, Any], options: Mapping[str, Any] | None = None, *,
                   where: str = "the table") -> Embedder:
    """The embedder that made a table with this ``manifest``, built again and checked (module docstring)."""
    name = manifest.get("embedder")
    if not isinstance(name, str):
        raise DataError(f"{where} does not say which embedder made it (its manifest has no 'embedder'); "
                        "embedding new files needs a table written by sonic embed")
    recorded = {key: value for key, value in (manifest.get("options") or {}).items()
                if key not in ("device", "batch_size")}  # where it runs is this machine's choice
    given = {**recorded, **dict(options or {})}
    embedder = EMBEDDERS.create(name, **given)
    described = json.loads(json.dumps(embedder.describe(), default=str))
    for key, value in described.items():
        if key in RUNTIME_KEYS or key not in manifest or manifest[key] == value:
            continue
        raise SonicError(
            f"{where} was embedded by {name} with {key}={manifest[key]!r}, but {name} built with options {given} "
            f"gives {key}={value!r}; give the table's options (--option KEY=VALUE)"
        )
    if "dim" in manifest and manifest["dim"] != embedder.dim:
        raise SonicError(f"{where} holds {manifest['dim']}-d vectors but {name} makes {embedder.dim}-d ones")
    return embedder


def embed_files(paths: Sequence[str | os.PathLike], manifest: Mapping[str, Any],
                options: Mapping[str, Any] | None = None, *, where: str = "the table") -> np.ndarray:
    """Vectors (n, dim) float32 of ``paths`` (audio files, or lyrics files for a text embedder), embedded
    as the table with ``manifest`` was; a file that cannot be used is an :class:`AudioError` or
    :class:`DataError` naming it."""
    from sonic.tails.shard_work import inference_context
    from sonic.tails.sources import AudioLoader, read_lyrics

    embedder = table_embedder(manifest, options, where=where)
    if embedder.modality in ("audio", "image"):
        window = manifest.get("window") or {}
        load = AudioLoader(embedder.sample_rate, float(window.get("offset_seconds") or 0.0),
                           window.get("duration_seconds"))
    elif embedder.modality == "text":
        load = read_lyrics
    else:
        raise SonicError(f"{where} was made by {embedder.name} from {embedder.modality} rows, not files; "
                         "only audio, image and text tables can embed a new file")
    payloads = [_loaded(load, path) for path in paths]
    with inference_context(embedder)():
        vectors = np.asarray(embedder.embed(payloads), dtype=np.float32)
    return vectors.reshape(len(payloads), embedder.dim)


def _loaded(load: Any, path: str | os.PathLike) -> Any:
    """``load(path)``; a problem the loader words without the file's name gets it."""
    try:
        return load(str(path))
    except SonicError as error:
        if str(path) in str(error):
            raise
        kind = AudioError if isinstance(error, AudioError) else DataError
        raise kind(f"'{path}' cannot be embedded: {error}") from None
