"""The split protocols in SQL: one DuckDB plan for a frame in memory and for a log of any size on disk.

The steps are those of :mod:`sonic.cream.data.splits`, run over the view ``events`` that
:mod:`sonic.cream.data.stream` creates. One aggregation over the window gives every (user, track)
pair its first listen, its plays before the test date and its plays in the whole window, so train
(first listen before the test date, plays before it) and the evaluation pairs (first listen on or
after it, every play) come from a single scan. Only the candidate users' ids are fetched into Python,
for the seeded draw of :func:`sonic.cream.data.splits.draw_users`; the parts stay in DuckDB until
they are fetched as frames (:func:`split_frame`) or copied to Parquet (:mod:`sonic.cream.data.split_files`).
Every part is ordered by user, first listen, track: the same rows in the same order as the pandas code
this replaced.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sonic.cream.data.events import normalise_events
from sonic.cream.data.splits import Split, SplitConfig, draw_users
from sonic.cream.data.stream import EventSource, connect, open_frame
from sonic.cream.data.tables import as_ids
from sonic.errors import DataError

_ORDER = "ORDER BY user_id, timestamp, track_id"
_COLUMNS = "user_id, track_id, timestamp, count"


@dataclass(frozen=True)
class SplitPlan:
    """The parts of a split in ``con``: part name -> the rows' relation (``FROM ... WHERE ...``), in order."""

    con: Any
    config: SplitConfig
    relations: dict[str, str]

    def query(self, name: str, *, ordered: bool = True) -> str:
        """SQL selecting part ``name``'s ``user_id, track_id, timestamp, count`` (by user, first listen, track)."""
        return f"SELECT {_COLUMNS} {self.relations[name]}" + (f" {_ORDER}" if ordered else "")

    def frame(self, name: str) -> pd.DataFrame:
        """Part ``name`` as a frame in the standard dtypes."""
        frame = self.con.execute(self.query(name)).df()
        return frame.astype({"user_id": "str", "track_id": "str", "timestamp": "datetime64[ns]", "count": "int64"})


def plan_split(con: Any, events: EventSource, config: SplitConfig, *, excluded: bool = False) -> SplitPlan:
    """Build the split of the view ``events`` by ``config`` in ``con`` (tables ``pairs``, ``train``, ...).

    With ``excluded``, the tracks of the table ``excluded(track_id)`` are dropped first. Raises the
    :class:`DataError` of :func:`sonic.cream.data.splitting.split_events` when a part would be empty.
    """
    source = "events ANTI JOIN excluded USING (track_id)" if excluded else "events"
    test = _timestamp(config.test_date)
    window = ["TRUE"]
    if config.start_date is not None:
        window.append(f"timestamp >= {_timestamp(config.start_date)}")
    if config.end_date is not None:
        window.append(f"timestamp < {_timestamp(config.end_date)}")
    con.execute(
        f"""
        CREATE OR REPLACE TABLE pairs AS
        SELECT user_id, track_id, min(timestamp) AS first,
               CAST(coalesce(sum(count) FILTER (WHERE timestamp < {test}), 0) AS BIGINT) AS before,
               CAST(sum(count) AS BIGINT) AS total
        FROM {source} WHERE {" AND ".join(window)}
        GROUP BY user_id, track_id
        """
    )

    def empty(subject: str, why: str) -> DataError:
        first, last = con.execute(f"SELECT min(timestamp), max(timestamp) FROM {source}").df().iloc[0]
        return DataError(
            f"{subject}: {why} ({config.describe()}); the data runs from {first} to {last}, choose dates in that range"
        )

    if _count(con, "pairs") == 0:
        if excluded and _count(con, source) == 0:
            n_excluded = _count(con, "excluded")
            raise DataError(f"every listening event is on one of the {n_excluded} excluded tracks")
        raise empty("every split is empty", "no listening event falls in the window")
    con.execute(
        f"CREATE OR REPLACE TABLE train AS SELECT user_id, track_id, first AS timestamp, before AS count "
        f"FROM pairs WHERE first < {test}"
    )
    if _count(con, "train") == 0:
        raise empty("the train split is empty", "no event in the window comes before the test date")
    con.execute(
        f"""
        CREATE OR REPLACE TABLE evaluation AS
        SELECT user_id, track_id, first AS timestamp, total AS count,
               track_id IN (SELECT track_id FROM train) AS hot
        FROM pairs
        WHERE first >= {test} AND user_id IN (SELECT user_id FROM train)
        """
    )
    if _count(con, "evaluation WHERE hot") == 0:
        why = "no train user first listens to a train track on or after the test date"
        raise empty("the val and test splits are empty", why)

    candidates_sql = "SELECT DISTINCT user_id FROM evaluation WHERE hot"
    if config.keep_cold:
        candidates_sql += " EXCEPT SELECT user_id FROM evaluation WHERE NOT hot"
    candidates = con.execute(f"SELECT user_id FROM ({candidates_sql}) ORDER BY user_id").df()["user_id"]
    val_users = pd.DataFrame({"user_id": draw_users(candidates, config.val_fraction, seed=config.seed)})
    con.register("drawn_users", val_users)
    con.execute("CREATE OR REPLACE TABLE val_users AS SELECT CAST(user_id AS VARCHAR) AS user_id FROM drawn_users")
    con.unregister("drawn_users")

    relations = {
        "train": "FROM train",
        "val": "FROM evaluation WHERE hot AND user_id IN (SELECT user_id FROM val_users)",
        "test": "FROM evaluation WHERE hot AND user_id NOT IN (SELECT user_id FROM val_users)",
    }
    if config.keep_cold:
        relations["cold_test"] = "FROM evaluation WHERE NOT hot"
    reasons = {
        "val": f"{len(candidates)} candidate users times val_fraction {config.val_fraction} leaves none for val",
        "test": "every evaluation user was drawn into val",
        "cold_test": "no train user first listens to a track unseen in train on or after the test date",
    }
    for name, relation in relations.items():
        if name != "train" and con.execute(f"SELECT count(*) {relation}").fetchall()[0][0] == 0:
            raise empty(f"the {name} split is empty", reasons[name])
    return SplitPlan(con, config, relations)


def split_frame(events: pd.DataFrame, config: SplitConfig, *, exclude_tracks: Iterable[Any] | None = None) -> Split:
    """:func:`sonic.cream.data.splitting.split_events` on a frame in memory: the same plan, fetched as frames."""
    events = normalise_events(events, source="the listening events")
    con = connect()
    try:
        source = open_frame(events, con)
        if exclude_tracks is not None:
            register_excluded(con, exclude_tracks)
        plan = plan_split(con, source, config, excluded=exclude_tracks is not None)
        frames = {name: plan.frame(name) for name in plan.relations}
    finally:
        con.close()
    return Split(config=config, **frames)


def register_excluded(con: Any, track_ids: Iterable[Any]) -> None:
    """The table ``excluded(track_id VARCHAR)``: distinct ids by the one id rule."""
    ids = pd.DataFrame({"track_id": as_ids(track_ids).drop_duplicates().reset_index(drop=True)})
    con.register("excluded_frame", ids)
    con.execute("CREATE OR REPLACE TABLE excluded AS SELECT CAST(track_id AS VARCHAR) AS track_id FROM excluded_frame")
    con.unregister("excluded_frame")


def _count(con: Any, relation: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0])


def _timestamp(date: pd.Timestamp) -> str:
    return f"CAST('{date.isoformat(sep=' ')}' AS TIMESTAMP_NS)"
