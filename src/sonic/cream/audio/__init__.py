"""Audio I/O: decoding any format, streaming windows, resampling, conversion, corrupt files, folder jobs."""

from __future__ import annotations

from sonic._lazy import lazy_getattr

_EXPORTS = {
    "AUDIO_EXTENSIONS": "sonic.cream.audio.load",
    "MIN_SECONDS": "sonic.cream.audio.load",
    "RESAMPLE_QUALITY": "sonic.cream.audio.load",
    "AudioFile": "sonic.cream.audio.load",
    "check_waveform": "sonic.cream.audio.load",
    "decode": "sonic.cream.audio.load",
    "decode_many": "sonic.cream.audio.load",
    "find_audio_files": "sonic.cream.audio.load",
    "mix_down": "sonic.cream.audio.load",
    "open_audio": "sonic.cream.audio.load",
    "resample": "sonic.cream.audio.load",
    "track_id": "sonic.cream.audio.load",
    "load_decoders": "sonic.cream.audio.decoders",
    "convert_folder": "sonic.cream.audio.convert",
    "ExcerptSettings": "sonic.cream.audio.excerpt",
    "cut_excerpt": "sonic.cream.audio.excerpt",
    "EXCERPT_SUFFIX": "sonic.cream.audio.excerpt",
    "find_corrupt": "sonic.cream.audio.corrupt",
    "FAILURE_COLUMNS": "sonic.cream.audio.folder_jobs",
    "AudioFolder": "sonic.cream.audio.folder_jobs",
    "audio_folder": "sonic.cream.audio.folder_jobs",
    "check_window": "sonic.cream.audio.folder_jobs",
    "read_exclude": "sonic.cream.audio.folder_jobs",
    "unreadable_reason": "sonic.cream.audio.folder_jobs",
    "write_failures": "sonic.cream.audio.folder_jobs",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, globals(), _EXPORTS)
