"""Fusion: several embedding tables joined by ``track_id`` into one ordinary embedding table.

A fused name joins table names with ``+``: ``mert-v1-330m+lyrics``, ``mfcc_104+metadata``. Each part
is a *block* of the fused vector, in the order named:

1. every table is read and its rows are matched **by track id**, never by position (the published
   code reset the table index when appending lyrics or metadata, attaching vectors to the wrong
   tracks: REFERENCE.md §3);
2. each block is normalised on its own (:data:`NORMALISATIONS`): ``l2`` scales each vector to unit
   length, ``zscore`` centres and scales each column over the block's tracks (a constant column
   gives 0), ``none`` leaves it; then multiplied by its weight (1 by default);
3. a track missing from some blocks follows :data:`MISSING_POLICIES`: ``drop`` (only tracks in every
   table), ``zeros`` (the missing block is zeros) or ``mean`` (the missing block is the mean of that
   block's normalised vectors); a track in no table at all is never invented.

The result (sorted by track id) has the usual format; its manifest lists the parts (name, path,
dim, rows, weight, normalisation, the parts' own manifests), the policy and how many tracks each
block lacked. :func:`fuse_tables` reads the parts from an embeddings folder and, given ``out_dir``,
writes the fused table there as ``<name>.parquet``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sonic.errors import DataError, SonicError
from sonic.manifest import base_manifest
from sonic.tails.table import EmbeddingTable, embeddings_folder, read_embeddings, write_embeddings

NORMALISATIONS = ("l2", "zscore", "none")
MISSING_POLICIES = ("drop", "zeros", "mean")
#: Joins the parts of a fused name.
SEPARATOR = "+"


@dataclass(frozen=True)
class FusionConfig:
    """How blocks are combined: one normalisation (or one per block), weights per block, the missing policy."""

    normalisation: str | tuple[str, ...] = "l2"
    weights: tuple[float, ...] | None = None
    missing: str = "drop"

    def per_block(self, n_blocks: int) -> tuple[list[str], list[float]]:
        """The normalisation and the weight of each of ``n_blocks`` blocks (checked)."""
        norms = [self.normalisation] * n_blocks if isinstance(self.normalisation, str) else list(self.normalisation)
        weights = [1.0] * n_blocks if self.weights is None else [float(w) for w in self.weights]
        if len(norms) != n_blocks or len(weights) != n_blocks:
            raise SonicError(
                f"fusion of {n_blocks} tables needs one normalisation (or {n_blocks}) and {n_blocks} weights; "
                f"got {len(norms)} normalisations and {len(weights)} weights"
            )
        for norm in norms:
            if norm not in NORMALISATIONS:
                raise SonicError(f"unknown fusion normalisation {norm!r}; known: {', '.join(NORMALISATIONS)}")
        if not all(np.isfinite(w) and w >= 0 for w in weights) or not any(weights):
            raise SonicError(f"fusion weights must be finite, >= 0 and not all 0; got {weights}")
        if self.missing not in MISSING_POLICIES:
            raise SonicError(f"unknown policy for a track missing a block {self.missing!r}; "
                             f"known: {', '.join(MISSING_POLICIES)}")
        return norms, weights


def split_name(name: str) -> list[str]:
    """``"mfcc_104+lyrics"`` -> ``["mfcc_104", "lyrics"]``; a fused name has at least two distinct parts."""
    parts = [part.strip() for part in name.split(SEPARATOR)]
    if len(parts) < 2 or not all(parts) or len(set(parts)) != len(parts):
        raise SonicError(f"fused embedding name {name!r} must join two or more distinct table names with "
                         f"'{SEPARATOR}', e.g. mfcc_104{SEPARATOR}lyrics")
    return parts


def is_fused(name: str) -> bool:
    """Whether ``name`` names a fusion (contains ``+``)."""
    return SEPARATOR in str(name)


def fuse(
    tables: Sequence[EmbeddingTable], names: Sequence[str], config: FusionConfig = FusionConfig()
) -> EmbeddingTable:
    """``tables`` fused block by block (see the module docstring); ``names`` label the blocks.

    Each table is first put in track-id order, so column statistics (``zscore``, ``mean``) are summed
    in one order whatever the order of the rows on disk: the same tables shuffled give identical bits.
    """
    if len(tables) < 2 or len(names) != len(tables):
        raise SonicError(f"fusion needs two or more tables, each with a name; got {len(tables)} and {len(names)} names")
    norms, weights = config.per_block(len(tables))
    tables = [_sorted(table) for table in tables]
    ids = np.unique(np.concatenate([table.track_ids.astype(str) for table in tables]))
    rows, found = zip(*(table.lookup(ids) for table in tables))
    in_all = np.logical_and.reduce(found)
    keep = in_all if config.missing == "drop" else np.ones(len(ids), dtype=bool)
    if not keep.any():
        raise DataError(f"tables {', '.join(names)} share no track_id, so dropping incomplete tracks leaves nothing; "
                        f"use missing='zeros' or 'mean' to keep them")
    blocks, parts = [], []
    for table, name, norm, weight, row, has in zip(tables, names, norms, weights, rows, found):
        block = normalise(table.vectors.astype(np.float64), norm)
        filled = np.zeros((len(ids), table.dim))
        filled[has] = block[row[has]]
        if config.missing == "mean":
            filled[~has] = block.mean(axis=0)
        blocks.append(weight * filled[keep])
        parts.append({
            "name": name, "dim": table.dim, "rows": len(table.track_ids), "weight": weight, "normalisation": norm,
            "tracks_missing": int((~has).sum()), "tracks_missing_kept": int((~has & keep).sum()),
            "manifest": table.manifest,
        })
    manifest = base_manifest(
        "embedding table",
        name=SEPARATOR.join(names),
        fusion={
            "parts": parts,
            "join": "track_id",
            "missing": config.missing,
            "tracks": {"in_any_table": int(len(ids)), "in_every_table": int(in_all.sum()),
                       "dropped": int((~keep).sum()), "in_fused_table": int(keep.sum())},
        },
        dim=int(sum(table.dim for table in tables)),
    )
    return EmbeddingTable(track_ids=ids[keep], vectors=np.hstack(blocks).astype(np.float32), manifest=manifest)


def _sorted(table: EmbeddingTable) -> EmbeddingTable:
    ids = table.track_ids.astype(str)
    order = np.argsort(ids, kind="stable")
    return EmbeddingTable(track_ids=ids[order], vectors=table.vectors[order], manifest=table.manifest)


def normalise(vectors: np.ndarray, how: str) -> np.ndarray:
    """``vectors`` (n, dim) normalised per row (``l2``), per column (``zscore``), or as they are (``none``)."""
    if how == "l2":
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)
    if how == "zscore":
        std = vectors.std(axis=0)
        return np.divide(vectors - vectors.mean(axis=0), std, out=np.zeros_like(vectors), where=std > 0)
    if how == "none":
        return vectors
    raise SonicError(f"unknown fusion normalisation {how!r}; known: {', '.join(NORMALISATIONS)}")


def fuse_tables(
    names_or_paths: str | Sequence[str | os.PathLike],
    embeddings_dir: str | os.PathLike | None = None,
    *,
    config: FusionConfig = FusionConfig(),
    out_dir: str | os.PathLike | None = None,
) -> EmbeddingTable:
    """The fused table of ``names_or_paths``: a fused name (``"mfcc_104+lyrics"``) or a list of parts.

    A part is a table name (``<embeddings_dir>/<name>.parquet``) or the path of a ``.parquet`` file.
    With ``out_dir`` (an embeddings folder, :func:`sonic.tails.table.embeddings_folder`) the result is
    also written there (atomically) as ``<fused name>.parquet`` with its manifest. Used by
    ``run-model --embedding a+b`` and by the study.
    """
    parts = split_name(names_or_paths) if isinstance(names_or_paths, str) else [str(p) for p in names_or_paths]
    if len(parts) < 2:
        raise SonicError(f"fusion needs two or more tables, got {parts}")
    paths = [_table_path(part, embeddings_dir) for part in parts]
    names = [path.name.removesuffix(".parquet") for path in paths]
    fused = fuse([read_embeddings(path) for path in paths], names, config)
    for part, path in zip(fused.manifest["fusion"]["parts"], paths):
        part["path"] = str(path.resolve())
    if out_dir is not None:
        with embeddings_folder(out_dir):
            write_embeddings(fused, Path(out_dir) / f"{SEPARATOR.join(names)}.parquet")
    return fused


def _table_path(part: str, embeddings_dir: str | os.PathLike | None) -> Path:
    if part.endswith(".parquet"):
        return Path(part)
    if embeddings_dir is None:
        raise SonicError(f"embedding {part!r} is a name: give the embeddings folder that holds {part}.parquet")
    path = Path(embeddings_dir) / f"{part}.parquet"
    if not path.is_file():
        found = sorted(p.name.removesuffix(".parquet") for p in Path(embeddings_dir).glob("*.parquet"))
        raise DataError(f"no embedding table {part!r} in '{embeddings_dir}'; found: {', '.join(found) or 'none'}")
    return path


def describe_parts(table: EmbeddingTable) -> list[dict[str, Any]]:
    """The parts a fused table's manifest lists ([] for a table that is not a fusion)."""
    return list(table.manifest.get("fusion", {}).get("parts", []))
