"""The one table reader: every csv / tsv / Parquet file a command reads goes through :func:`read_table`.

Formats are told by the file name: ``.csv`` (comma), ``.tsv`` and ``.txt`` (tab), ``.parquet`` and
``.pqt``; a text file may be compressed (``.bz2``, ``.gz``, ``.xz``, ``.zst``, ``.zip``, e.g.
``plays.tsv.bz2``). Id columns (``user_id``, ``track_id``, and Music4All's ``id``) always come back as
strings, normalised by :func:`as_ids` here and nowhere else (the streaming reader in
:mod:`sonic.cream.data.stream` uses :func:`id_sql`, the same rule in SQL).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sonic.errors import DataError

ID_COLUMNS = ("user_id", "track_id", "id")
TEXT_SEPARATORS = {".tsv": "\t", ".csv": ",", ".txt": "\t"}
COMPRESSIONS = (".bz2", ".gz", ".xz", ".zst", ".zip")
PARQUET_SUFFIXES = (".parquet", ".pqt")


def table_kind(path: Path, what: str = "table") -> tuple[str, str | None]:
    """``(kind, compression)`` of ``path`` from its name: kind ``.csv``/``.tsv``/``.txt`` or ``"parquet"``.

    Raises :class:`DataError` listing the known formats for any other name.
    """
    suffixes = [s.lower() for s in path.suffixes]
    compression = suffixes.pop() if suffixes and suffixes[-1] in COMPRESSIONS else None
    kind = suffixes[-1] if suffixes else ""
    if kind in PARQUET_SUFFIXES and compression is None:
        return "parquet", None
    if kind in TEXT_SEPARATORS:
        return kind, compression
    known = ", ".join(sorted({*TEXT_SEPARATORS, *PARQUET_SUFFIXES}))
    raise DataError(
        f"{what} file '{path}' is not a known table format; use one of {known} (text optionally compressed, "
        f"e.g. .tsv.bz2)"
    )


def existing_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a :class:`Path`; a missing file is a :class:`DataError` naming ``what`` it should hold."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file '{path}' does not exist")
    return path


def read_table(
    path: str | os.PathLike,
    *,
    columns: Sequence[str] | None = None,
    what: str = "events",
    sep: str | None = None,
    ids: Sequence[str] = ID_COLUMNS,
) -> pd.DataFrame:
    """Read a csv / tsv / Parquet table (text maybe compressed) into a frame, its id columns as ``str``.

    ``columns``: read only these when the file has them all (Parquet reads just them); when some are
    missing every column is returned, so the caller can name what is missing among what is there.
    ``what`` names the file in messages (``"events"`` -> ``events file '...' does not exist``).
    ``sep`` overrides the separator told by the suffix (Music4All's ``.csv`` files are tab separated);
    such files are read as published, without quote characters. Columns named in ``ids`` become
    strings by :func:`as_ids`. Any unreadable file is one :class:`DataError` naming it.
    """
    path = existing_file(path, what)
    kind, compression = table_kind(path, what)
    try:
        if kind == "parquet":
            frame = _read_parquet(path, columns)
        else:
            options: dict[str, Any] = {"sep": TEXT_SEPARATORS[kind] if sep is None else sep}
            if sep is not None:
                options["quoting"] = csv.QUOTE_NONE
            frame = _read_text(path, compression, dtype={name: str for name in ids}, **options)
            if columns is not None and all(c in frame.columns for c in columns):
                frame = frame.loc[:, list(columns)]
    except pd.errors.EmptyDataError:
        raise DataError(f"'{path}' is empty; it needs a header line naming its columns") from None
    except (OSError, ValueError, EOFError, pd.errors.ParserError) as error:  # pyarrow and the C parser raise these
        raise DataError(f"cannot read '{path}': {first_line(error)}") from None
    for name in ids:
        if name in frame.columns:
            frame[name] = as_ids(frame[name])
    return frame


def _read_text(path: Path, compression: str | None, **options: Any) -> pd.DataFrame:
    """``pandas.read_csv``; ``.zst`` through Arrow's decompressing stream (pandas would need another package)."""
    if compression != ".zst":
        return pd.read_csv(path, **options)
    import pyarrow as pa

    with pa.input_stream(str(path), compression="zstd") as stream:
        return pd.read_csv(stream, **options)


def _read_parquet(path: Path, columns: Sequence[str] | None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    names = pq.ParquetFile(path).schema_arrow.names
    if columns is None or not all(c in names for c in columns):
        return pd.read_parquet(path)
    return pd.read_parquet(path, columns=list(columns))


def as_ids(values: Iterable[Any]) -> pd.Series:
    """User or track ids as a ``str`` Series, the one rule for every reader: ``7``, ``7.0`` -> ``"7"``.

    Missing values stay missing (``NaN``) so callers can name rows with an empty id.
    """
    if not isinstance(values, (pd.Series, pd.Index, np.ndarray, pd.api.extensions.ExtensionArray, list, tuple)):
        values = list(values)
    column = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_string_dtype(column) and not pd.api.types.is_object_dtype(column):
        return column
    if pd.api.types.is_float_dtype(column) and column.notna().all() and (column % 1 == 0).all():
        column = column.astype(np.int64)
    return column.astype("str")


def id_sql(column: str, duckdb_type: str) -> str:
    """The SQL of :func:`as_ids` for a column of ``duckdb_type``: text stays, integers and whole floats as text.

    For a floating-point column the caller must first check that every value is whole
    (:mod:`sonic.cream.data.stream` does), as :func:`as_ids` does.
    """
    quoted = f'"{column}"'
    if duckdb_type == "VARCHAR":
        return quoted
    if duckdb_type in ("FLOAT", "DOUBLE") or duckdb_type.startswith("DECIMAL"):
        return f"CAST(CAST({quoted} AS BIGINT) AS VARCHAR)"
    return f"CAST({quoted} AS VARCHAR)"


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (libraries' messages can run for pages)."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
