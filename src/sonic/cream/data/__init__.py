"""Listening data: the one table reader, event logs, the Music4All release, time splits and split folders."""

from __future__ import annotations

from sonic._lazy import lazy_getattr

_EXPORTS = {
    "EVENT_COLUMNS": "sonic.cream.data.events",
    "ID_COLUMNS": "sonic.cream.data.tables",
    "as_ids": "sonic.cream.data.tables",
    "read_table": "sonic.cream.data.tables",
    "epoch_unit": "sonic.cream.data.events",
    "compress": "sonic.cream.data.events",
    "load_events": "sonic.cream.data.events",
    "load_track_ids": "sonic.cream.data.events",
    "normalise_events": "sonic.cream.data.events",
    "Music4All": "sonic.cream.data.music4all",
    "load_music4all": "sonic.cream.data.music4all",
    "PART_NAMES": "sonic.cream.data.splits",
    "PROTOCOLS": "sonic.cream.data.splits",
    "Split": "sonic.cream.data.splits",
    "SplitConfig": "sonic.cream.data.splits",
    "get_protocol": "sonic.cream.data.splits",
    "split_events": "sonic.cream.data.splitting",
    "read_split": "sonic.cream.data.split_files",
    "refuse_other_split": "sonic.cream.data.split_guard",
    "read_split_folder": "sonic.cream.data.split_files",
    "SplitFolder": "sonic.cream.data.split_files",
    "split_file": "sonic.cream.data.split_files",
    "split_statistics": "sonic.cream.data.split_files",
    "write_split": "sonic.cream.data.split_files",
    "WrittenSplit": "sonic.cream.data.split_files",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, globals(), _EXPORTS)
