"""TAILS: embedders and embedding tables.

The embedder protocol and registry (:mod:`sonic.tails.base`), the embedders, the
folder-embedding pipeline (:mod:`sonic.tails.pipeline`) and embedding tables
(:mod:`sonic.tails.table`). Names load on first use.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Embedder": "sonic.tails.base",
    "EMBEDDERS": "sonic.tails.base",
    "EmbeddingTable": "sonic.tails.table",
    "read_embeddings": "sonic.tails.table",
    "write_embeddings": "sonic.tails.table",
    "MFCCEmbedder": "sonic.tails.mfcc",
    "embed_folder": "sonic.tails.pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sonic.tails' has no attribute {name!r}")
