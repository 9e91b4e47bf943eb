"""The nearest-track index: a FAISS index over a table's unit vectors, saved beside the table, tied to it.

Beside ``<dir>/<name>.parquet`` it is ``<name>.index.faiss`` (FAISS's own binary format, read back
without running code) and ``<name>.index.json``, its manifest: the table file it was built from (size,
modification time and sha256), the index kind and the parameters it was built with, rows, dimension,
build seconds and versions. The index is current when the table file has the recorded size and time
(as git trusts a file's stat), or, failing that, the recorded sha256; and when it was built as asked.
Otherwise it is built again and replaces the old one. It is written under the folder's lock into a
folder sonic marked as embeddings (an unmarked folder holding only sonic's table files is adopted).

Two kinds, both over inner products of unit vectors (= cosine):

- ``ivf``: an inverted file (``IndexIVFFlat``). k-means (FAISS's, seed fixed) cuts the vectors into
  ``ivf_lists`` cells (default ``4 * sqrt(rows)``), trained on a seeded sample; a query scans the
  ``ivf_probe`` nearest cells. Memory: the vectors and their ids; build: the k-means.
- ``hnsw``: a graph (``IndexHNSWFlat``, ``hnsw_m`` links per node, ``hnsw_ef_construction``); a query
  walks it with a beam of ``hnsw_ef_search``. Memory: the vectors plus about ``2 * hnsw_m`` ids a node;
  build: several times the k-means above.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sonic.errors import SonicError
from sonic.files import atomic_path, check_output_folder, output_folder, write_json
from sonic.manifest import base_manifest

#: Index kinds, by name.
INDEX_KINDS = ("ivf", "hnsw")
#: The folder kind an index is added to (as ``sonic embed`` marks its folder).
EMBEDDINGS_KIND = "embeddings"
#: Files of an embedding table beside ``<name>.parquet``: ``<name><suffix>``.
TABLE_FILE_SUFFIXES = (".parquet", ".manifest.json", ".failures.csv", ".shards", ".index.faiss", ".index.json")


@dataclass(frozen=True)
class IndexConfig:
    """How an index is built and searched.

    ``ivf_lists``: cells of the inverted file (0: ``4 * sqrt(rows)``, at most ``rows // 39`` so that
    k-means has 39 points a cell); ``ivf_probe``: cells a query scans; ``ivf_train_rows``: the sample
    k-means is trained on (0: ``64 * ivf_lists``, at most every row). ``hnsw_m``: links per node;
    ``hnsw_ef_construction``, ``hnsw_ef_search``: beam widths when building and searching.
    ``threads``: FAISS threads (0: FAISS's choice). ``seed``: the training sample.
    The search settings (``ivf_probe``, ``hnsw_ef_search``, ``threads``) apply to a saved index without
    rebuilding it; the others are part of what the index is.
    """

    ivf_lists: int = 0
    ivf_probe: int = 4
    ivf_train_rows: int = 0
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 64
    threads: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SonicError(f"index option {name} must be a non-negative integer, got {value!r}")
        for name in ("ivf_probe", "hnsw_m", "hnsw_ef_construction", "hnsw_ef_search"):
            if getattr(self, name) < 1:
                raise SonicError(f"index option {name} must be at least 1, got {getattr(self, name)}")

    def lists(self, n_rows: int) -> int:
        """Cells of an inverted file over ``n_rows`` vectors."""
        wanted = self.ivf_lists or round(4 * math.sqrt(n_rows))
        return max(1, min(wanted, n_rows // 39 or 1))

    def built_with(self, kind: str, n_rows: int) -> dict[str, int]:
        """The parameters that make an index what it is (a saved index built otherwise is rebuilt)."""
        if kind == "ivf":
            lists = self.lists(n_rows)
            return {"lists": lists, "train_rows": min(n_rows, self.ivf_train_rows or 64 * lists), "seed": self.seed}
        return {"m": self.hnsw_m, "ef_construction": self.hnsw_ef_construction}


def check_kind(kind: str) -> str:
    if kind not in INDEX_KINDS:
        raise SonicError(f"unknown index {kind!r}; known: {', '.join(INDEX_KINDS)}")
    return kind


def index_paths(table_path: str | os.PathLike) -> tuple[Path, Path]:
    """``dir/name.parquet`` -> (``dir/name.index.faiss``, ``dir/name.index.json``)."""
    table_path = Path(table_path)
    stem = table_path.name.removesuffix(".parquet")
    return table_path.with_name(f"{stem}.index.faiss"), table_path.with_name(f"{stem}.index.json")


@contextlib.contextmanager
def faiss_threads(threads: int) -> Iterator[Any]:
    """The ``faiss`` module, with ``threads`` OpenMP threads for the block (0: unchanged)."""
    import faiss

    before = faiss.omp_get_max_threads()
    if threads > 0:
        faiss.omp_set_num_threads(threads)
    try:
        yield faiss
    finally:
        faiss.omp_set_num_threads(before)


def build_index(unit_vectors: np.ndarray, kind: str, config: IndexConfig = IndexConfig()) -> Any:
    """A FAISS index of ``kind`` over ``unit_vectors`` (n, dim) float32 (unit rows), searching inner products."""
    vectors = np.ascontiguousarray(unit_vectors, dtype=np.float32)
    n_rows, dim = vectors.shape
    built = config.built_with(check_kind(kind), n_rows)
    with faiss_threads(config.threads) as faiss:
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, built["m"], faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = built["ef_construction"]
        else:
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, built["lists"], faiss.METRIC_INNER_PRODUCT)
            sample = np.random.default_rng(built["seed"]).choice(n_rows, built["train_rows"], replace=False)
            index.train(vectors[np.sort(sample)])
        index.add(vectors)
    return index


def search_index(index: Any, kind: str, queries: np.ndarray, width: int, config: IndexConfig) -> tuple[np.ndarray,
                                                                                                       np.ndarray]:
    """(scores (q, width) float32, rows (q, width) int64, -1 where fewer were found) of unit ``queries``."""
    with faiss_threads(config.threads):
        if kind == "hnsw":
            index.hnsw.efSearch = max(config.hnsw_ef_search, width)
        else:
            index.nprobe = min(config.ivf_probe, index.nlist)
        scores, rows = index.search(np.ascontiguousarray(queries, dtype=np.float32), width)
    return scores, rows.astype(np.int64)


def file_sha256(path: str | os.PathLike, *, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def table_fingerprint(table_path: str | os.PathLike) -> dict[str, Any]:
    """What ties an index to its table file: size, modification time (ns) and sha256."""
    stat = Path(table_path).stat()
    return {"size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": file_sha256(table_path)}


def same_table(recorded: dict[str, Any], table_path: str | os.PathLike) -> bool:
    """Whether ``table_path`` is the file ``recorded`` describes: same size and time, or else same sha256."""
    stat = Path(table_path).stat()
    if recorded.get("size_bytes") != stat.st_size:
        return False
    if recorded.get("mtime_ns") == stat.st_mtime_ns:
        return True
    return recorded.get("sha256") == file_sha256(table_path)


def load_current_index(table_path: str | os.PathLike, kind: str, n_rows: int, config: IndexConfig) -> Any | None:
    """The saved index of ``table_path`` when it is current (see the module docstring); else None."""
    index_file, manifest_file = index_paths(table_path)
    if not (index_file.is_file() and manifest_file.is_file()):
        return None
    try:
        manifest = json.loads(manifest_file.read_text())
    except (OSError, ValueError):
        return None
    if (not isinstance(manifest, dict) or manifest.get("index") != kind or manifest.get("rows") != n_rows
            or manifest.get("parameters") != config.built_with(kind, n_rows)
            or not same_table(manifest.get("table", {}), table_path)):  # fmt: skip
        return None
    import faiss

    try:
        index = faiss.read_index(str(index_file))
    except RuntimeError:
        return None  # damaged: built again
    return index if index.ntotal == n_rows else None


def save_index(index: Any, table_path: str | os.PathLike, kind: str, config: IndexConfig, *, seconds: float,
               fingerprint: dict[str, Any]) -> Path:
    """Write ``index`` and its manifest beside ``table_path``, under the folder's lock (see the module docstring)."""
    import faiss

    table_path = Path(table_path)
    index_file, manifest_file = index_paths(table_path)
    with output_folder(table_path.parent, EMBEDDINGS_KIND, adopt=_is_table_file):
        with atomic_path(index_file) as temporary:
            faiss.write_index(index, str(temporary))
        manifest = base_manifest(
            "nearest-track index",
            table={"file": table_path.name, **fingerprint},
            index=kind,
            parameters=config.built_with(kind, int(index.ntotal)),
            metric="inner product of unit vectors (cosine)",
            rows=int(index.ntotal),
            dim=int(index.d),
            build_seconds=round(seconds, 3),
            faiss=faiss.__version__,
        )
        write_json(manifest_file, manifest)
    return index_file


def index_for_table(table_path: str | os.PathLike, unit_vectors: np.ndarray, kind: str,
                    config: IndexConfig = IndexConfig()) -> Any:
    """The current saved index of ``table_path``, or a new one built over ``unit_vectors`` and saved."""
    fingerprint = table_fingerprint(table_path)  # taken before the build: a table changed meanwhile is caught later
    index = load_current_index(table_path, kind, len(unit_vectors), config)
    if index is not None:
        return index
    check_output_folder(Path(table_path).parent, EMBEDDINGS_KIND, adopt=_is_table_file)  # before the build
    started = time.perf_counter()
    index = build_index(unit_vectors, kind, config)
    save_index(index, table_path, kind, config, seconds=time.perf_counter() - started, fingerprint=fingerprint)
    return index


def _is_table_file(entry: Path) -> bool:
    """Whether ``entry`` of an unmarked folder is one of sonic's table files (its table's manifest beside it)."""
    for suffix in TABLE_FILE_SUFFIXES:
        if entry.name.endswith(suffix) and len(entry.name) > len(suffix):
            stem = entry.name[: -len(suffix)]
            return (entry.parent / f"{stem}.manifest.json").is_file()
    return False
