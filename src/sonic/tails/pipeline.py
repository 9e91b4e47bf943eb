"""Embed every audio file under a folder into one embedding table.

:func:`embed_folder` walks a folder, decodes the files in worker processes (and, for an
embedder that declares ``runs_in_workers = True``, embeds them there too, so that only
vectors travel back), and writes ``<out>/<name>.parquet`` with its manifest. A file that
cannot be used is skipped and listed in ``<out>/<name>.failures.csv`` (columns ``path``,
``reason``); it never stops the run.

Track ids (:func:`sonic.cream.audio.track_id`) are file paths relative to the folder, without
extension, with ``/`` between folders: ``audios/abc123.mp3`` under ``audios`` is ``abc123``;
``album/track.ogg`` is ``album/track``. When two files give the same id (``a.mp3`` and
``a.ogg``), the first in sorted path order is embedded and the others are listed as failures naming it.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sonic.cream.audio import AUDIO_EXTENSIONS, find_audio_files, track_id
from sonic.errors import AudioError, SonicError
from sonic.manifest import base_manifest
from sonic.parallel import progress_bar, worker_count
from sonic.tails.base import EMBEDDERS, Embedder
from sonic.tails.table import EmbeddingTable, manifest_path, write_embeddings
from sonic.tails.workers import DecodeJob, task_outcomes

#: Waveforms per ``embed`` call (and the most files in one task sent to a worker).
DEFAULT_BATCH_SIZE = 16


@dataclass(frozen=True)
class EmbedResult:
    """What :func:`embed_folder` wrote and how it went."""

    table_path: Path
    manifest_path: Path
    failures_path: Path
    n_embedded: int
    n_failed: int
    failures: tuple[tuple[str, str], ...]  # (path relative to the audio folder, reason), sorted by path
    elapsed_seconds: float

    @property
    def tracks_per_second(self) -> float:
        """Files handled (embedded or failed) per second of wall time."""
        return (self.n_embedded + self.n_failed) / max(self.elapsed_seconds, 1e-9)


@dataclass(frozen=True)
class _Plan:
    """The files found under the audio folder and which of them to embed."""

    paths: list[Path]  # every audio file, sorted
    relative: list[str]  # their paths relative to the folder, POSIX
    track_ids: list[str]
    todo: list[int]  # indices of the files to embed
    duplicates: list[tuple[str, str]]  # (relative path, reason) of files whose id an earlier file has

    @property
    def n_excluded(self) -> int:
        return len(self.paths) - len(self.todo) - len(self.duplicates)


def embed_folder(
    audio_dir: str | os.PathLike,
    model_type: str | Embedder,
    out_dir: str | os.PathLike,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_workers: int | None = None,
    offset_seconds: float = 0.0,
    duration_seconds: float | None = None,
    exclude: str | os.PathLike | None = None,
    progress: bool = True,
) -> EmbedResult:
    """Embed every audio file under ``audio_dir`` with ``model_type``; write the table to ``out_dir``.

    ``model_type`` is a registered name (``"mfcc_104"``) or an embedder. ``num_workers``
    processes decode in parallel (default: one per CPU; 0 or 1: all in this process).
    Only the window ``offset_seconds`` .. ``+duration_seconds`` of each file is used
    (None: to the end). ``exclude`` is a csv or Parquet file whose ``track_id`` column
    lists tracks to skip. Raises :class:`SonicError` for an unknown model, a folder with
    no audio, or when no file could be embedded (the failures csv is written first).
    """
    started = time.perf_counter()
    embedder: Embedder = EMBEDDERS.create(model_type) if isinstance(model_type, str) else model_type
    workers = _check_options(batch_size, num_workers, offset_seconds, duration_seconds)
    audio_dir, out_dir = Path(audio_dir), Path(out_dir)
    plan = _plan(audio_dir, exclude)
    job = DecodeJob(embedder.sample_rate, offset_seconds, duration_seconds, _embeds_in_workers(embedder, workers))

    vectors = np.zeros((len(plan.paths), embedder.dim), dtype=np.float32)
    done = np.zeros(len(plan.paths), dtype=bool)
    failures = list(plan.duplicates)
    waiting: list[tuple[int, np.ndarray]] = []  # decoded, to embed here in batches
    items = [(i, str(plan.paths[i])) for i in plan.todo]
    with progress_bar(len(items), f"embedding with {embedder.name}", progress, unit="track") as bar:
        for outcomes in task_outcomes(job, items, workers=workers, batch_size=batch_size, embedder=embedder):
            for index, payload, reason in outcomes:
                if reason is not None:
                    failures.append((plan.relative[index], reason))
                elif job.embed_here:
                    vectors[index], done[index] = payload, True
                else:
                    waiting.append((index, payload))
            while len(waiting) >= batch_size:
                _embed_here(embedder, waiting[:batch_size], vectors, done)
                waiting = waiting[batch_size:]
            bar.update(len(outcomes))
            bar.set_postfix(failed=len(failures), refresh=False)
        _embed_here(embedder, waiting, vectors, done)

    return _write_outputs(
        embedder,
        plan,
        out_dir,
        audio_dir=audio_dir,
        vectors=vectors,
        done=done,
        failures=sorted(failures),
        window={"offset_seconds": offset_seconds, "duration_seconds": duration_seconds},
        exclude=exclude,
        started=started,
    )


def _check_options(
    batch_size: int, num_workers: int | None, offset_seconds: float, duration_seconds: float | None
) -> int:
    """Validate the options; return the number of worker processes (0: work in this process)."""
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise SonicError(f"batch size must be a positive integer, got {batch_size!r}")
    if not offset_seconds >= 0:
        raise SonicError(f"offset must be >= 0 seconds, got {offset_seconds!r}")
    if duration_seconds is not None and not duration_seconds > 0:
        raise SonicError(f"duration must be > 0 seconds (or None for the whole file), got {duration_seconds!r}")
    return worker_count(num_workers)


def _plan(audio_dir: Path, exclude: str | os.PathLike | None) -> _Plan:
    """Find the audio files, give them track ids, and drop duplicates and excluded tracks."""
    paths = find_audio_files(audio_dir)
    if not paths:
        raise AudioError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under '{audio_dir}'")
    relative = [path.relative_to(audio_dir).as_posix() for path in paths]
    track_ids = [track_id(path, audio_dir) for path in paths]
    first: dict[str, str] = {}
    duplicates = []
    for name, track in zip(relative, track_ids):
        if track in first:
            duplicates.append((name, f"duplicate track_id '{track}': '{first[track]}' has the same id and is used"))
        else:
            first[track] = name
    excluded = _read_exclude(exclude) if exclude is not None else set()
    todo = [i for i, track in enumerate(track_ids) if first[track] == relative[i] and track not in excluded]
    if not todo:
        raise SonicError(
            f"nothing to embed: all {len(paths)} audio files under '{audio_dir}' are excluded by '{exclude}'"
        )
    return _Plan(paths, relative, track_ids, todo, duplicates)


def _read_exclude(path: str | os.PathLike) -> set[str]:
    """Track ids in the ``track_id`` column of a csv / tsv / Parquet file (as ``sonic data-split`` reads them)."""
    from sonic.cream.data import load_track_ids

    return set(load_track_ids(path))


def _embeds_in_workers(embedder: Embedder, workers: int) -> bool:
    """Embed where decoded: always when working in this process; in workers if the embedder allows it."""
    return workers == 0 or bool(getattr(embedder, "runs_in_workers", False))


def _embed_here(
    embedder: Embedder, waiting: list[tuple[int, np.ndarray]], vectors: np.ndarray, done: np.ndarray
) -> None:
    """Embed decoded waveforms as one batch in this process."""
    if waiting:
        rows = [index for index, _ in waiting]
        vectors[rows] = embedder.embed([waveform for _, waveform in waiting])
        done[rows] = True


def _write_outputs(
    embedder: Embedder,
    plan: _Plan,
    out_dir: Path,
    *,
    audio_dir: Path,
    vectors: np.ndarray,
    done: np.ndarray,
    failures: list[tuple[str, str]],
    window: dict[str, float | None],
    exclude: str | os.PathLike | None,
    started: float,
) -> EmbedResult:
    """Write the failures csv, then the table and its manifest; raise if nothing was embedded."""
    out_dir.mkdir(parents=True, exist_ok=True)
    failures_path = out_dir / f"{embedder.name}.failures.csv"
    with open(failures_path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["path", "reason"])
        writer.writerows(failures)
    n_embedded = int(done.sum())
    if n_embedded == 0:
        raise AudioError(
            f"none of the {len(failures)} audio files under '{audio_dir}' could be embedded; "
            f"the reasons are in '{failures_path}'"
        )
    manifest = base_manifest(
        "embeddings",
        **embedder.describe(),
        dim=embedder.dim,
        window=window,
        audio_dir=str(audio_dir.resolve()),
        track_id="file path relative to audio_dir, without extension, '/' between folders",
        n_embedded=n_embedded,
        n_failed=len(failures),
        n_excluded=plan.n_excluded,
        exclude_file=None if exclude is None else str(Path(exclude).resolve()),
        failures_file=failures_path.name,
    )
    track_ids = np.asarray(plan.track_ids, dtype=object)[done].astype(str)
    table = EmbeddingTable(track_ids, vectors[done], manifest)
    table_path = write_embeddings(table, out_dir / f"{embedder.name}.parquet")
    return EmbedResult(
        table_path=table_path,
        manifest_path=manifest_path(table_path),
        failures_path=failures_path,
        n_embedded=n_embedded,
        n_failed=len(failures),
        failures=tuple(failures),
        elapsed_seconds=time.perf_counter() - started,
    )
