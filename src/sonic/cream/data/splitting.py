"""Splitting listening events: :func:`split_events` runs a protocol of :mod:`sonic.cream.data.splits`.

Time splits run the SQL plan of :mod:`sonic.cream.data.engine`; a protocol that is not a time split
names its own splitter in :data:`SPLITTERS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

import pandas as pd

from sonic.cream.data.engine import split_frame
from sonic.cream.data.splits import PROTOCOLS, Split, SplitConfig

#: Splitters of the protocols that are not time splits: "module:function" taking (events, config, exclude_tracks=...).
SPLITTERS = {"leave-last-out": "sonic.cream.data.leave_last_out:split_leave_last_out"}


def split_events(
    events: pd.DataFrame,
    config: SplitConfig,
    *,
    exclude_tracks: Iterable[Any] | None = None,
) -> Split:
    """Split listening ``events`` by ``config`` (the steps in this module's docstring).

    ``events`` is any frame :func:`sonic.cream.data.events.normalise_events` accepts, raw or compressed.
    ``exclude_tracks`` (track ids) are removed everywhere before splitting. Every returned frame is
    sorted by user, first listen, track. Raises :class:`DataError` naming the empty split and the
    dates used when a split would hold no rows. Runs the SQL plan of :mod:`sonic.cream.data.engine`
    (the one that splits files of any size) on the frame.
    """
    splitter = PROTOCOLS[config.protocol].splitter if config.protocol in PROTOCOLS else None
    if splitter is not None:
        module, _, function = SPLITTERS[splitter].partition(":")
        return getattr(importlib.import_module(module), function)(events, config, exclude_tracks=exclude_tracks)
    return split_frame(events, config, exclude_tracks=exclude_tracks)
