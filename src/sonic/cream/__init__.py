"""CREAM: audio and data.

Audio decoding and resampling (:mod:`sonic.cream.audio`), listening-event loaders
(:mod:`sonic.cream.events`) and the published time-split protocols (:mod:`sonic.cream.splits`, split folders: :mod:`sonic.cream.split_files`).
Names load on first use.
"""

from __future__ import annotations

from sonic._lazy import lazy_getattr

_EXPORTS = {
    "load_events": "sonic.cream.events",
    "normalise_events": "sonic.cream.events",
    "compress": "sonic.cream.events",
    "EVENT_COLUMNS": "sonic.cream.events",
    "decode": "sonic.cream.audio",
    "find_audio_files": "sonic.cream.audio",
    "AUDIO_EXTENSIONS": "sonic.cream.audio",
    "split_events": "sonic.cream.splits",
    "SplitConfig": "sonic.cream.splits",
    "PROTOCOLS": "sonic.cream.splits",
    "write_split": "sonic.cream.split_files",
    "read_split": "sonic.cream.split_files",
    "split_file": "sonic.cream.split_files",
    "split_statistics": "sonic.cream.split_files",
    "Split": "sonic.cream.splits",
    "get_protocol": "sonic.cream.splits",
    "load_track_ids": "sonic.cream.events",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, globals(), _EXPORTS)
