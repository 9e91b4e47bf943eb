"""Tracks that sound alike: the nearest tracks of an embedding table by cosine similarity.

:class:`SimilarTracks` searches one table. A query is a track of the table (its own vector; the track
itself is left out of its list), any vector, or a new audio file embedded as the table was
(:mod:`sonic.tails.reembed`: the cold-start use). Results are a frame ``query, track_id, rank, score``
(rank 1 = nearest; score = cosine in [-1, 1]); a query with fewer than ``k`` other tracks gets fewer rows.

Search (``index``): ``"exact"`` scores every row (one matrix product per block of queries; ties go to
the earlier table row); ``"ivf"`` or ``"hnsw"`` go through an approximate FAISS index saved beside the
table (:mod:`sonic.tails.index`: built once, rebuilt when the table changes); ``"auto"`` is exact up to
:data:`EXACT_MAX_ROWS` rows and :data:`AUTO_INDEX` above. ``benchmarks/similar.py`` measures the
index's recall@10 and speed against exact search.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sonic.errors import DataError, SonicError
from sonic.tails.index import INDEX_KINDS, IndexConfig, build_index, index_for_table, search_index
from sonic.tails.table import EmbeddingTable, read_embeddings

#: Tables with more rows than this are searched through an index when ``index="auto"``.
EXACT_MAX_ROWS = 50_000
#: The index ``"auto"`` picks for a larger table.
AUTO_INDEX = "ivf"
#: Every value of ``index``.
SEARCHES = ("auto", "exact", *INDEX_KINDS)
#: Columns of a result frame.
RESULT_COLUMNS = ["query", "track_id", "rank", "score"]
#: Cells of one exact score block (queries x rows, float32): 64 MB.
_BLOCK_CELLS = 1 << 24


class SimilarTracks:
    """Nearest-track search over one embedding table (see the module docstring).

    ``table``: the table; ``path``: its file, where a saved index lives (None: an index is built in
    memory and not saved); ``index``: one of :data:`SEARCHES`; ``config``: the index's settings;
    ``exact_max_rows``: the largest table ``"auto"`` searches exactly. ``search`` is the search chosen.
    """

    def __init__(self, table: EmbeddingTable, *, path: str | os.PathLike | None = None, index: str = "auto",
                 config: IndexConfig | None = None, exact_max_rows: int = EXACT_MAX_ROWS) -> None:
        if index not in SEARCHES:
            raise SonicError(f"unknown index {index!r}; known: {', '.join(SEARCHES)}")
        self.table, self.path, self.config = table, None if path is None else Path(path), config or IndexConfig()
        self.unit_vectors = unit_rows(table.vectors)  # (n, dim) float32
        self.search = index
        if index == "auto":
            self.search = "exact" if len(table.track_ids) <= exact_max_rows else AUTO_INDEX
        self._faiss = None
        if self.search != "exact":
            if self.path is None:
                self._faiss = build_index(self.unit_vectors, self.search, self.config)
            else:
                self._faiss = index_for_table(self.path, self.unit_vectors, self.search, self.config)

    @classmethod
    def open(cls, path: str | os.PathLike, *, index: str = "auto", config: IndexConfig | None = None,
             exact_max_rows: int = EXACT_MAX_ROWS) -> SimilarTracks:
        """Search the table at ``path`` (``.parquet``), with its saved index when one is current."""
        if index not in SEARCHES:  # before the table is read
            raise SonicError(f"unknown index {index!r}; known: {', '.join(SEARCHES)}")
        return cls(read_embeddings(path), path=path, index=index, config=config, exact_max_rows=exact_max_rows)

    @property
    def where(self) -> str:
        return f"embedding table '{self.path}'" if self.path is not None else "the embedding table"

    def rows_of(self, track_ids: Sequence[str]) -> np.ndarray:
        """Table rows of ``track_ids`` (n,) int64; a track not in the table is a :class:`DataError`."""
        wanted = np.asarray([str(track) for track in track_ids], dtype=str)
        rows, found = self.table.lookup(wanted)
        if not found.all():
            missing = wanted[np.argmin(found)]
            example = ", ".join(f"'{t}'" for t in self.table.track_ids[:3])
            raise DataError(f"track '{missing}' is not in {self.where} ({len(self.table.track_ids)} tracks, e.g. "
                            f"{example}); give a track_id it holds, or --audio FILE for a track outside it")
        return rows

    def of_tracks(self, track_ids: Sequence[str], k: int = 10) -> pd.DataFrame:
        """The ``k`` nearest other tracks of each of ``track_ids`` (tracks of the table)."""
        rows = self.rows_of(track_ids)
        found, scores = self._nearest(self.unit_vectors[rows], check_k(k), exclude=rows)
        return self._frame([str(track) for track in track_ids], found, scores)

    def of_vectors(self, vectors: np.ndarray, queries: Sequence[str], k: int = 10) -> pd.DataFrame:
        """The ``k`` nearest tracks of each of ``vectors`` (q, dim), named ``queries`` in the result."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.table.dim or len(vectors) != len(queries):
            raise SonicError(f"query vectors must be ({len(queries)}, {self.table.dim}), one per query; "
                             f"got {vectors.shape}")
        found, scores = self._nearest(unit_rows(vectors), check_k(k), exclude=None)
        return self._frame([str(query) for query in queries], found, scores)

    def of_audio(self, paths: Sequence[str | os.PathLike], k: int = 10, *,
                 options: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """The ``k`` nearest tracks of each audio file in ``paths``, embedded as the table was (the files need
        not be in the table); ``options`` override the embedder's recorded options (e.g. ``device``)."""
        from sonic.tails.reembed import embed_files

        vectors = embed_files(paths, self.table.manifest, options, where=self.where)
        return self.of_vectors(vectors, [str(path) for path in paths], k)

    def _nearest(self, queries: np.ndarray, k: int, exclude: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(rows (q, k) int64 with -1 padding, scores (q, k) float32 with nan padding), best first."""
        width = min(len(self.unit_vectors), k + (exclude is not None))
        if self._faiss is None:
            scores, rows = exact_search(self.unit_vectors, queries, width, exclude=exclude)
        else:
            scores, rows = search_index(self._faiss, self.search, queries, width, self.config)
        if exclude is not None:
            rows = np.where(rows == exclude[:, None], -1, rows)
        keep = rows >= 0
        order = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # found rows first, in their order
        rows, scores = np.take_along_axis(rows, order, axis=1), np.take_along_axis(scores, order, axis=1)
        valid = rows >= 0
        return np.where(valid, rows, -1), np.where(valid, scores, np.nan).astype(np.float32)

    def _frame(self, queries: list[str], rows: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        valid = rows >= 0
        query_rows, ranks = np.nonzero(valid)
        return pd.DataFrame({
            "query": np.asarray(queries, dtype=object)[query_rows],
            "track_id": self.table.track_ids[rows[valid]].astype(object),
            "rank": (ranks + 1).astype(np.int64),
            "score": scores[valid].astype(np.float32),
        }, columns=RESULT_COLUMNS)  # fmt: skip


def similar_tracks(
    table: str | os.PathLike | EmbeddingTable,
    tracks: Sequence[str] = (),
    *,
    audio: Sequence[str | os.PathLike] = (),
    k: int = 10,
    index: str = "auto",
    options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The ``k`` nearest tracks of each of ``tracks`` (track ids of ``table``) and of each ``audio`` file.

    ``table``: a ``.parquet`` path (its index is saved beside it) or an :class:`EmbeddingTable`;
    ``index``: ``auto``, ``exact``, ``ivf`` or ``hnsw``; ``options``: embedder options for ``audio``.
    One frame ``query, track_id, rank, score``, the tracks' lists first.
    """
    if not tracks and not audio:
        raise SonicError("name at least one query: a track of the table (--track) or an audio file (--audio)")
    check_k(k)
    if isinstance(table, EmbeddingTable):
        searcher = SimilarTracks(table, index=index)
    else:
        searcher = SimilarTracks.open(table, index=index)
    if tracks:
        searcher.rows_of(tracks)  # an unknown track is named before any audio is embedded
    frames = []
    if tracks:
        frames.append(searcher.of_tracks(tracks, k))
    if audio:
        frames.append(searcher.of_audio(audio, k, options=options))
    return pd.concat(frames, ignore_index=True)


def similar_to_file(
    table: str | os.PathLike,
    tracks: Sequence[str] = (),
    *,
    audio: Sequence[str | os.PathLike] = (),
    k: int = 10,
    index: str = "auto",
    options: Mapping[str, Any] | None = None,
    out: str | os.PathLike | None = None,
) -> tuple[pd.DataFrame, Path | None]:
    """``sonic similar``: :func:`similar_tracks`, and with ``out`` (``.parquet`` or ``.csv``) the frame written there
    with a manifest beside it (refused before any work when ``out`` is not sonic's earlier output)."""
    from sonic.manifest import base_manifest
    from sonic.outputs import check_result_file, write_result_table

    if out is not None:
        check_result_file(out, "similar tracks")
    frame = similar_tracks(table, tracks, audio=audio, k=k, index=index, options=options)
    if out is None:
        return frame, None
    manifest = base_manifest("similar tracks", table=str(table), k=k, index=index, tracks=list(map(str, tracks)),
                             audio=[str(path) for path in audio], options=dict(options or {}))
    return frame, write_result_table(frame, out, manifest)


def exact_search(unit_vectors: np.ndarray, queries: np.ndarray, width: int, *,
                 exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``width`` inner products of ``queries`` (q, dim) against ``unit_vectors`` (n, dim).

    Returns (scores (q, width) float32, rows (q, width) int64), best first, equal scores by row;
    ``exclude`` (q,) is a row left out of each query's list (its width then keeps the next row).
    """
    n_rows = len(unit_vectors)
    width = min(width, n_rows)
    scores_out = np.empty((len(queries), width), np.float32)
    rows_out = np.empty((len(queries), width), np.int64)
    block = max(1, _BLOCK_CELLS // max(n_rows, 1))
    for start in range(0, len(queries), block):
        scores = queries[start : start + block] @ unit_vectors.T  # (b, n) float32
        if exclude is not None:
            scores[np.arange(len(scores)), exclude[start : start + block]] = -np.inf
        if width < n_rows:
            part = np.argpartition(-scores, width - 1, axis=1)[:, :width]
        else:
            part = np.broadcast_to(np.arange(n_rows), scores.shape)
        picked = np.take_along_axis(scores, part, axis=1)
        order = np.lexsort((part, -picked), axis=1)
        rows = np.take_along_axis(part, order, axis=1)
        best = np.take_along_axis(picked, order, axis=1)
        scores_out[start : start + block] = best
        rows_out[start : start + block] = np.where(np.isneginf(best), -1, rows)
    return scores_out, rows_out


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` (n, dim) scaled to unit length, as float32; an all-zero row stays zero (cosine 0)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise SonicError(f"k must be a positive integer, got {k!r}")
    return int(k)
