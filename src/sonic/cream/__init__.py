"""CREAM: audio and data, in three sub-packages that talk only through their public names.

- :mod:`sonic.cream.audio`: decoding any format (libsndfile; FFmpeg for m4a/aac), streaming windows,
  resampling, conversion and corrupt-file detection;
- :mod:`sonic.cream.spectra`: the spectral core (framing, power and mel spectra, decibels), the four
  pictures and their labelled figures;
- :mod:`sonic.cream.data`: the one table reader, listening-event loaders, the Music4All release, the published
  time-split protocols and split folders.

Model-ready spectrogram images for vision embedders live beside them in :mod:`sonic.tails.vision`
and are re-exported here. Names load on first use.
"""

from __future__ import annotations

from sonic._lazy import lazy_getattr

_EXPORTS = {
    "load_events": "sonic.cream.data.events",
    "normalise_events": "sonic.cream.data.events",
    "compress": "sonic.cream.data.events",
    "EVENT_COLUMNS": "sonic.cream.data.events",
    "decode": "sonic.cream.audio.load",
    "find_audio_files": "sonic.cream.audio.load",
    "AUDIO_EXTENSIONS": "sonic.cream.audio.load",
    "open_audio": "sonic.cream.audio.load",
    "decode_many": "sonic.cream.audio.load",
    "convert_folder": "sonic.cream.audio.convert",
    "find_corrupt": "sonic.cream.audio.corrupt",
    "mel_spectrogram": "sonic.cream.spectra.pictures",
    "chromagram": "sonic.cream.spectra.pictures",
    "fft_spectrum": "sonic.cream.spectra.pictures",
    "tempogram": "sonic.cream.spectra.pictures",
    "save_figure": "sonic.cream.spectra.figures",
    "visualize": "sonic.cream.spectra.render",
    "spectrogram_images": "sonic.tails.vision.images",
    "ImageConfig": "sonic.tails.vision.images",
    "split_events": "sonic.cream.data.splitting",
    "SplitConfig": "sonic.cream.data.splits",
    "PROTOCOLS": "sonic.cream.data.splits",
    "write_split": "sonic.cream.data.split_files",
    "read_split": "sonic.cream.data.split_files",
    "split_file": "sonic.cream.data.split_files",
    "split_statistics": "sonic.cream.data.split_files",
    "Split": "sonic.cream.data.splits",
    "get_protocol": "sonic.cream.data.splits",
    "load_track_ids": "sonic.cream.data.events",
    "load_music4all": "sonic.cream.data.music4all",
    "Music4All": "sonic.cream.data.music4all",
    "read_table": "sonic.cream.data.tables",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, globals(), _EXPORTS)
