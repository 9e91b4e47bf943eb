"""Audio I/O: decoding any format, streaming windows, resampling, conversion and corrupt-file detection."""

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
    "find_corrupt": "sonic.cream.audio.corrupt",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, globals(), _EXPORTS)
