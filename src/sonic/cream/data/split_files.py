"""Split folders: writing a :class:`~sonic.cream.data.splits.Split` to disk, reading it back, and its statistics.

This module owns the split folder's layout. A split folder holds ``train.parquet``, ``val.parquet``,
``test.parquet`` (and ``cold_test.parquet`` for protocols with a cold test), each with the columns
``user_id, track_id, timestamp, count`` (a part may also be a ``.pqt`` file); ``stats.csv``, the
journal's statistics table; and ``split.json``, the manifest (protocol, dates, seed, input file).
:func:`read_split_folder` is the one reader of that layout: every part's file and the manifest;
:func:`read_split` builds the :class:`~sonic.cream.data.splits.Split` from it. A folder is always written whole: into a hidden sibling, then renamed into place
(:func:`sonic.files.atomic_folder`), so a crash never leaves new Parquet files beside an old ``split.json``.
The folder is claimed first (:func:`split_folder`: kind ``split``, one writer, a read-only folder or a
full disk refused before any event is read); one holding anything a split does not write is refused.

:func:`split_file` splits a file of any size without loading it into pandas: DuckDB reads it
(:mod:`sonic.cream.data.stream`), plans the split (:mod:`sonic.cream.data.engine`) and copies each part
straight to Parquet; only the statistics come back to Python.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sonic.cream.data.events import load_events, load_track_ids
from sonic.cream.data.splits import PART_NAMES, PROTOCOLS, Split, SplitConfig
from sonic.cream.data.splitting import split_events
from sonic.cream.data.stream import DEFAULT_MEMORY_LIMIT
from sonic.errors import DataError
from sonic.files import (
    OutputFolder,
    atomic_folder,
    check_replaceable,
    output_folder,
    remove_temporaries,
    temporary_name,
    write_json,
)
from sonic.manifest import base_manifest

if TYPE_CHECKING:
    from sonic.cream.data.engine import SplitPlan

STATISTICS_LABELS = {"train": "Train", "val": "Val", "test": "HotTest", "cold_test": "ColdTest"}
STATISTICS_COLUMNS = (
    "Rows", "Users", "Items", "TracksMedian", "TracksMin", "TracksMax", "PlaysMedian", "PlaysMin", "PlaysMax",
)  # fmt: skip
MANIFEST_NAME = "split.json"
#: Suffixes of a part's events file, in the order looked for.
PART_SUFFIXES = (".parquet", ".pqt")
STATISTICS_NAME = "stats.csv"
SPLIT_FILES = frozenset({*(f"{name}.parquet" for name in PART_NAMES), MANIFEST_NAME, STATISTICS_NAME})
#: The kind of output folder a split is (:func:`sonic.files.output_folder`).
FOLDER_KIND = "split"


def split_folder(out_dir: str | os.PathLike) -> contextlib.AbstractContextManager[OutputFolder]:
    """Claim ``out_dir`` for a split (:func:`sonic.files.output_folder`, kind :data:`FOLDER_KIND`): new,
    empty, a split sonic wrote, or an older sonic's unmarked split (nothing but :data:`SPLIT_FILES`)."""
    return output_folder(out_dir, FOLDER_KIND, adopt=lambda entry: entry.name in SPLIT_FILES)


def _clean_leftovers(target: Path) -> None:
    """Remove what a killed split left beside ``target``: temporaries, and an older sonic's staging and work folders."""
    remove_temporaries(target.parent)
    for pattern in (f".{target.name}.staging-*", f".{target.name}.work-*"):
        for stale in target.parent.glob(pattern):
            shutil.rmtree(stale, ignore_errors=True)


@dataclass(frozen=True)
class WrittenSplit:
    """A split folder just written: where, by which config, and its statistics table (one row per part)."""

    directory: Path
    config: SplitConfig
    statistics: pd.DataFrame

    @property
    def parts(self) -> tuple[str, ...]:
        """The part names written, in order (``train``, ``val``, ``test``[, ``cold_test``])."""
        labels = {label: name for name, label in STATISTICS_LABELS.items()}
        return tuple(labels[label] for label in self.statistics.index)


def split_statistics(split: Split) -> pd.DataFrame:
    """The journal's table: a row per split (Train, Val, HotTest, ColdTest) and these columns.

    ``Rows``, ``Users``, ``Items``; tracks per user (``Tracks*``: median, min, max) and plays per user
    (``Plays*``: sum of ``count``). Medians are float64 (not rounded), everything else int64.
    """
    rows = {}
    for name, frame in split.parts.items():
        tracks = frame.groupby("user_id", observed=True).size()
        plays = frame.groupby("user_id", observed=True)["count"].sum()
        rows[STATISTICS_LABELS[name]] = [
            len(frame), frame["user_id"].nunique(), frame["track_id"].nunique(),
            tracks.median(), tracks.min(), tracks.max(), plays.median(), plays.min(), plays.max(),
        ]  # fmt: skip
    return _statistics_table(rows)


def _statistics_table(rows: dict[str, list]) -> pd.DataFrame:
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(STATISTICS_COLUMNS))
    integer = [c for c in STATISTICS_COLUMNS if not c.endswith("Median")]
    return table.astype({c: np.int64 for c in integer} | {"TracksMedian": np.float64, "PlaysMedian": np.float64})


def _sql_statistics(plan: SplitPlan) -> pd.DataFrame:
    """:func:`split_statistics` computed by DuckDB on a plan's parts (nothing fetched but the table)."""
    rows = {}
    for name in plan.relations:
        query = plan.query(name, ordered=False)
        rows[STATISTICS_LABELS[name]] = list(
            plan.con.execute(
                f"""
                WITH part AS ({query}),
                     per_user AS (SELECT user_id, count(*) AS tracks, CAST(sum(count) AS BIGINT) AS plays
                                  FROM part GROUP BY user_id)
                SELECT (SELECT count(*) FROM part), (SELECT count(DISTINCT user_id) FROM part),
                       (SELECT count(DISTINCT track_id) FROM part),
                       median(tracks), min(tracks), max(tracks), median(plays), min(plays), max(plays)
                FROM per_user
                """
            ).fetchall()[0]
        )
    return _statistics_table(rows)


def write_split(
    split: Split,
    out_dir: str | os.PathLike,
    *,
    input_path: str | os.PathLike | None = None,
    exclude_path: str | os.PathLike | None = None,
) -> Path:
    """Write ``<part>.parquet`` per split, ``stats.csv`` and the manifest ``split.json`` as the folder ``out_dir``.

    The folder is replaced whole and atomically (an earlier split's ``cold_test.parquet`` does not
    survive a split without one); a folder holding other files is refused. ``input_path`` and
    ``exclude_path`` are recorded in the manifest. Returns ``out_dir``.
    """
    with split_folder(out_dir) as claimed:
        _clean_leftovers(claimed.path)
        with atomic_folder(claimed.path, allowed=SPLIT_FILES, what="split") as staging:
            for name, frame in split.parts.items():
                frame.to_parquet(staging / f"{name}.parquet", index=False)
            _write_summary(staging, split.config, split_statistics(split), input_path, exclude_path)
    return Path(out_dir)


def _write_summary(
    directory: Path,
    config: SplitConfig,
    statistics: pd.DataFrame,
    input_path: str | os.PathLike | None,
    exclude_path: str | os.PathLike | None,
) -> None:
    statistics.to_csv(directory / STATISTICS_NAME, index_label="split")
    labels = {label: name for name, label in STATISTICS_LABELS.items()}
    parts = [labels[label] for label in statistics.index]
    manifest = base_manifest(
        "split",
        protocol=config.protocol,
        config=config.to_dict(),
        input=None if input_path is None else str(input_path),
        exclude_file=None if exclude_path is None else str(exclude_path),
        rows={labels[label]: int(row["Rows"]) for label, row in statistics.iterrows()},
        users={labels[label]: int(row["Users"]) for label, row in statistics.iterrows()},
        files=[*(f"{name}.parquet" for name in parts), STATISTICS_NAME],
    )
    write_json(directory / MANIFEST_NAME, manifest)


@dataclass(frozen=True)
class SplitFolder:
    """A split folder as found on disk: each part's events file and the manifest ``split.json``.

    ``paths`` maps a part's name (the file's stem: ``train``, ``val``, ``test``, ``cold_test``, or any
    other events file) to its ``.parquet`` (or ``.pqt``) file, sorted by name; ``settings`` is the
    manifest ({} when the folder has none).
    """

    directory: Path
    paths: dict[str, Path]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def parts(self) -> list[str]:
        """The names of the parts present, sorted."""
        return list(self.paths)

    def read(self, name: str) -> pd.DataFrame:
        """The events of part ``name`` (:func:`~sonic.cream.data.events.load_events`); a part the folder
        lacks is a :class:`DataError`."""
        if name not in self.paths:
            raise DataError(f"split folder '{self.directory}' has no {name}.parquet; write it with `sonic data-split`")
        return load_events(self.paths[name])

    @property
    def config(self) -> SplitConfig:
        """The :class:`SplitConfig` of the manifest; a folder without one, or a damaged one, is a :class:`DataError`."""
        manifest_path = self.directory / MANIFEST_NAME
        if not manifest_path.is_file():
            raise DataError(f"split folder '{self.directory}' has no {MANIFEST_NAME}; write it with `sonic data-split`")
        try:
            return SplitConfig.from_dict(self.settings["config"])
        except (ValueError, KeyError, TypeError) as error:
            raise DataError(f"'{manifest_path}' is not a split manifest ({type(error).__name__}: {error})") from None


def read_split_folder(directory: str | os.PathLike) -> SplitFolder:
    """Find the parts and read the manifest of the split folder ``directory`` (no events are loaded).

    A missing folder, or a ``split.json`` that is not JSON, is a :class:`DataError`.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"split folder '{directory}' does not exist; write one with `sonic data-split`")
    paths: dict[str, Path] = {}
    for suffix in reversed(PART_SUFFIXES):  # a .parquet file wins over a .pqt file of the same part
        paths |= {path.name.split(".")[0]: path for path in directory.iterdir() if path.suffix == suffix}
    manifest_path = directory / MANIFEST_NAME
    settings = {}
    if manifest_path.is_file():
        try:
            settings = json.loads(manifest_path.read_text())
        except ValueError as error:
            raise DataError(f"'{manifest_path}' is not a split manifest ({type(error).__name__}: {error})") from None
    return SplitFolder(directory, dict(sorted(paths.items())), settings)


def read_split(directory: str | os.PathLike) -> Split:
    """Read a split written by :func:`write_split`; a missing folder or file is a :class:`DataError`."""
    folder = read_split_folder(directory)
    config = folder.config
    names = PART_NAMES if config.keep_cold else PART_NAMES[:-1]
    for name in names:
        if name not in folder.paths:
            raise DataError(
                f"split folder '{folder.directory}' has no {name}.parquet, which {config.protocol} splits need"
            )
    return Split(config=config, **{name: folder.read(name) for name in names})


def split_file(
    interactions: str | os.PathLike,
    config: SplitConfig,
    out_dir: str | os.PathLike,
    *,
    exclude_file: str | os.PathLike | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> WrittenSplit:
    """Split the events in ``interactions`` (any size) without the tracks in ``exclude_file``; write ``out_dir``.

    The file is streamed by DuckDB, capped at ``memory_limit`` (a DuckDB size such as ``"4GB"``; it
    spills to a work folder beside ``out_dir`` beyond that), and each part is copied straight to
    Parquet: the same rows, in the same order, as :func:`~sonic.cream.data.splitting.split_events` on the
    loaded frame. The folder is replaced atomically; nothing is written when a check fails.
    """
    from sonic.cream.data.engine import plan_split, register_excluded
    from sonic.cream.data.stream import check_events, connect, open_events

    with split_folder(out_dir) as claimed:  # before any event is read
        target = claimed.path
        check_replaceable(target, SPLIT_FILES, "split")
        if PROTOCOLS[config.protocol].splitter is not None:  # not a time split: its own module, in memory
            excluded = None if exclude_file is None else load_track_ids(exclude_file)
            split = split_events(load_events(interactions), config, exclude_tracks=excluded)
            write_split(split, out_dir, input_path=interactions, exclude_path=exclude_file)
            return WrittenSplit(Path(out_dir), config, split_statistics(split))
        excluded = None if exclude_file is None else load_track_ids(exclude_file)
        _clean_leftovers(target)
        work = temporary_name(target.with_name(f"{target.name}.work"))  # DuckDB spills here, beside the folder
        work.mkdir()
        try:
            con = connect(work, memory_limit=memory_limit)
            try:
                source = open_events(interactions, con)
                check_events(con, source)
                if excluded is not None:
                    register_excluded(con, excluded)
                plan = plan_split(con, source, config, excluded=excluded is not None)
                statistics = _sql_statistics(plan)
                with atomic_folder(target, allowed=SPLIT_FILES, what="split") as staging:
                    for name in plan.relations:
                        destination = str(staging / f"{name}.parquet").replace("'", "''")
                        con.execute(f"COPY ({plan.query(name)}) TO '{destination}' (FORMAT parquet, COMPRESSION zstd)")
                    _write_summary(staging, config, statistics, interactions, exclude_file)
            finally:
                con.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return WrittenSplit(Path(out_dir), config, statistics)
