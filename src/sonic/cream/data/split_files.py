"""Split folders: writing a :class:`~sonic.cream.data.splits.Split` to disk, reading it back, and its statistics.

A split folder holds ``train.parquet``, ``val.parquet``, ``test.parquet`` (and ``cold_test.parquet``
for protocols with a cold test), each with the columns ``user_id, track_id, timestamp, count``;
``stats.csv``, the journal's statistics table; and ``split.json``, the manifest (protocol, dates,
seed, input file).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from sonic.cream.data.events import load_events, load_track_ids
from sonic.cream.data.splits import PART_NAMES, Split, SplitConfig, split_events
from sonic.errors import DataError
from sonic.manifest import base_manifest, write_json

STATISTICS_LABELS = {"train": "Train", "val": "Val", "test": "HotTest", "cold_test": "ColdTest"}
STATISTICS_COLUMNS = (
    "Rows", "Users", "Items", "TracksMedian", "TracksMin", "TracksMax", "PlaysMedian", "PlaysMin", "PlaysMax",
)  # fmt: skip
MANIFEST_NAME = "split.json"
STATISTICS_NAME = "stats.csv"


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
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(STATISTICS_COLUMNS))
    integer = [c for c in STATISTICS_COLUMNS if not c.endswith("Median")]
    return table.astype({c: np.int64 for c in integer} | {"TracksMedian": np.float64, "PlaysMedian": np.float64})


def write_split(
    split: Split,
    out_dir: str | os.PathLike,
    *,
    input_path: str | os.PathLike | None = None,
    exclude_path: str | os.PathLike | None = None,
) -> Path:
    """Write ``<part>.parquet`` per split, ``stats.csv`` and the manifest ``split.json`` into ``out_dir``.

    ``input_path`` and ``exclude_path`` are recorded in the manifest. A ``cold_test.parquet`` left in
    ``out_dir`` by an earlier split is removed when this split has none. Returns ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for name, frame in split.parts.items():
        frame.to_parquet(out_dir / f"{name}.parquet", index=False)
        files.append(f"{name}.parquet")
    if split.cold_test is None:
        (out_dir / "cold_test.parquet").unlink(missing_ok=True)
    split_statistics(split).to_csv(out_dir / STATISTICS_NAME, index_label="split")
    manifest = base_manifest(
        "split",
        protocol=split.config.protocol,
        config=split.config.to_dict(),
        input=None if input_path is None else str(input_path),
        exclude_file=None if exclude_path is None else str(exclude_path),
        rows={name: len(frame) for name, frame in split.parts.items()},
        users={name: int(frame["user_id"].nunique()) for name, frame in split.parts.items()},
        files=[*files, STATISTICS_NAME],
    )
    write_json(out_dir / MANIFEST_NAME, manifest)
    return out_dir


def read_split(directory: str | os.PathLike) -> Split:
    """Read a split written by :func:`write_split`; a missing folder or file is a :class:`DataError`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"split folder '{directory}' does not exist; write one with `sonic data-split`")
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        raise DataError(f"split folder '{directory}' has no {MANIFEST_NAME}; write it with `sonic data-split`")
    try:
        config = SplitConfig.from_dict(json.loads(manifest_path.read_text())["config"])
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(f"'{manifest_path}' is not a split manifest ({type(error).__name__}: {error})") from None
    names = PART_NAMES if config.keep_cold else PART_NAMES[:-1]
    frames = {}
    for name in names:
        path = directory / f"{name}.parquet"
        if not path.is_file():
            raise DataError(f"split folder '{directory}' has no {path.name}, which {config.protocol} splits need")
        frames[name] = load_events(path)
    return Split(config=config, **frames)


def split_file(
    interactions: str | os.PathLike,
    config: SplitConfig,
    out_dir: str | os.PathLike,
    *,
    exclude_file: str | os.PathLike | None = None,
) -> Split:
    """Load ``interactions``, drop the tracks listed in ``exclude_file``, split, and write to ``out_dir``."""
    events = load_events(interactions)
    excluded = None if exclude_file is None else load_track_ids(exclude_file)
    split = split_events(events, config, exclude_tracks=excluded)
    write_split(split, out_dir, input_path=interactions, exclude_path=exclude_file)
    return split
