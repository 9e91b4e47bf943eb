"""Embedding tables: one Parquet file per embedder, its manifest inside it and a copy beside it.

On disk: ``<name>.parquet`` with a string column ``track_id`` and a fixed-size
``list<float32>[dim]`` column ``embedding``; the manifest is in the Parquet file's key-value
metadata (``sonic.manifest``), so the vectors and what made them change in one atomic rename.
``<name>.manifest.json`` beside it is a readable copy written after the table; readers trust the
Parquet file's own copy (the JSON file only for a table without one). In memory: :class:`EmbeddingTable`.

Every vector is finite: a table with a NaN or infinite value is refused when it is written and when
it is read, in one sentence naming the file, the first bad track and how many tracks are bad (a
NaN vector scores 0 against every track and would quietly reorder every list it touches).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sonic.errors import DataError
from sonic.files import OutputFolder, atomic_path, output_folder, write_json

#: The key of the manifest in the Parquet file's metadata.
MANIFEST_KEY = b"sonic.manifest"
#: The kind of output folder embedding tables live in (:func:`sonic.files.output_folder`).
FOLDER_KIND = "embeddings"
#: Suffixes of the fixed temporary names an older sonic left beside its tables (``.<name>.parquet.tmp``).
LEGACY_TEMPORARIES = (".parquet.tmp", ".json.tmp", ".csv.tmp")


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


def embeddings_folder(folder: str | os.PathLike) -> contextlib.AbstractContextManager[OutputFolder]:
    """Claim ``folder`` for embedding tables (:func:`sonic.files.output_folder`, kind :data:`FOLDER_KIND`):
    new, empty, marked as embeddings, or an older sonic's unmarked folder of tables (:func:`is_table_entry`)."""
    return output_folder(folder, FOLDER_KIND, adopt=is_table_entry)


def is_table_entry(entry: Path) -> bool:
    """Whether ``entry`` of an unmarked folder is what sonic writes beside its tables: a table with its
    manifest inside, its JSON manifest, its failures csv, its nearest-track index, or its folder of shards."""
    name = entry.name
    if entry.is_dir():
        return name.endswith(".shards")
    if name.endswith((".manifest.json", ".failures.csv", ".index.faiss", ".index.json")):
        return True  # a table's manifest copy and failures, or its nearest-track index (sonic.tails.index)
    if name.startswith(".") and name.endswith(LEGACY_TEMPORARIES):
        return True
    if not name.endswith(".parquet"):
        return False
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return MANIFEST_KEY in (pq.read_schema(entry).metadata or {})
    except (OSError, pa.ArrowException):
        return False


def manifest_path(table_path: str | os.PathLike) -> Path:
    """``dir/name.parquet`` -> ``dir/name.manifest.json``."""
    table_path = Path(table_path)
    return table_path.with_name(table_path.name.removesuffix(".parquet") + ".manifest.json")


def write_embeddings(table: EmbeddingTable, path: str | os.PathLike) -> Path:
    """Write ``table`` to ``path`` (Parquet with its manifest inside, atomically), then the manifest's
    readable copy beside it. A NaN or infinite value is a :class:`DataError` and nothing is written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    vectors = np.ascontiguousarray(table.vectors, dtype=np.float32)
    check_finite(vectors, table.track_ids, path)
    values = pa.array(vectors.reshape(-1), type=pa.float32())
    column = pa.FixedSizeListArray.from_arrays(values, vectors.shape[1])
    arrow = pa.table({"track_id": pa.array(table.track_ids.astype(str), type=pa.string()), "embedding": column})
    arrow = arrow.replace_schema_metadata({MANIFEST_KEY: json.dumps(table.manifest, default=str)})
    with atomic_path(path) as temporary:
        pq.write_table(arrow, temporary)
    write_json(manifest_path(path), table.manifest)
    return path


def check_finite(vectors: np.ndarray, track_ids, path: str | os.PathLike) -> None:
    """Refuse, in one sentence, (n, dim) ``vectors`` holding a NaN or infinite value (``path`` names the table)."""
    finite = np.isfinite(vectors).all(axis=1) if vectors.size else np.ones(len(vectors), bool)
    if finite.all():
        return
    bad = np.flatnonzero(~finite)
    first = track_ids[int(bad[0])]
    first = first.as_py() if hasattr(first, "as_py") else str(first)
    others = f" and {len(bad) - 1} more track" + ("s" if len(bad) > 2 else "") if len(bad) > 1 else ""
    raise DataError(
        f"embedding table '{path}' holds NaN or infinite values: track '{first}'{others} "
        f"({len(bad)} of {len(vectors)}); embed those tracks again or leave them out"
    )


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
    track_ids = np.asarray(ids.to_pylist(), dtype=object).astype(str)
    vectors = vectors.astype(np.float32, copy=False)
    check_finite(vectors, track_ids, path)
    return EmbeddingTable(track_ids=track_ids, vectors=vectors, manifest=_manifest(path, metadata))


def _manifest(path: Path, metadata: dict[bytes, bytes] | None) -> dict[str, Any]:
    """The table's own manifest (its Parquet metadata); the JSON copy beside it only for a table without one."""
    try:
        if metadata and MANIFEST_KEY in metadata:
            return json.loads(metadata[MANIFEST_KEY])
        if manifest_path(path).is_file():
            return json.loads(manifest_path(path).read_text())
    except ValueError as error:
        raise DataError(f"the manifest of embedding table '{path}' is not JSON ({error})") from None
    return {}


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
