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
such as ``+01:00`` is converted to UTC) or numbers: Unix times in seconds, milliseconds, microseconds or
nanoseconds, told apart by magnitude (:func:`epoch_unit`: the unit in which every value is a date
between 1980 and 2100; a column fitting no single unit is refused).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from sonic.cream.data.tables import as_ids, existing_file, read_table
from sonic.errors import DataError

EVENT_COLUMNS = ("user_id", "track_id", "timestamp", "count")
REQUIRED_COLUMNS = ("user_id", "track_id", "timestamp")
EPOCH_UNITS = {"seconds": 10**9, "milliseconds": 10**6, "microseconds": 10**3, "nanoseconds": 1}  # ns per unit
EPOCH_RANGE = (pd.Timestamp("1980-01-01"), pd.Timestamp("2100-01-01"))  # dates a listening log can hold


def load_events(path: str | os.PathLike) -> pd.DataFrame:
    """Read listening events from tsv / csv (optionally ``.bz2``/``.gz``/...) or Parquet.

    Raw files (one row per play, no ``count`` column) get ``count = 1`` per row;
    compressed files (``user_id, track_id, timestamp, count``) keep their counts.
    Returns the frame described in this module's docstring; raises :class:`DataError`
    naming the file and the problem for a missing file, an unknown format, missing
    columns, unparseable timestamps or no rows.
    """
    path = existing_file(path, "listening-events")
    frame = read_table(path, columns=EVENT_COLUMNS, what="listening-events")
    return normalise_events(frame, source=f"'{path}'")


def load_track_ids(path: str | os.PathLike) -> np.ndarray:
    """The distinct ``track_id`` values of a csv / tsv / Parquet file, as a sorted str array.

    Used for lists of tracks to leave out of a split (tracks without audio, say).
    Other columns are ignored; integer ids become strings, as in :func:`load_events`.
    """
    path = existing_file(path, "track-list")
    frame = read_table(path, columns=("track_id",), what="track-list")
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


def _as_timestamp(column: pd.Series, source: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        stamps = column
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        stamps = _from_epoch(column, source)
    else:
        stamps = parse_dates(column, source)
    if stamps.isna().any():
        raise DataError(
            f"{source} has {int(stamps.isna().sum())} rows whose timestamp is missing or out of range "
            f"(numbers are read as Unix times)"
        )
    return stamps.astype("datetime64[ns]")


def epoch_unit(low: float, high: float, source: str) -> str:
    """The unit (a key of :data:`EPOCH_UNITS`) in which Unix times from ``low`` to ``high`` are plausible dates.

    Plausible: within :data:`EPOCH_RANGE` (1980 .. 2100), where the four units never overlap, so at most
    one fits. Values fitting no unit (or spanning two, such as seconds mixed with milliseconds) are a
    :class:`DataError` naming ``source``, the range found and what would be valid.
    """
    first, last = (int(stamp.value) for stamp in EPOCH_RANGE)
    for unit, nanoseconds in EPOCH_UNITS.items():
        if first <= low * nanoseconds and high * nanoseconds < last:
            return unit
    raise DataError(
        f"{source} has numeric timestamps from {low:g} to {high:g}, which are not Unix times of dates between "
        f"{EPOCH_RANGE[0].year} and {EPOCH_RANGE[1].year} in any one unit (seconds, milliseconds, microseconds or "
        f"nanoseconds); write them in one unit or as dates such as 2019-02-01 10:00:00"
    )


def _from_epoch(column: pd.Series, source: str) -> pd.Series:
    """Unix times in the unit :func:`epoch_unit` finds, to ``datetime64[ns]``; NaN stays NaT.

    Floats are scaled to nanoseconds and rounded half up (``floor(x * f + 0.5)``), as the SQL reader does.
    """
    present = column.dropna()
    if present.empty:
        return pd.Series(pd.NaT, index=column.index, dtype="datetime64[ns]")
    factor = EPOCH_UNITS[epoch_unit(float(present.min()), float(present.max()), source)]
    if pd.api.types.is_integer_dtype(column) and column.notna().all():
        nanoseconds = column.to_numpy(dtype=np.int64) * np.int64(factor)
        return pd.Series(nanoseconds.astype("datetime64[ns]"), index=column.index)
    scaled = np.floor(column.to_numpy(dtype=np.float64, na_value=np.nan) * factor + 0.5)
    missing = np.isnan(scaled)
    stamps = np.where(missing, 0, scaled).astype(np.int64).astype("datetime64[ns]")
    stamps[missing] = np.datetime64("NaT")
    return pd.Series(stamps, index=column.index)


def parse_dates(column: pd.Series, source: str) -> pd.Series:
    """Parse date strings to naive UTC: ISO 8601 fast, any other form pandas knows row by row.

    A string that is no date is a :class:`DataError` naming ``source`` and the string.
    """
    stamps = pd.to_datetime(column, errors="coerce", format="ISO8601", utc=True)
    retry = stamps.isna() & column.notna()
    if retry.any():
        stamps[retry] = pd.to_datetime(column[retry], errors="coerce", format="mixed", utc=True)
        bad = stamps.isna() & column.notna()
        if bad.any():
            raise DataError(f"{source} has a timestamp that is not a date: {column[bad].iloc[0]!r}")
    return stamps.dt.tz_localize(None)


def _as_count(column: pd.Series, source: str) -> pd.Series:
    whole = pd.api.types.is_integer_dtype(column)  # integers need no remainder test (millions of rows)
    valid = (
        pd.api.types.is_numeric_dtype(column)
        and not pd.api.types.is_bool_dtype(column)
        and column.notna().all()
        and (column >= 1).all()
        and (whole or (column % 1 == 0).all())
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
