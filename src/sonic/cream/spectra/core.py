"""The spectral core every picture and feature shares: framing, power spectrum, mel filters, decibels.

Conventions are librosa's defaults, so results match ``librosa.stft`` / ``librosa.feature.melspectrogram``
to float32 precision, computed with numpy and scipy only:

- frames of ``n_fft`` samples every ``hop_length``, centred (``n_fft // 2`` zeros padded at both
  ends), periodic Hann window; frame ``t`` is centred on sample ``t * hop_length``;
- power spectrum ``|rfft|**2``, bins ``f * sample_rate / n_fft`` Hz for ``f = 0 .. n_fft // 2``;
- mel filters: triangles on the Slaney mel scale (linear below 1 kHz, logarithmic above), each scaled
  to unit area, built for the audio's own sample rate (REFERENCE.md §3: one published image used a
  filterbank built for 955 Hz);
- decibels ``10 log10(max(power, amin) / ref)``, optionally floored ``top_db`` below the maximum.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import numpy as np
import scipy.fft
import scipy.sparse

from sonic.errors import AudioError

#: Power below which a spectrum is floored before taking decibels.
AMIN_POWER = 1e-10
#: Frames transformed together (keeps the working set in cache).
_FRAMES_PER_BLOCK = 256


def checked_waveform(waveform: np.ndarray, what: str = "waveform") -> np.ndarray:
    """``waveform`` as float32 (samples,), or an :class:`AudioError` saying what is wrong with ``what``."""
    waveform = np.asarray(waveform)
    if waveform.ndim != 1:
        raise AudioError(f"{what} has shape {waveform.shape}; need mono (samples,)")
    if waveform.size == 0:
        raise AudioError(f"{what} is empty")
    if not np.issubdtype(waveform.dtype, np.floating):
        raise AudioError(f"{what} has dtype {waveform.dtype}; need float32 in -1..1")
    if not np.isfinite(waveform).all():
        raise AudioError(f"{what} holds NaN or infinite samples")
    return waveform.astype(np.float32, copy=False)


def hann_window(n_fft: int) -> np.ndarray:
    """Periodic Hann window (n_fft,) float32: ``0.5 - 0.5 cos(2 pi n / n_fft)``."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def n_frames(n_samples: int, hop_length: int) -> int:
    """Frames of a centred STFT of ``n_samples`` samples: ``1 + n_samples // hop_length``."""
    return 1 + n_samples // hop_length


def power_blocks(waveform: np.ndarray, *, n_fft: int, hop_length: int) -> Iterator[tuple[int, np.ndarray]]:
    """Power spectra of the centred frames of ``waveform`` (samples,) float32, a block of frames at a time.

    Yields ``(first_frame, power)`` with ``power`` (frames_in_block, n_fft // 2 + 1) float32, so that
    a caller can reduce each block (to mel bands, say) without holding the whole spectrogram.
    """
    window = hann_window(n_fft)
    padded = np.pad(np.asarray(waveform, dtype=np.float32), n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]  # (n_frames, n_fft) view
    for start in range(0, len(frames), _FRAMES_PER_BLOCK):
        spectrum = scipy.fft.rfft(frames[start : start + _FRAMES_PER_BLOCK] * window, axis=-1)  # complex64
        yield start, np.square(spectrum.real) + np.square(spectrum.imag)


def power_spectrogram(waveform: np.ndarray, *, n_fft: int = 2048, hop_length: int = 512) -> np.ndarray:
    """Power spectrogram ``|STFT|**2``: (n_fft // 2 + 1, n_frames) float32, frequency bins by frames."""
    out = np.empty((n_fft // 2 + 1, n_frames(len(waveform), hop_length)), dtype=np.float32)
    for start, power in power_blocks(waveform, n_fft=n_fft, hop_length=hop_length):
        out[:, start : start + len(power)] = power.T
    return out


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above (27 mels per factor 6.4)."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3.0)
    log_region = 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) / (math.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_region, linear)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * (200.0 / 3.0)
    log_region = 1000.0 * np.exp((math.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_region, linear)


def mel_frequencies(n_mels: int, *, fmin_hz: float = 0.0, fmax_hz: float) -> np.ndarray:
    """Centre frequencies (n_mels,) Hz of the mel bands of :func:`mel_filterbank`."""
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin_hz), hz_to_mel(fmax_hz), n_mels + 2))
    return edges[1:-1]


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, *, fmin_hz: float = 0.0, fmax_hz: float | None = None
) -> np.ndarray:
    """Triangular mel filters (n_mels, n_fft // 2 + 1) float32, ``fmin_hz`` .. ``fmax_hz`` (default Nyquist).

    Each filter has unit area (Slaney normalisation).
    """
    fmax_hz = sample_rate / 2.0 if fmax_hz is None else float(fmax_hz)
    bin_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(fmin_hz), hz_to_mel(fmax_hz), n_mels + 2))
    widths_hz = np.diff(edges_hz)  # (n_mels + 1,)
    distance = edges_hz[:, None] - bin_hz[None, :]  # (n_mels + 2, n_bins)
    rising = -distance[:-2] / widths_hz[:-1, None]
    falling = distance[2:] / widths_hz[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights.astype(np.float32)


def mel_power(
    waveform: np.ndarray,
    sample_rate: int,
    *,
    n_fft: int = 2048,
    hop_length: int = 512,
    n_mels: int = 128,
    fmin_hz: float = 0.0,
    fmax_hz: float | None = None,
) -> np.ndarray:
    """Mel power spectrogram (n_mels, n_frames) float32 of ``waveform`` (samples,) at ``sample_rate`` Hz.

    Equals ``mel_filterbank(...) @ power_spectrogram(...)`` without holding the linear spectrogram.
    """
    basis = _sparse_mel_filterbank(sample_rate, n_fft, n_mels, float(fmin_hz), fmax_hz)
    out = np.empty((n_mels, n_frames(len(waveform), hop_length)), dtype=np.float32)
    for start, power in power_blocks(waveform, n_fft=n_fft, hop_length=hop_length):
        out[:, start : start + len(power)] = basis @ power.T
    return out


@functools.lru_cache(maxsize=16)
def _sparse_mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin_hz: float, fmax_hz: float | None
) -> scipy.sparse.csr_array:
    # Each filter covers a few bins, so sparse products cost far less than dense ones.
    return scipy.sparse.csr_array(mel_filterbank(sample_rate, n_fft, n_mels, fmin_hz=fmin_hz, fmax_hz=fmax_hz))


def power_to_db(
    power: np.ndarray, *, ref: float = 1.0, amin: float = AMIN_POWER, top_db: float | None = 80.0
) -> np.ndarray:
    """Decibels ``10 log10(max(power, amin) / ref)``, floored ``top_db`` below the maximum (None: no floor).

    Returns float32 of ``power``'s shape (a new array).
    """
    db = np.maximum(np.asarray(power, dtype=np.float32), np.float32(amin))
    np.log10(db, out=db)
    db *= 10.0
    db -= np.float32(10.0 * math.log10(max(amin, ref)))
    if top_db is not None:
        np.maximum(db, db.max() - np.float32(top_db), out=db)
    return db
