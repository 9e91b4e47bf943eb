"""Embedding tables: one Parquet file per embedder, with a JSON manifest beside it.

On disk: ``<name>.parquet`` with a string column ``track_id`` and a fixed-size
``list<float32>[dim]`` column ``embedding``; ``<name>.manifest.json`` next to it.
In memory: :class:`EmbeddingTable`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sonic.errors import DataError
from sonic.manifest import write_json


@dataclass(frozen=True)
class EmbeddingTable:
    """Track vectors: ``track_ids`` (n,) str, ``vectors`` (n, dim) float32, and their manifest."""

    track_ids: np.ndarray
    vectors: np.ndarray
    manifest: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or len(self.track_ids) != len(self.vectors):
            raise DataError(
                f"embedding table has {len(self.track_ids)} ids but vectors of shape {self.vectors.shape}"
            )
        if len(np.unique(self.track_ids)) != len(self.track_ids):
            raise DataError("embedding table lists a track_id more than once")

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def lookup(self, track_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows for ``track_ids``: (row index (m,) int64 with -1 where absent, found mask (m,) bool)."""
        order = np.argsort(self.track_ids)
        sorted_ids = self.track_ids[order]
        pos = np.searchsorted(sorted_ids, track_ids)
        pos = np.clip(pos, 0, len(sorted_ids) - 1)
        found = sorted_ids[pos] == track_ids if len(sorted_ids) else np.zeros(len(track_ids), bool)
        rows = np.where(found, order[pos], -1)
        return rows.astype(np.int64), found


def manifest_path(table_path: str | os.PathLike) -> Path:
    """``dir/name.parquet`` -> ``dir/name.manifest.json``."""
    table_path = Path(table_path)
    return table_path.with_name(table_path.name.removesuffix(".parquet") + ".manifest.json")


def write_embeddings(table: EmbeddingTable, path: str | os.PathLike) -> Path:
    """Write ``table`` to ``path`` (Parquet, atomically) and its manifest beside it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    vectors = np.ascontiguousarray(table.vectors, dtype=np.float32)
    values = pa.array(vectors.reshape(-1), type=pa.float32())
    column = pa.FixedSizeListArray.from_arrays(values, vectors.shape[1])
    arrow = pa.table({"track_id": pa.array(table.track_ids.astype(str), type=pa.string()), "embedding": column})
    arrow = arrow.replace_schema_metadata({"sonic.manifest": json.dumps(table.manifest, default=str)})
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(arrow, tmp)
    os.replace(tmp, path)
    write_json(manifest_path(path), table.manifest)
    return path


def read_embeddings(path: str | os.PathLike) -> EmbeddingTable:
    """Read a table written by :func:`write_embeddings` (or any Parquet with the same two columns)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise DataError(f"embedding table '{path}' does not exist")
    streamed = _streamed(path)
    if streamed is not None:
        ids, vectors, metadata = streamed
    else:
        try:
            arrow = pq.read_table(path)
        except (OSError, pa.ArrowException) as error:
            raise DataError(f"cannot read embedding table '{path}': {str(error).splitlines()[0]}") from None
        missing = [c for c in ("track_id", "embedding") if c not in arrow.column_names]
        if missing:
            found = ", ".join(arrow.column_names)
            raise DataError(f"embedding table '{path}' has no column {missing[0]!r}; found: {found}")
        column = arrow.column("embedding").combine_chunks()
        if len(column) == 0:
            raise DataError(f"embedding table '{path}' holds no vectors")
        ids, metadata = arrow.column("track_id"), arrow.schema.metadata
        vectors = _vectors(column, ids, path)
    manifest: dict[str, Any] = {}
    if manifest_path(path).is_file():
        manifest = json.loads(manifest_path(path).read_text())
    elif metadata and b"sonic.manifest" in metadata:
        manifest = json.loads(metadata[b"sonic.manifest"])
    track_ids = np.asarray(ids.to_pylist(), dtype=object).astype(str)
    return EmbeddingTable(track_ids=track_ids, vectors=vectors.astype(np.float32, copy=False), manifest=manifest)


def _streamed(path: Path) -> tuple[Any, np.ndarray, Any] | None:
    """(track_id column, (n, dim) float32 vectors, schema metadata) of a table as :func:`write_embeddings`
    writes it, read a few thousand rows at a time into one array; None for anything else (the whole-table
    read then checks it and names the problem).

    Decoding the nested ``embedding`` column in one piece holds several copies of it (about 0.9 GB for
    55 k x 768 floats); batch by batch the peak is the vectors and one compressed column chunk.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path, pre_buffer=False)
        schema = file.schema_arrow
        if "track_id" not in schema.names or "embedding" not in schema.names:
            return None
        kind = schema.field("embedding").type
        n_rows = file.metadata.num_rows
        if not (pa.types.is_fixed_size_list(kind) and pa.types.is_float32(kind.value_type)) or n_rows == 0:
            return None
        vectors = np.empty((n_rows, kind.list_size), dtype=np.float32)
        start = 0
        for batch in file.iter_batches(batch_size=4096, columns=["embedding"], use_threads=False):
            column = batch.column(0)
            values = column.flatten()
            if column.null_count or values.null_count or start + len(column) > n_rows:
                return None
            vectors[start : start + len(column)] = values.to_numpy().reshape(len(column), kind.list_size)
            start += len(column)
        if start != n_rows:
            return None
        ids = file.read(columns=["track_id"], use_threads=False).column("track_id")
    except (OSError, pa.ArrowException):
        return None
    return ids, vectors, schema.metadata


def _vectors(column, track_ids, path: Path) -> np.ndarray:
    """The ``embedding`` column as (n, dim) numbers; a missing vector, vectors of different lengths or
    values that are not numbers are one sentence naming the file and the first bad track."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def bad(row: int, problem: str) -> DataError:
        return DataError(f"embedding table '{path}' is malformed: track '{track_ids[row].as_py()}' {problem}")

    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type) or
            pa.types.is_fixed_size_list(column.type)):
        raise DataError(f"embedding table '{path}' has an 'embedding' column of {column.type}, not lists of numbers")
    if not (pa.types.is_floating(column.type.value_type) or pa.types.is_integer(column.type.value_type)):
        raise DataError(f"embedding table '{path}' has vectors of {column.type.value_type}, not numbers")
    if column.null_count:
        raise bad(int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0]), "has no vector")
    if pa.types.is_fixed_size_list(column.type):
        size = column.type.list_size
    else:
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        size = int(lengths[0])
        differs = np.flatnonzero(lengths != size)
        if differs.size:
            row = int(differs[0])
            first = track_ids[0].as_py()
            raise bad(row, f"has a vector of {lengths[row]} values where the first track '{first}' has {size}")
    values = column.flatten()
    if values.null_count:
        row = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0]) // max(size, 1)
        raise bad(row, "has a missing value in its vector")
    return values.to_numpy(zero_copy_only=False).reshape(len(column), size)
