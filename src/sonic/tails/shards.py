"""Shards: the embedding runner's results on disk as it goes, so a killed run loses little.

``<out>/<name>.shards/NNNNN.parquet`` holds the results of inputs ``NNNNN * size`` .. ``+size``
(columns ``position``, ``embedding`` fixed-size ``list<float32>``, ``reason``: null for a vector,
else why the input could not be used), written atomically. Each shard carries a key (schema
metadata ``sonic.shard_key``): a sha256 of what made it (the embedder's description, its dimension,
the window, the shard's inputs and their fingerprints). A rerun reuses a shard whose key matches
and recomputes any other, so changed inputs or options never mix with old results.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sonic.files import atomic_path, remove_temporaries

_KEY = b"sonic.shard_key"


@dataclass(frozen=True)
class Shard:
    """Results of consecutive inputs: ``positions`` (n,) int64, ``vectors`` (n, dim) float32 (zeros where
    failed), ``reasons`` (None where embedded)."""

    positions: np.ndarray
    vectors: np.ndarray
    reasons: list[str | None]


def shard_key(run: dict[str, Any], items: list[tuple]) -> str:
    """The key of a shard: sha256 of the run's parameters and its inputs' (track id, fingerprint)."""
    text = json.dumps({"run": run, "items": items}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ShardStore:
    """The shard files of one table, in ``folder``."""

    def __init__(self, folder: str | Path, dim: int) -> None:
        self.folder, self.dim = Path(folder), dim

    def path(self, index: int) -> Path:
        return self.folder / f"{index:05d}.parquet"

    def has(self, index: int, key: str) -> bool:
        """Whether shard ``index`` exists, is readable and was made with ``key``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            metadata = pq.read_schema(self.path(index)).metadata or {}
        except (OSError, pa.ArrowException):
            return False
        return metadata.get(_KEY) == key.encode()

    def read(self, index: int) -> Shard:
        import pyarrow.parquet as pq

        table = pq.read_table(self.path(index))
        vectors = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return Shard(
            positions=table.column("position").to_numpy(),
            vectors=vectors.reshape(table.num_rows, self.dim),
            reasons=table.column("reason").to_pylist(),
        )

    def write(self, index: int, key: str, shard: Shard) -> Path:
        """Write shard ``index`` atomically, with its key."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        vectors = np.ascontiguousarray(shard.vectors, dtype=np.float32)
        table = pa.table(
            {
                "position": pa.array(shard.positions, type=pa.int64()),
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), self.dim),
                "reason": pa.array(shard.reasons, type=pa.string()),
            }
        ).replace_schema_metadata({_KEY: key.encode()})
        with atomic_path(self.path(index)) as temporary:
            pq.write_table(table, temporary)
        return self.path(index)

    def count(self) -> int:
        """How many shard files the folder holds."""
        return len(list(self.folder.glob("[0-9]*.parquet"))) if self.folder.is_dir() else 0

    def clean(self) -> None:
        """Remove what killed writers left half-written (their temporaries)."""
        remove_temporaries(self.folder, legacy=(".parquet.tmp",))

    def remove(self) -> None:
        """Remove every shard (once the table they made is written)."""
        shutil.rmtree(self.folder, ignore_errors=True)
