"""TAILS: embedders and embedding tables.

The embedder protocol, catalogue and registry (:mod:`sonic.tails.base`), one module per embedder
family (:mod:`sonic.tails.models`), the resumable embedding runner (:mod:`sonic.tails.runner`) and
embedding tables (:mod:`sonic.tails.table`) and the nearest tracks in them (:mod:`sonic.tails.similar`).
Names load on first use.
"""

from __future__ import annotations

from sonic._lazy import lazy_getattr

_EXPORTS = {
    "Embedder": "sonic.tails.base",
    "EMBEDDERS": "sonic.tails.base",
    "EmbeddingTable": "sonic.tails.table",
    "read_embeddings": "sonic.tails.table",
    "write_embeddings": "sonic.tails.table",
    "CATALOGUE": "sonic.tails.base",
    "MFCCEmbedder": "sonic.tails.models.mfcc",
    "EmbedResult": "sonic.tails.runner",
    "embed_folder": "sonic.tails.runner",
    "embed_many": "sonic.tails.many",
    "similar_tracks": "sonic.tails.similar",
    "SimilarTracks": "sonic.tails.similar",
    "IndexConfig": "sonic.tails.index",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, globals(), _EXPORTS)
