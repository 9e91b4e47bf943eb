"""Listening-event loaders: one frame shape for every file a user may have.

Every loader returns a :class:`pandas.DataFrame` with exactly these columns:

============  =====================  ==========================================
column        dtype                  meaning
============  =====================  ==========================================
``user_id``   ``str``                listener id (integers become strings)
``track_id``  ``str``                track id (Music4All: 16-character string)
``timestamp`` ``datetime64[ns]``     time of the listen (first listen if compressed), UTC, naive
``count``     ``int64``              plays: 1 per raw event, the play count once compressed
============  =====================  ==========================================
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from sonic.errors import DataError

EVENT_COLUMNS = ("user_id", "track_id", "timestamp", "count")
REQUIRED_COLUMNS = ("user_id", "track_id", "timestamp")
_TEXT_SUFFIXES = {".tsv": "\t", ".csv": ",", ".txt": "\t"}
_COMPRESSIONS = {".bz2", ".gz", ".xz", ".zst", ".zip"}
_PARQUET_SUFFIXES = {".parquet", ".pqt"}


def load_events(path: str | os.PathLike) -> pd.DataFrame:
    """Read listening events from tsv / csv (optionally ``.bz2``/``.gz``/...) or Parquet.

    Raw files (one row per play, no ``count`` column) get ``count = 1`` per row;
    compressed files (``user_id, track_id, timestamp, count``) keep their counts.
    Returns the frame described in this module's docstring; raises :class:`DataError`
    naming the file and the problem for a missing file, an unknown format, missing
    columns, unparseable timestamps or no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"listening-events file '{path}' does not exist")
    frame = _read_table(path)
    return normalise_events(frame, source=str(path))


def _read_table(path: Path) -> pd.DataFrame:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    try:
        if kind in _PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        if kind in _TEXT_SUFFIXES:
            return pd.read_csv(path, sep=_TEXT_SUFFIXES[kind], dtype={"user_id": str, "track_id": str})
    except (OSError, ValueError, EOFError) as error:  # pyarrow and the C parser raise these
        raise DataError(f"cannot read listening events from '{path}': {_first_line(error)}") from None
    known = ", ".join(sorted({*_TEXT_SUFFIXES, *_PARQUET_SUFFIXES}))
    raise DataError(f"'{path}' is not a known events format; use one of {known} (optionally compressed, e.g. .tsv.bz2)")


def normalise_events(frame: pd.DataFrame, *, source: str = "events") -> pd.DataFrame:
    """Validate ``frame`` and convert it to the standard event columns and dtypes."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns)) or "none"
        raise DataError(
            f"{source} has no column {', '.join(repr(c) for c in missing)}; found: {found}; "
            "need user_id, track_id, timestamp and optionally count"
        )
    if len(frame) == 0:
        raise DataError(f"{source} holds no listening events")
    out = pd.DataFrame(
        {
            "user_id": _as_str(frame["user_id"]),
            "track_id": _as_str(frame["track_id"]),
            "timestamp": _as_timestamp(frame["timestamp"], source),
            "count": _as_count(frame["count"], source) if "count" in frame.columns else np.ones(len(frame), np.int64),
        }
    )
    if out["user_id"].isna().any() or out["track_id"].isna().any():
        raise DataError(f"{source} has rows with an empty user_id or track_id")
    return out.reset_index(drop=True)


def compress(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, track): first-listen ``timestamp`` and summed ``count``.

    Works on raw events (count 1 each) and on already compressed ones (counts add up).
    Rows are sorted by user, then timestamp.
    """
    out = (
        events.groupby(["user_id", "track_id"], sort=False, observed=True)
        .agg(timestamp=("timestamp", "min"), count=("count", "sum"))
        .reset_index()
    )
    out["count"] = out["count"].astype(np.int64)
    return out.sort_values(["user_id", "timestamp", "track_id"], kind="stable").reset_index(drop=True)


def _as_str(column: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(column) and column.notna().all() and (column % 1 == 0).all():
        column = column.astype(np.int64)
    return column.astype("str")


def _as_timestamp(column: pd.Series, source: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        stamps = column
    elif pd.api.types.is_numeric_dtype(column):
        stamps = pd.to_datetime(column, unit="s", errors="coerce")
    else:
        stamps = pd.to_datetime(column, errors="coerce", format="mixed")
        bad = stamps.isna() & column.notna()
        if bad.any():
            raise DataError(f"{source} has a timestamp that is not a date: {column[bad].iloc[0]!r}")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    if stamps.isna().any():
        raise DataError(f"{source} has {int(stamps.isna().sum())} rows without a timestamp")
    return stamps.astype("datetime64[ns]")


def _as_count(column: pd.Series, source: str) -> pd.Series:
    if not pd.api.types.is_numeric_dtype(column) or column.isna().any() or (column < 1).any():
        raise DataError(f"{source} has a 'count' column that is not a positive integer everywhere")
    return column.astype(np.int64)


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
