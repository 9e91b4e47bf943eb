"""CREAM: audio and data.

Audio decoding, streaming and resampling (:mod:`sonic.cream.audio`, any format: libsndfile, FFmpeg
for m4a/aac), conversion (:mod:`~sonic.cream.convert`) and corrupt-file detection
(:mod:`~sonic.cream.corrupt`); the spectral core and the four pictures (:mod:`~sonic.cream.spectral`,
:mod:`~sonic.cream.spectra`, figures in :mod:`~sonic.cream.figures` and :mod:`~sonic.cream.visualize`);
model-ready spectrogram images for vision embedders (:mod:`~sonic.cream.images`); listening-event
loaders (:mod:`~sonic.cream.events`) and the published time-split protocols (:mod:`~sonic.cream.splits`,
split folders: :mod:`~sonic.cream.split_files`). Names load on first use.
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
    "open_audio": "sonic.cream.audio",
    "decode_many": "sonic.cream.audio",
    "convert_folder": "sonic.cream.convert",
    "find_corrupt": "sonic.cream.corrupt",
    "mel_spectrogram": "sonic.cream.spectra",
    "chromagram": "sonic.cream.spectra",
    "fft_spectrum": "sonic.cream.spectra",
    "tempogram": "sonic.cream.spectra",
    "save_figure": "sonic.cream.figures",
    "visualize": "sonic.cream.visualize",
    "spectrogram_images": "sonic.cream.images",
    "ImageConfig": "sonic.cream.images",
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
