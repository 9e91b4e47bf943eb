"""TAILS: embedders and embedding tables.

The embedder protocol and registry (:mod:`sonic.tails.base`), the embedders, the
folder-embedding pipeline (:mod:`sonic.tails.pipeline`) and embedding tables
(:mod:`sonic.tails.table`). Names load on first use.
"""

from __future__ import annotations

from sonic._lazy import lazy_getattr

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

__getattr__ = lazy_getattr(__name__, globals(), _EXPORTS)
