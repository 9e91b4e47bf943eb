"""Spectral features and pictures: framing, power and mel spectra, decibels, the four pictures and their figures."""

from __future__ import annotations

from sonic._lazy import lazy_getattr

_EXPORTS = {
    "AMIN_POWER": "sonic.cream.spectra.core",
    "checked_waveform": "sonic.cream.spectra.core",
    "hz_to_mel": "sonic.cream.spectra.core",
    "mel_filterbank": "sonic.cream.spectra.core",
    "mel_power": "sonic.cream.spectra.core",
    "power_spectrogram": "sonic.cream.spectra.core",
    "power_to_db": "sonic.cream.spectra.core",
    "MelSpectrogram": "sonic.cream.spectra.pictures",
    "Chromagram": "sonic.cream.spectra.pictures",
    "FftSpectrum": "sonic.cream.spectra.pictures",
    "Tempogram": "sonic.cream.spectra.pictures",
    "mel_spectrogram": "sonic.cream.spectra.pictures",
    "chromagram": "sonic.cream.spectra.pictures",
    "fft_spectrum": "sonic.cream.spectra.pictures",
    "tempogram": "sonic.cream.spectra.pictures",
    "save_figure": "sonic.cream.spectra.figures",
    "visualize": "sonic.cream.spectra.render",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, globals(), _EXPORTS)
