"""CREAM: audio and data.

Audio decoding and resampling (:mod:`sonic.cream.audio`), listening-event loaders
(:mod:`sonic.cream.events`) and the published time-split protocols (:mod:`sonic.cream.splits`).
Names load on first use.
"""

from __future__ import annotations

import importlib

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
    "write_split": "sonic.cream.splits",
    "read_split": "sonic.cream.splits",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sonic.cream' has no attribute {name!r}")
