"""Listening events of any size in DuckDB: a file (or a frame) as a view of the standard event columns.

:func:`open_events` gives a DuckDB connection holding a view ``events`` with ``user_id VARCHAR,
track_id VARCHAR, timestamp TIMESTAMP_NS, count BIGINT`` (the columns of
:mod:`sonic.cream.data.events`), read lazily from the file: Parquet, csv/tsv plain or ``.gz``/``.zst``
are scanned by DuckDB itself on every query; ``.bz2``/``.xz``/``.zip`` text, which DuckDB cannot
decompress, is streamed once through Arrow's csv reader into a table in the connection's database
(on disk, in ``work_dir``). Nothing is read into pandas, so a log of hundreds of millions of events
needs memory for DuckDB's ``memory_limit`` only (it spills to ``work_dir`` beyond it).

The same rules as the pandas loader apply, in SQL: ids as text (:func:`sonic.cream.data.tables.id_sql`),
numbers as Unix times in the unit :func:`sonic.cream.data.events.epoch_unit` finds, date strings
(ISO 8601 by DuckDB; an offset is converted to UTC, to the microsecond), ``count`` 1 when absent and otherwise a
positive whole number. Other date forms pandas reads (``Feb 3 2019``) are parsed by pandas, once per
distinct string (up to 100,000 of them). :func:`check_events` validates the view in one pass and raises the loader's
:class:`DataError` messages. DuckDB is imported only here, and only when called.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sonic.cream.data.events import EPOCH_UNITS, REQUIRED_COLUMNS, epoch_unit, parse_dates
from sonic.cream.data.tables import TEXT_SEPARATORS, existing_file, first_line, id_sql, table_kind
from sonic.errors import DataError, SonicError

DEFAULT_MEMORY_LIMIT = "4GB"
MAX_OTHER_DATES = 100_000  # distinct non-ISO date strings handed to pandas
_DUCKDB_COMPRESSIONS = {None: "none", ".gz": "gzip", ".zst": "zstd"}
_ARROW_COMPRESSIONS = {".bz2": "bz2"}


_CHECKS = """
    SELECT count(*),
           count(*) - count(user_id) + coalesce(sum((user_id = '')::BIGINT), 0),
           count(*) - count(track_id) + coalesce(sum((track_id = '')::BIGINT), 0),
           count(*) - count(timestamp),
           count(*) - count(count) + coalesce(sum((count < 1)::BIGINT), 0)
    FROM events
"""  # count(x) and sum(condition) rather than FILTER: DuckDB answers them from Parquet statistics where it can


@dataclass(frozen=True)
class EventSource:
    """The view ``events`` of one file: ``name`` for messages (the quoted path), the timestamp's DuckDB type.

    ``checks``: the query of :func:`check_events`, on the file's own columns where their type allows
    (an integer id cannot be empty, so it is not turned into text just to be checked).
    """

    name: str
    timestamp_type: str
    checks: str = _CHECKS


def connect(work_dir: str | os.PathLike | None = None, *, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> Any:
    """A DuckDB connection in UTC, capped at ``memory_limit``; with ``work_dir``, its database and spill files there."""
    try:
        import duckdb
    except ImportError:  # pragma: no cover - a base dependency
        raise DataError("listening logs are split with DuckDB; install it: pip install 'duckdb>=1.4.4,<3'") from None
    database = ":memory:" if work_dir is None else str(Path(work_dir) / "events.duckdb")
    con = duckdb.connect(database)
    con.execute("SET TimeZone = 'UTC'")
    try:
        con.execute(f"SET memory_limit = '{_sql_text(str(memory_limit))}'")
    except duckdb.Error:
        con.close()
        raise SonicError(f"memory limit {memory_limit!r} is not a size; use a number and a unit, such as 4GB") from None
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    if work_dir is not None:
        con.execute(f"SET temp_directory = '{_sql_text(str(Path(work_dir) / 'spill'))}'")
    return con


def open_events(path: str | os.PathLike, con: Any, *, what: str = "listening-events") -> EventSource:
    """Create the view ``events`` over the file ``path`` in ``con``.

    Raises :class:`DataError` for a missing or unreadable file, an unknown format or missing columns.
    """
    path = existing_file(path, what)
    source = f"'{path}'"
    kind, compression = table_kind(path, what)
    try:
        if kind == "parquet":
            con.execute(f"CREATE OR REPLACE VIEW raw_events AS SELECT * FROM read_parquet('{_sql_text(str(path))}')")
        elif compression in _DUCKDB_COMPRESSIONS:
            options = (
                f"delim = '{_sql_text(TEXT_SEPARATORS[kind])}', header = true, "
                f"compression = '{_DUCKDB_COMPRESSIONS[compression]}'"
            )
            scan = f"read_csv('{_sql_text(str(path))}', {options}"
            names = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {scan})").fetchall()]
            ids = ", ".join(f"'{name}': 'VARCHAR'" for name in ("user_id", "track_id") if name in names)
            types = f", types = {{{ids}}}" if ids else ""
            con.execute(f"CREATE OR REPLACE VIEW raw_events AS SELECT * FROM {scan}{types})")
        else:
            _load_text_through_arrow(con, path, kind, compression)
        columns = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE raw_events)").fetchall())
    except DataError:
        raise
    except Exception as error:  # duckdb's and pyarrow's many exception classes
        raise DataError(f"cannot read '{path}': {first_line(error)}") from None
    _create_view(con, columns, source)
    return EventSource(source, columns["timestamp"], _raw_checks(columns))


def open_frame(frame: pd.DataFrame, con: Any, *, name: str = "the listening events") -> EventSource:
    """Create the view ``events`` over a frame already in the standard columns and dtypes (normalised)."""
    con.register("frame_events", frame)
    con.execute(
        "CREATE OR REPLACE VIEW events AS SELECT user_id, track_id, CAST(timestamp AS TIMESTAMP_NS) AS timestamp, "
        "CAST(count AS BIGINT) AS count FROM frame_events"
    )
    return EventSource(name, "TIMESTAMP_NS")


def check_events(con: Any, events: EventSource, *, other_dates: bool = False) -> int:
    """Validate the view ``events`` in one pass: the checks and messages of the pandas loader; the row count.

    Date strings DuckDB cannot read are handed to pandas (:func:`_parse_other_dates`), then checked again
    on the view.
    """
    source = events.name
    try:
        n_rows, empty_user, empty_track, no_time, bad_count = con.execute(
            _CHECKS if other_dates else events.checks
        ).fetchall()[0]
    except DataError:
        raise
    except Exception as error:
        raise DataError(f"cannot read {source}: {first_line(error)}") from None
    if n_rows == 0:
        raise DataError(f"{source} holds no listening events")
    for column, count in (("user_id", empty_user), ("track_id", empty_track)):
        if count:
            raise DataError(f"{source} has rows with an empty {column}")
    if no_time and events.timestamp_type == "VARCHAR" and not other_dates:
        _parse_other_dates(con, source)
        return check_events(con, events, other_dates=True)
    if no_time:
        raise DataError(
            f"{source} has {no_time} rows whose timestamp is missing or not a date "
            f"(dates are read as ISO 8601, such as 2019-02-01 10:00:00, and numbers as Unix times)"
        )
    if bad_count:
        raise DataError(f"{source} has a 'count' column that is not a positive whole number on every row")
    return int(n_rows)


def _load_text_through_arrow(con: Any, path: Path, kind: str, compression: str | None) -> None:
    """Stream a text file DuckDB cannot decompress into the table ``raw_events``, batch by batch."""
    import bz2
    import lzma
    import zipfile

    import pyarrow as pa
    import pyarrow.csv as pacsv

    parse = pacsv.ParseOptions(delimiter=TEXT_SEPARATORS[kind])
    convert = pacsv.ConvertOptions(column_types={"user_id": pa.string(), "track_id": pa.string()})
    read = pacsv.ReadOptions(block_size=16 << 20)
    if compression in _ARROW_COMPRESSIONS:
        stream: Any = pa.input_stream(str(path), compression=_ARROW_COMPRESSIONS[compression])
    elif compression == ".xz":
        stream = lzma.open(path, "rb")
    elif compression == ".zip":
        archive = zipfile.ZipFile(path)
        names = [n for n in archive.namelist() if not n.endswith("/")]
        if len(names) != 1:
            archive.close()
            raise DataError(f"'{path}' holds {len(names)} files; a zipped table must hold exactly one")
        stream = archive.open(names[0])
    else:  # pragma: no cover - table_kind allows nothing else
        stream = bz2.open(path, "rb")
    with stream:
        reader = pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
        con.register("arrow_events", reader)
        con.execute("CREATE OR REPLACE TABLE raw_events AS SELECT * FROM arrow_events")
        con.unregister("arrow_events")


def _create_view(con: Any, columns: dict[str, str], source: str) -> None:
    """The view ``events``: the standard columns from ``raw_events``, whose DuckDB types are ``columns``."""
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        found = ", ".join(repr(c) for c in columns) or "none"
        hint = ""
        if len(columns) == 1 and any(sep in next(iter(columns)) for sep in ("\t", ",", ";")):
            hint = " (is the separator right? .tsv files are tab separated, .csv files comma separated)"
        raise DataError(
            f"{source} has no column {', '.join(repr(c) for c in missing)}; found: {found}; "
            f"need user_id, track_id, timestamp and optionally count{hint}"
        )
    for name in ("user_id", "track_id"):
        if columns[name] in ("FLOAT", "DOUBLE") or columns[name].startswith("DECIMAL"):
            whole = con.execute(f'SELECT bool_and("{name}" % 1 = 0) FROM raw_events').fetchall()[0][0]
            if whole is False:
                raise DataError(f"{source} has fractional {name} values; ids are whole numbers or text")
    timestamp = _timestamp_sql(con, columns["timestamp"], source)
    count = "CAST(1 AS BIGINT)"
    if "count" in columns:
        kind = columns["count"]
        if kind == "BOOLEAN" or not _is_number(kind):
            raise DataError(f"{source} has a 'count' column that is not a positive whole number on every row")
        if not _is_integer(kind):
            whole = con.execute('SELECT bool_and("count" % 1 = 0) FROM raw_events').fetchall()[0][0]
            if whole is False:
                raise DataError(f"{source} has a 'count' column that is not a positive whole number on every row")
        count = 'CAST("count" AS BIGINT)'
    raw_timestamp = '"timestamp"' if columns["timestamp"] == "VARCHAR" else "CAST(NULL AS VARCHAR)"
    con.execute(
        f"CREATE OR REPLACE VIEW events_strict AS SELECT {id_sql('user_id', columns['user_id'])} AS user_id, "
        f"{id_sql('track_id', columns['track_id'])} AS track_id, {timestamp} AS timestamp, {count} AS count, "
        f"{raw_timestamp} AS raw_timestamp FROM raw_events"
    )
    con.execute("CREATE OR REPLACE VIEW events AS SELECT user_id, track_id, timestamp, count FROM events_strict")


def _parse_other_dates(con: Any, source: str) -> None:
    """Date strings DuckDB cannot read (``Feb 3 2019``): parsed by pandas as the loader does, joined into ``events``.

    Up to :data:`MAX_OTHER_DATES` distinct strings; more is a :class:`DataError` asking for ISO 8601.
    """
    texts = con.execute(
        "SELECT DISTINCT raw_timestamp FROM events_strict WHERE timestamp IS NULL AND raw_timestamp IS NOT NULL "
        f"LIMIT {MAX_OTHER_DATES + 1}"
    ).df()["raw_timestamp"]
    if len(texts) > MAX_OTHER_DATES:
        raise DataError(
            f"{source} has more than {MAX_OTHER_DATES:,} distinct timestamps that are not ISO 8601 dates, such as "
            f"{texts.iloc[0]!r}; write them as 2019-02-01 10:00:00"
        )
    parsed = pd.DataFrame({"text": texts.astype("str"), "parsed": parse_dates(texts, source).astype("datetime64[ns]")})
    con.register("parsed_frame", parsed)
    con.execute("CREATE OR REPLACE TABLE parsed_dates AS SELECT text, CAST(parsed AS TIMESTAMP_NS) AS parsed "
                "FROM parsed_frame")  # fmt: skip
    con.unregister("parsed_frame")
    con.execute(
        "CREATE OR REPLACE VIEW events AS SELECT s.user_id, s.track_id, coalesce(s.timestamp, d.parsed) AS timestamp, "
        "s.count FROM events_strict s LEFT JOIN parsed_dates d ON s.raw_timestamp = d.text"
    )


def _raw_checks(columns: dict[str, str]) -> str:
    """:data:`_CHECKS` on ``raw_events``, whose DuckDB types are ``columns`` (validated by :func:`_create_view`).

    Date strings must be parsed to be checked, so a text timestamp keeps the query on the view.
    """
    kind = columns["timestamp"]
    if kind == "VARCHAR":
        return _CHECKS

    def missing(name: str, condition: str | None = None) -> str:
        extra = f' + coalesce(sum(({condition})::BIGINT), 0)' if condition else ""
        return f'count(*) - count("{name}"){extra}'

    def empty(name: str) -> str:
        return missing(name, f""""{name}" = ''""" if columns[name] == "VARCHAR" else None)

    no_time = missing("timestamp", 'isnan("timestamp")' if kind in ("FLOAT", "DOUBLE") else None)
    bad_count = missing("count", '"count" < 1') if "count" in columns else "0"
    return f"SELECT count(*), {empty('user_id')}, {empty('track_id')}, {no_time}, {bad_count} FROM raw_events"


def _timestamp_sql(con: Any, kind: str, source: str) -> str:
    """SQL turning ``raw_events.timestamp`` of DuckDB type ``kind`` into naive UTC ``TIMESTAMP_NS``."""
    column = '"timestamp"'
    if kind == "TIMESTAMP_NS":
        return column
    if kind.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"CAST(CAST({column} AS TIMESTAMP) AS TIMESTAMP_NS)"
    if kind.startswith("TIMESTAMP") or kind == "DATE":
        return f"CAST({column} AS TIMESTAMP_NS)"
    if _is_number(kind) and kind != "BOOLEAN":
        low, high = con.execute(f"SELECT min({column}), max({column}) FROM raw_events").fetchall()[0]
        if low is None:
            return "CAST(NULL AS TIMESTAMP_NS)"
        factor = EPOCH_UNITS[epoch_unit(float(low), float(high), source)]
        if _is_integer(kind):
            return f"make_timestamp_ns(CAST({column} AS BIGINT) * {factor})"
        return f"make_timestamp_ns(CAST(floor({column} * {factor} + 0.5) AS BIGINT))"
    if kind == "VARCHAR":
        return f"CAST(CAST(try_cast({column} AS TIMESTAMPTZ) AS TIMESTAMP) AS TIMESTAMP_NS)"
    raise DataError(f"{source} has a timestamp column of type {kind}; use dates or Unix times")


def _is_integer(kind: str) -> bool:
    return kind in {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                    "UBIGINT", "UHUGEINT"}


def _is_number(kind: str) -> bool:
    return _is_integer(kind) or kind in {"FLOAT", "DOUBLE"} or kind.startswith("DECIMAL")


def _sql_text(text: str) -> str:
    """``text`` for a single-quoted SQL literal."""
    return text.replace("'", "''")
