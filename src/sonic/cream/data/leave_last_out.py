"""The leave-last-out protocol, the sequential-recommendation standard (BERT4Rec, SASRec, RecBole).

Per user, the tracks in order of first listen (each track once): the **last** is ``test``, the one
before it ``val``, the rest ``train``. Ties in time are broken by input order (a stable sort), never
by id: on MovieLens-100k 415 of 943 users have test and validation at one timestamp (REFERENCE
section 9), and a tool that sorts otherwise picks other targets. A user with fewer than three
distinct tracks stays whole in train. The optional window (``start_date``, ``end_date``) is
applied first; there is no test date and no user draw.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from sonic.cream.data.events import EVENT_COLUMNS, as_ids, normalise_events
from sonic.errors import DataError

NAME = "leave-last-out"
MIN_TRACKS = 3  # a user needs a train, a val and a test track


def split_leave_last_out(events: pd.DataFrame, config: Any, *, exclude_tracks: Iterable[Any] | None = None) -> Any:
    """Split ``events`` (raw or compressed) per user: last track test, the one before val, rest train.

    ``config`` is the :class:`~sonic.cream.data.splits.SplitConfig` (only its window is read).
    Returns a :class:`~sonic.cream.data.splits.Split`; each frame keeps ``user_id, track_id,
    timestamp, count`` (first listen, summed plays) in the users' own order.
    """
    from sonic.cream.data.splits import Split

    frame = normalise_events(events, source="the listening events")
    if exclude_tracks is not None:
        frame = frame[~frame["track_id"].isin(pd.Index(as_ids(exclude_tracks).drop_duplicates()))]
    if config.start_date is not None:
        frame = frame[frame["timestamp"] >= config.start_date]
    if config.end_date is not None:
        frame = frame[frame["timestamp"] < config.end_date]
    if frame.empty:
        raise DataError(f"no listening event is left to split by {NAME} ({config.describe()})")
    pairs = first_listens(frame)
    position = pairs.groupby("user_id", sort=False).cumcount(ascending=False).to_numpy()  # 0 = the last
    long_enough = pairs.groupby("user_id", sort=False)["track_id"].transform("size").to_numpy() >= MIN_TRACKS
    test, val = long_enough & (position == 0), long_enough & (position == 1)
    if not test.any():
        raise DataError(f"no user has the {MIN_TRACKS} distinct tracks {NAME} needs (train, val and test)")
    tidy = list(EVENT_COLUMNS)
    return Split(
        train=pairs[~(test | val)][tidy].reset_index(drop=True),
        val=pairs[val][tidy].reset_index(drop=True),
        test=pairs[test][tidy].reset_index(drop=True),
        config=config,
    )


def first_listens(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, track): first-listen time, summed count; per user ordered by that time,
    ties by the input position of the first listen (stable). Users appear in sorted order."""
    frame = events.reset_index(drop=True)
    frame = frame.assign(_row=np.arange(len(frame)))
    frame = frame.sort_values(["user_id", "timestamp", "_row"], kind="stable")
    grouped = frame.groupby(["user_id", "track_id"], sort=False, observed=True)
    counts = grouped["count"].transform("sum")
    first = ~frame.duplicated(["user_id", "track_id"], keep="first")
    out = frame[first.to_numpy()].assign(count=counts[first.to_numpy()].astype(np.int64))
    return out.drop(columns="_row").reset_index(drop=True)
