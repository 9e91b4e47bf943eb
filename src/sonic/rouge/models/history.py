"""Users' histories as index arrays: time-ordered unique tracks, and held-out targets.

A history is CSR-like: ``offsets`` (n_users + 1,) int64 and ``items`` (total,) int64 catalogue
rows, user ``u``'s tracks being ``items[offsets[u]:offsets[u + 1]]``, oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sonic.rouge.shared import SeenTracks, check_events, rows_in


@dataclass(frozen=True)
class Histories:
    """Per-user index sequences over a catalogue: ``offsets`` (n_users + 1,), ``items`` (total,) int64."""

    offsets: np.ndarray
    items: np.ndarray

    def of(self, user_row: int) -> np.ndarray:
        return self.items[self.offsets[user_row] : self.offsets[user_row + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def ordered_histories(events: pd.DataFrame | None, seen: SeenTracks, *, what: str = "events") -> Histories:
    """Each known user's catalogue tracks in ``events``, by first listen, each track once.

    Rows are ordered by ``timestamp`` when the frame has one, ties (and frames without time) by
    input order (a stable sort), so the sequential protocols' tie rule holds. Users and tracks
    unknown to ``seen`` are dropped.
    """
    n_users = len(seen.user_ids)
    if events is None or len(events) == 0:
        return Histories(np.zeros(n_users + 1, np.int64), np.zeros(0, np.int64))
    check_events(events, what)
    users = rows_in(seen.user_ids, events["user_id"].astype(str))
    tracks = rows_in(seen.track_ids, events["track_id"].astype(str))
    if "timestamp" in events.columns:
        stamps = pd.to_datetime(events["timestamp"]).to_numpy("datetime64[ns]").astype(np.int64)
    else:
        stamps = np.zeros(len(events), np.int64)
    known = (users >= 0) & (tracks >= 0)
    users, tracks, stamps = users[known], tracks[known], stamps[known]
    order = np.lexsort((np.arange(len(users)), stamps, users))  # user, time, input order
    users, tracks = users[order], tracks[order]
    keys = users * max(seen.n_tracks, 1) + tracks
    _, first = np.unique(keys, return_index=True)
    keep = np.zeros(len(keys), bool)
    keep[first] = True  # the first (earliest) row of each (user, track) pair
    users, tracks = users[keep], tracks[keep]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=n_users))]).astype(np.int64)
    return Histories(offsets, tracks)


def concatenated(first: Histories, second: Histories) -> Histories:
    """Each user's ``first`` history followed by the tracks of ``second`` not already in it."""
    n_users = len(first.offsets) - 1
    pieces, lengths = [], np.zeros(n_users, np.int64)
    for user in range(n_users):
        a, b = first.of(user), second.of(user)
        if len(b):
            b = b[~np.isin(b, a)]
        pieces.append(a)
        pieces.append(b)
        lengths[user] = len(a) + len(b)
    items = np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
    return Histories(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), items.astype(np.int64))
