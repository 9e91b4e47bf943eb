"""Find the embedding table a run asks for: a path, a name in a folder, or a fusion ``a+b``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sonic.errors import DataError
from sonic.tails.table import EmbeddingTable


def load_embedding(
    embedding: str | os.PathLike, embeddings_dir: str | os.PathLike | None
) -> tuple[EmbeddingTable, dict[str, Any]]:
    """The table for ``embedding`` and what to record of it (path or parts, manifest).

    A name with ``+`` that is not a file (``mfcc_104+lyrics``) is fused by TAILS' fusion
    (:func:`sonic.tails.fusion.fuse_tables`), joined by track id.
    """
    from sonic.tails.table import read_embeddings

    text = str(embedding)
    if "+" in text and not Path(text).is_file():
        table = _fuse(text, embeddings_dir)
        return table, {"name": text, "parts": text.split("+"), "manifest": table.manifest}
    path = resolve_embedding(embedding, embeddings_dir)
    table = read_embeddings(path)
    return table, {"name": path.name.removesuffix(".parquet"), "path": str(path), "manifest": table.manifest}


def resolve_embedding(embedding: str | os.PathLike, embeddings_dir: str | os.PathLike | None) -> Path:
    """The embedding table file for ``embedding``: a ``.parquet`` path, or a name (or an embedder's alias,
    ``MFCC`` for ``mfcc_104``) in ``embeddings_dir``."""
    path = Path(embedding)
    if path.suffix == ".parquet" or path.is_file():
        if not path.is_file():
            raise DataError(f"embedding table '{path}' does not exist")
        return path
    if embeddings_dir is None:
        raise DataError(
            f"embedding '{embedding}' is not a .parquet file; "
            f"pass a path, or --embeddings-dir holding {embedding}.parquet"
        )
    directory = Path(embeddings_dir)
    path = directory / f"{embedding}.parquet"
    if not directory.is_dir():
        raise DataError(f"embeddings folder '{directory}' does not exist; write {path.name} into it with "
                        f"`sonic embed`, or pass --embeddings-dir")
    aliased = directory / f"{_registered_name(str(embedding))}.parquet"
    if not path.is_file() and aliased.is_file():  # an embedder's alias: MFCC is the table mfcc_104
        return aliased
    if not path.is_file():
        known = ", ".join(sorted(p.name.removesuffix(".parquet") for p in directory.glob("*.parquet"))) or "none"
        raise DataError(f"no embedding '{embedding}' in '{directory}' (no {path.name}); known: {known}")
    return path


def _registered_name(name: str) -> str:
    """The embedder name ``name`` stands for (``MFCC`` -> ``mfcc_104``); ``name`` itself when it is none."""
    from sonic.tails.base import EMBEDDERS

    return EMBEDDERS.resolve(name) if name in EMBEDDERS else name


def _fuse(name: str, embeddings_dir: str | os.PathLike | None) -> EmbeddingTable:
    from sonic.tails.fusion import fuse_tables
    from sonic.tails.table import read_embeddings

    fused = fuse_tables(name, embeddings_dir)
    return fused if isinstance(fused, EmbeddingTable) else read_embeddings(fused)
