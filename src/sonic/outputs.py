"""Result tables a user names with ``--out FILE``: Parquet or csv by suffix, written atomically, with a
manifest beside them, and never written over a file sonic did not write.

``<dir>/<stem>.parquet`` (or ``.csv``) holds the rows; ``<dir>/<stem>.manifest.json`` says what made
them (``artifact``, the command's inputs and parameters, versions) and names the file. A Parquet file
also carries the manifest in its schema metadata (key ``sonic.manifest``). An existing file is
replaced only when it is sonic's output of the same artifact: a Parquet file whose metadata says so,
or any file whose manifest names it; anything else is refused in one sentence before any work.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from sonic.errors import SonicError
from sonic.files import atomic_path, write_json

#: Suffixes a result table may have, and the format each gives.
TABLE_SUFFIXES = {".parquet": "parquet", ".csv": "csv"}
#: The Parquet schema metadata key holding the manifest.
METADATA_KEY = b"sonic.manifest"


def manifest_beside(path: str | os.PathLike) -> Path:
    """``dir/name.parquet`` (or ``.csv``) -> ``dir/name.manifest.json``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.manifest.json")


def check_result_file(path: str | os.PathLike, artifact: str) -> Path:
    """Refuse, in one sentence, a ``path`` that a ``artifact`` table may not be written to.

    Allowed: a ``.parquet`` or ``.csv`` path that does not exist, or one holding sonic's earlier
    ``artifact`` output (and a manifest path that is free or sonic's own). Nothing is written.
    """
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise SonicError(f"output file '{path}' must end in .parquet or .csv, the two formats sonic writes")
    if path.is_dir():
        raise SonicError(f"output '{path}' is a folder; give a file name ending in .parquet or .csv")
    sidecar = manifest_beside(path)
    ours = _read_manifest(sidecar)
    if sidecar.exists() and (ours is None or ours.get("artifact") != artifact):
        raise SonicError(f"'{sidecar}' exists and is not the manifest of sonic's {artifact}; choose another --out")
    if path.exists() and not (_names(ours, path) or _parquet_says(path, artifact)):
        raise SonicError(
            f"'{path}' exists and was not written by sonic as {artifact}; choose another --out (nothing was changed)"
        )
    return path


def write_result_table(frame: pd.DataFrame, path: str | os.PathLike, manifest: dict[str, Any]) -> Path:
    """Write ``frame`` to ``path`` (Parquet or csv by suffix) and ``manifest`` beside it, each atomically.

    ``manifest["artifact"]`` names what the table is; :func:`check_result_file` is applied first.
    """
    path = check_result_file(path, manifest["artifact"])
    manifest = {**manifest, "file": path.name, "rows": len(frame), "columns": list(map(str, frame.columns))}
    if TABLE_SUFFIXES[path.suffix.lower()] == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = pa.Table.from_pandas(frame, preserve_index=False)
        arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                               METADATA_KEY: json.dumps(manifest, default=str).encode()})
        with atomic_path(path) as temporary:
            pq.write_table(arrow, temporary)
    else:
        with atomic_path(path) as temporary:
            frame.to_csv(temporary, index=False)
    write_json(manifest_beside(path), manifest)
    return path


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _names(manifest: dict[str, Any] | None, path: Path) -> bool:
    return manifest is not None and manifest.get("file") == path.name


def _parquet_says(path: Path, artifact: str) -> bool:
    """Whether ``path`` is a Parquet file whose schema metadata holds sonic's ``artifact`` manifest."""
    if path.suffix.lower() != ".parquet":
        return False
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
        manifest = json.loads(metadata.get(METADATA_KEY, b"{}"))
    except (OSError, ValueError, pa.ArrowException):
        return False
    return isinstance(manifest, dict) and manifest.get("artifact") == artifact
