"""What the embedding runner's paths share (:mod:`sonic.tails.runner`, :mod:`sonic.tails.audio_pass`):
the result of a table, its manifest and ``plan_key``, the one sentence for a stopped run, and the
writing of a table, its manifest and failures file from its shards."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sonic.cream.audio import write_failures
from sonic.errors import AudioError, Interrupted, SonicError
from sonic.files import OutputFolderError, is_user_os_error, os_error_message
from sonic.manifest import base_manifest
from sonic.tails.base import Embedder
from sonic.tails.neural import declared_precision
from sonic.tails.shard_work import ShardPlan
from sonic.tails.shards import ShardStore
from sonic.tails.sources import Source
from sonic.tails.table import EmbeddingTable, manifest_path, write_embeddings

#: Inputs per ``embed`` call (and the most inputs in one task sent to a worker).
DEFAULT_BATCH_SIZE = 16
#: Inputs per shard written to disk.
DEFAULT_SHARD_SIZE = 256


@dataclass(frozen=True)
class EmbedResult:
    """What :func:`embed_folder` wrote and how it went."""

    table_path: Path
    manifest_path: Path
    failures_path: Path
    n_embedded: int
    n_failed: int
    n_reused: int  # inputs whose results an earlier, interrupted run had already written
    failures: tuple[tuple[str, str], ...]  # (input's name, reason), sorted by name
    elapsed_seconds: float
    skipped: bool = False  # the table was already complete from the same inputs and settings: left as it was

    @property
    def tracks_per_second(self) -> float:
        """Inputs handled (embedded or failed) per second of wall time."""
        return (self.n_embedded + self.n_failed) / max(self.elapsed_seconds, 1e-9)


@contextlib.contextmanager
def stopped_in_one_sentence(parts: list[tuple[ShardStore, ShardPlan, str]], out_dir: Path) -> Iterator[None]:
    """Ctrl-C, or a disk that fills up, in the block: one sentence saying how many shards of each
    ``(store, plan, name)`` of ``parts`` are kept (counted on disk, so a shard written just before counts)
    and that a rerun continues."""

    def kept() -> str:
        counts = [f"{sum(store.has(index, key) for index, key in enumerate(plan.keys))} of {len(plan.ranges)} "
                  f"shards of {name}" for store, plan, name in parts]  # fmt: skip
        return f"{', '.join(counts)} are kept in '{out_dir}'; run the same command again to continue"

    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(kept()) from None
    except OSError as error:
        if not is_user_os_error(error):
            raise
        raise OutputFolderError(f"{os_error_message(error, out_dir)}; {kept()}") from None


def table_manifest(embedder: Embedder, model_type: str | Embedder, model_options: dict[str, Any] | None,
                   source: Source, plan: ShardPlan, *, window: tuple[float, float | None], batch_size: int,
                   shard_size: int, engine: str, exclude: str | os.PathLike | None) -> dict[str, Any]:
    """What a table's manifest says of the run that made it (:func:`write_outputs` adds the counts).

    ``plan_key`` (:func:`plan_key`) tells a later run whether this table is already the one it would make.
    """
    described = embedder.describe()
    return {
        **described,
        **({} if "precision" in described or getattr(embedder, "device", None) is None
           else {"precision": declared_precision(embedder)}),  # fmt: skip
        "embedder": embedder.name,
        **({"requested_as": model_type} if isinstance(model_type, str) and model_type != embedder.name else {}),
        "options": dict(model_options or {}) if isinstance(model_type, str) else None,  # to build it again
        "modality": embedder.modality,
        "dim": embedder.dim,
        "sample_rate": embedder.sample_rate,
        "window": {"offset_seconds": window[0], "duration_seconds": window[1]},
        **_resampler(embedder),
        "batch_size": batch_size,
        "shard_size": shard_size,
        "engine": engine,
        "exclude_file": None if exclude is None else str(Path(exclude).resolve()),
        "plan_key": plan_key(plan),
        **source.manifest,
    }


def plan_key(plan: ShardPlan) -> str:
    """sha256 of every shard's key (embedder, window, inputs and their fingerprints) and the versions of
    sonic and the libraries that shape its numbers (:func:`sonic.manifest.package_versions`; the same
    whatever this process has imported, so a table made in a pass is found complete by a run alone)."""
    import hashlib
    import json

    from sonic.manifest import package_versions

    text = json.dumps({"shards": plan.keys, "versions": package_versions()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


#: The modalities read from audio files (one pass decodes each file once for all of them).
AUDIO_INPUTS = ("audio", "image")


def modality_of(model_type: str | Embedder) -> str:
    """The modality of a registered name (from the catalogue, nothing built) or of an embedder."""
    if isinstance(model_type, str):
        from sonic.tails.base import info

        return info(model_type).modality
    return model_type.modality


def check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise SonicError(f"{name.replace('_', ' ')} must be a positive integer, got {value!r}")


def _resampler(embedder: Embedder) -> dict[str, Any]:
    if embedder.modality not in ("audio", "image"):
        return {}
    import soxr

    from sonic.cream.audio import RESAMPLE_QUALITY

    return {"resampler": f"soxr {soxr.__version__}, quality {RESAMPLE_QUALITY}", "channels": "mono (mean)"}


def write_outputs(
    embedder: Embedder,
    source: Source,
    store: ShardStore,
    plan: ShardPlan,
    out_dir: Path,
    *,
    manifest: dict[str, Any],
    n_reused: int,
) -> dict[str, Any]:
    """Gather the shards; write the failures csv, then the table and its manifest; raise if nothing was embedded."""
    track_ids, vectors, failures = [], [], list(source.failures)
    for index in range(len(plan.ranges)):
        shard = store.read(index)
        ok = np.array([reason is None for reason in shard.reasons], dtype=bool)
        for position, reason in zip(shard.positions, shard.reasons):
            if reason is None:
                track_ids.append(source.items[position].track_id)
            else:
                failures.append((source.items[position].name, reason))
        vectors.append(shard.vectors[ok])
    failures.sort()
    failures_path = write_failures(out_dir / f"{embedder.name}.failures.csv", failures)
    if not track_ids:
        raise AudioError(
            f"none of the {len(failures)} {source.what} {source.where} could be embedded; "
            f"the reasons are in '{failures_path}'"
        )
    manifest = base_manifest(
        "embeddings",
        **manifest,
        n_inputs=len(source.items) + len(source.failures) + source.n_excluded,
        n_embedded=len(track_ids),
        n_failed=len(failures),
        n_excluded=source.n_excluded,
        n_reused=n_reused,
        failures_file=failures_path.name,
    )
    manifest["versions"].update(_model_versions())
    table = EmbeddingTable(np.asarray(track_ids, dtype=str), np.concatenate(vectors), manifest)
    table_path = write_embeddings(table, out_dir / f"{embedder.name}.parquet")
    return {
        "table_path": table_path,
        "manifest_path": manifest_path(table_path),
        "failures_path": failures_path,
        "n_embedded": len(track_ids),
        "n_failed": len(failures),
        "failures": tuple(failures),
    }


def _model_versions() -> dict[str, str]:
    """Versions of the model libraries this process has loaded (torch, transformers...)."""
    import sys
    from importlib import metadata

    versions = {}
    for module, package in (("torch", "torch"), ("transformers", "transformers"), ("timm", "timm"),
                            ("sentence_transformers", "sentence-transformers"), ("safetensors", "safetensors")):
        if module in sys.modules:
            with contextlib.suppress(metadata.PackageNotFoundError):
                versions[package] = metadata.version(package)
    return versions
