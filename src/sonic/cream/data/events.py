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

Timestamps may be datetimes, date strings (ISO 8601 or any form pandas reads; an offset
such as ``+01:00`` is converted to UTC) or numbers, read as Unix seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
    path = _existing_file(path, "listening-events")
    frame = _read_table(path, wanted=EVENT_COLUMNS)
    return normalise_events(frame, source=f"'{path}'")


def load_track_ids(path: str | os.PathLike) -> np.ndarray:
    """The distinct ``track_id`` values of a csv / tsv / Parquet file, as a sorted str array.

    Used for lists of tracks to leave out of a split (tracks without audio, say).
    Other columns are ignored; integer ids become strings, as in :func:`load_events`.
    """
    path = _existing_file(path, "track-list")
    frame = _read_table(path, wanted=("track_id",))
    if "track_id" not in frame.columns:
        raise DataError(f"track list '{path}' has no 'track_id' column; found: {_names(frame)}")
    return np.sort(as_ids(frame["track_id"].dropna()).drop_duplicates().to_numpy(dtype=str))


def normalise_events(frame: pd.DataFrame, *, source: str = "events") -> pd.DataFrame:
    """Validate ``frame`` and convert it to the standard event columns and dtypes.

    ``source`` names the frame in error messages (a file name, quoted, or a description).
    Extra columns are dropped; the index is reset.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source} has no column {', '.join(repr(c) for c in missing)}; found: {_names(frame)}; "
            f"need user_id, track_id, timestamp and optionally count{_separator_hint(frame)}"
        )
    if len(frame) == 0:
        raise DataError(f"{source} holds no listening events")
    out = pd.DataFrame(
        {
            "user_id": as_ids(frame["user_id"]),
            "track_id": as_ids(frame["track_id"]),
            "timestamp": _as_timestamp(frame["timestamp"], source),
            "count": _as_count(frame["count"], source) if "count" in frame.columns else np.ones(len(frame), np.int64),
        }
    )
    for column in ("user_id", "track_id"):
        if (out[column].isna() | (out[column] == "")).any():
            raise DataError(f"{source} has rows with an empty {column}")
    return out.reset_index(drop=True)


def compress(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, track): first-listen ``timestamp`` and summed ``count``.

    Works on raw events (count 1 each) and on already compressed ones (counts add up,
    the earliest first listen wins). Rows are sorted by user, then timestamp, then track.
    """
    out = (
        events.groupby(["user_id", "track_id"], sort=False, observed=True)
        .agg(timestamp=("timestamp", "min"), count=("count", "sum"))
        .reset_index()
    )
    out["count"] = out["count"].astype(np.int64)
    return out.sort_values(["user_id", "timestamp", "track_id"], kind="stable").reset_index(drop=True)


def _existing_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file '{path}' does not exist")
    return path


def _read_table(path: Path, *, wanted: tuple[str, ...]) -> pd.DataFrame:
    """Read ``path`` by its suffix; from Parquet only the ``wanted`` columns it has."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    try:
        if kind in _PARQUET_SUFFIXES:
            return _read_parquet(path, wanted)
        if kind in _TEXT_SUFFIXES:
            return pd.read_csv(path, sep=_TEXT_SUFFIXES[kind], dtype={"user_id": str, "track_id": str})
    except pd.errors.EmptyDataError:
        raise DataError(f"'{path}' is empty; it needs a header line naming its columns") from None
    except (OSError, ValueError, EOFError) as error:  # pyarrow and the C parser raise these
        raise DataError(f"cannot read '{path}': {_first_line(error)}") from None
    known = ", ".join(sorted({*_TEXT_SUFFIXES, *_PARQUET_SUFFIXES}))
    raise DataError(f"'{path}' is not a known table format; use one of {known} (optionally compressed, e.g. .tsv.bz2)")


def _read_parquet(path: Path, wanted: tuple[str, ...]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    names = pq.ParquetFile(path).schema_arrow.names
    present = [c for c in wanted if c in names]
    if len(present) < len(wanted):  # let the caller name what is missing among all columns
        return pd.read_parquet(path)
    return pd.read_parquet(path, columns=present)


def as_ids(values: Iterable[Any]) -> pd.Series:
    """User or track ids as a ``str`` Series, the way every loader writes them: ``7``, ``7.0`` -> ``"7"``."""
    if not isinstance(values, (pd.Series, pd.Index, np.ndarray, pd.api.extensions.ExtensionArray, list, tuple)):
        values = list(values)
    column = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_float_dtype(column) and column.notna().all() and (column % 1 == 0).all():
        column = column.astype(np.int64)
    return column.astype("str")


def _as_timestamp(column: pd.Series, source: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        stamps = column
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_numeric_dtype(column):
        stamps = pd.to_datetime(column, unit="s", errors="coerce")
    else:
        stamps = _parse_dates(column, source)
    if stamps.isna().any():
        raise DataError(
            f"{source} has {int(stamps.isna().sum())} rows whose timestamp is missing or out of range "
            f"(numbers are read as Unix seconds)"
        )
    return stamps.astype("datetime64[ns]")


def _parse_dates(column: pd.Series, source: str) -> pd.Series:
    """Parse date strings: ISO 8601 fast, any other form pandas knows row by row."""
    stamps = pd.to_datetime(column, errors="coerce", format="ISO8601", utc=True)
    retry = stamps.isna() & column.notna()
    if retry.any():
        stamps[retry] = pd.to_datetime(column[retry], errors="coerce", format="mixed", utc=True)
        bad = stamps.isna() & column.notna()
        if bad.any():
            raise DataError(f"{source} has a timestamp that is not a date: {column[bad].iloc[0]!r}")
    return stamps.dt.tz_localize(None)


def _as_count(column: pd.Series, source: str) -> pd.Series:
    valid = (
        pd.api.types.is_numeric_dtype(column)
        and not pd.api.types.is_bool_dtype(column)
        and column.notna().all()
        and (column >= 1).all()
        and (column % 1 == 0).all()
    )
    if not valid:
        raise DataError(f"{source} has a 'count' column that is not a positive whole number on every row")
    return column.astype(np.int64)


def _names(frame: pd.DataFrame) -> str:
    return ", ".join(repr(str(c)) for c in frame.columns) or "none"


def _separator_hint(frame: pd.DataFrame) -> str:
    if len(frame.columns) == 1 and any(sep in str(frame.columns[0]) for sep in ("\t", ",", ";")):
        return " (is the separator right? .tsv files are tab separated, .csv files comma separated)"
    return ""


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
