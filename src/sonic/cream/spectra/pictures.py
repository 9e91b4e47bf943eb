"""The four spectral pictures of a clip: mel spectrogram, chromagram, FFT spectrum and tempogram.

Each function takes a mono waveform (samples,) float32 and its sample rate, and returns a small frozen
dataclass holding the picture (float32) with the values of its axes. All build on
:mod:`sonic.cream.spectra.core` (librosa's conventions): frames of ``n_fft`` samples every ``hop_length``,
centred, periodic Hann window, so frame ``t`` is centred at ``t * hop_length / sample_rate`` seconds
and a clip of ``n`` samples has ``1 + n // hop_length`` frames.

Decibels are relative to a power of 1.0 (``ref = 1.0``, a full-scale waveform's own unit, as
``librosa.power_to_db``'s default), not to the clip's loudest bin, so that levels compare across
files. They are floored ``top_db`` (default 80) dB below the clip's maximum, and never go below
-100 dB (the power floor ``AMIN_POWER`` = 1e-10): silence is -100 dB everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft

from sonic.cream.spectra.core import (
    AMIN_POWER,
    checked_waveform,
    hann_window,
    mel_frequencies,
    mel_power,
    n_frames,
    power_blocks,
    power_to_db,
)
from sonic.errors import SonicError

#: Pitch classes of the chromagram's rows, from C.
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
#: Chroma filters weight octaves by a Gaussian in log frequency around this centre (librosa's ``ctroct=5``).
CHROMA_CENTRE_HZ = 880.0
#: ... with this standard deviation, in octaves (librosa's ``octwidth=2``).
CHROMA_OCTAVE_WIDTH = 2.0
#: Frames whose strongest pitch class holds less power than this have no chroma: all zero, not normalised noise.
_CHROMA_FLOOR = AMIN_POWER


@dataclass(frozen=True)
class MelSpectrogram:
    """``values`` (n_mels, n_frames) float32 dB re power 1.0, low bands first; band centres
    ``frequencies_hz`` (n_mels,); frame centres ``times_s`` (n_frames,)."""

    values: np.ndarray
    frequencies_hz: np.ndarray
    times_s: np.ndarray
    unit: str = "dB re power 1.0"


@dataclass(frozen=True)
class Chromagram:
    """``values`` (12, n_frames) float32 in 0..1 (each frame's loudest pitch class is 1; silent frames 0),
    rows ``pitch_classes`` C, C#, ..., B; frame centres ``times_s`` (n_frames,)."""

    values: np.ndarray
    times_s: np.ndarray
    pitch_classes: tuple[str, ...] = PITCH_CLASSES
    unit: str = "energy relative to the frame's strongest pitch class"


@dataclass(frozen=True)
class FftSpectrum:
    """``values`` (n_fft // 2 + 1,) float32 dB re power 1.0, the power of each bin averaged over the
    clip's frames; bin frequencies ``frequencies_hz`` (n_fft // 2 + 1,), 0 Hz .. Nyquist."""

    values: np.ndarray
    frequencies_hz: np.ndarray
    unit: str = "dB re power 1.0"


@dataclass(frozen=True)
class Tempogram:
    """``values`` (n_lags, n_frames) float32: local autocorrelation of the onset strength at lags
    ``lags`` (n_lags,) frames = 1 .. win_length - 1, each frame divided by its lag-0 value (so 1 is a
    perfect repeat; silent frames 0). ``bpm`` (n_lags,) is each lag's tempo, ``60 * sample_rate /
    (hop_length * lag)``, decreasing; ``times_s`` (n_frames,) the frame centres."""

    values: np.ndarray
    lags: np.ndarray
    bpm: np.ndarray
    times_s: np.ndarray
    unit: str = "autocorrelation (lag 0 = 1)"

    def tempo_bpm(
        self, *, min_bpm: float = 30.0, max_bpm: float = 300.0, prior_bpm: float = 120.0, prior_octaves: float = 1.0
    ) -> float | None:
        """The clip's tempo: the strongest lag of the mean autocorrelation over frames, in BPM.

        Only lags between ``min_bpm`` and ``max_bpm`` count, each weighted by a mild log-normal prior
        ``exp(-0.5 * (log2(bpm / prior_bpm) / prior_octaves) ** 2)`` (as ``librosa.feature.tempo``),
        which settles a near tie between a tempo and its half or double (so, as with librosa, a fast
        beat may read at half speed: clicks at 180 BPM give about 90). The peak lag is refined by a
        parabola through it and its neighbours. None when the clip has no periodicity (silence).
        """
        keep = (self.bpm >= min_bpm) & (self.bpm <= max_bpm)
        if not keep.any():
            raise SonicError(f"no lag of this tempogram lies between {min_bpm} and {max_bpm} BPM")
        strength = self.values.mean(axis=1, dtype=np.float64)
        prior = np.exp(-0.5 * (np.log2(self.bpm / prior_bpm) / prior_octaves) ** 2)
        score = np.where(keep, strength * prior, -np.inf)
        best = int(np.argmax(score))
        if not score[best] > 0:
            return None
        lag = float(self.lags[best])  # consecutive lags are 1 frame apart
        if 0 < best < len(score) - 1 and np.isfinite(score[best - 1]) and np.isfinite(score[best + 1]):
            before, peak, after = score[best - 1], score[best], score[best + 1]
            curvature = before - 2.0 * peak + after
            if curvature < 0:
                lag += 0.5 * (before - after) / curvature
        return float(self.bpm[best] * self.lags[best] / lag)


def mel_spectrogram(
    waveform: np.ndarray,
    sample_rate: int,
    *,
    n_fft: int = 2048,
    hop_length: int = 512,
    n_mels: int = 128,
    fmin_hz: float = 0.0,
    fmax_hz: float | None = None,
    top_db: float | None = 80.0,
) -> MelSpectrogram:
    """Mel power spectrogram in dB (see the module docstring): (n_mels, n_frames) float32.

    Equals ``librosa.power_to_db(librosa.feature.melspectrogram(...), ref=1.0, top_db=top_db)``.
    ``fmax_hz`` defaults to the Nyquist frequency.
    """
    waveform = _checked(waveform, sample_rate, n_fft, hop_length)
    fmax_hz = _checked_band(sample_rate, n_mels, fmin_hz, fmax_hz)
    power = mel_power(
        waveform, sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, fmin_hz=fmin_hz, fmax_hz=fmax_hz
    )
    centres = mel_frequencies(n_mels, fmin_hz=fmin_hz, fmax_hz=fmax_hz)
    return MelSpectrogram(
        power_to_db(power, top_db=top_db), centres, _frame_times(power.shape[1], sample_rate, hop_length)
    )


def chromagram(
    waveform: np.ndarray, sample_rate: int, *, n_fft: int = 2048, hop_length: int = 512, a4_hz: float = 440.0
) -> Chromagram:
    """Energy per pitch class C .. B in each frame: (12, n_frames) float32, each frame's maximum 1.

    The STFT power spectrum times :func:`chroma_filterbank` (tuned to ``a4_hz``); frames with no
    energy are all zero. Like ``librosa.feature.chroma_stft(..., tuning=0)``, not identical to it.
    """
    waveform = _checked(waveform, sample_rate, n_fft, hop_length)
    filters = chroma_filterbank(sample_rate, n_fft, a4_hz=a4_hz)  # (12, n_bins)
    chroma = np.empty((12, n_frames(len(waveform), hop_length)), dtype=np.float32)
    for start, power in power_blocks(waveform, n_fft=n_fft, hop_length=hop_length):
        chroma[:, start : start + len(power)] = filters @ power.T
    peak = chroma.max(axis=0)
    chroma /= np.where(peak > _CHROMA_FLOOR, peak, np.inf)
    return Chromagram(chroma, _frame_times(chroma.shape[1], sample_rate, hop_length))


def chroma_filterbank(sample_rate: int, n_fft: int, *, a4_hz: float = 440.0) -> np.ndarray:
    """Weights (12, n_fft // 2 + 1) float32 sharing each FFT bin's power among the 12 pitch classes.

    Bin ``k`` (``f = k * sample_rate / n_fft`` Hz, k >= 1) has the fractional MIDI pitch
    ``p = 69 + 12 log2(f / a4_hz)``. Its weight for pitch class ``c`` (0 = C) is a Gaussian of the
    distance ``d = ((p - c + 6) mod 12) - 6`` semitones, of standard deviation half the bin's width in
    semitones (``12 df / (f ln 2)``, at least one semitone wide); a bin's weights sum to 1 over the
    classes. Each bin is then scaled by ``exp(-0.5 * (log2(f / CHROMA_CENTRE_HZ) / CHROMA_OCTAVE_WIDTH)**2)``,
    which favours the octaves of melody and harmony over bass rumble and hiss. The DC bin has no pitch (0).
    """
    bin_hz = sample_rate / n_fft
    frequencies = np.arange(1, n_fft // 2 + 1) * bin_hz  # (n_bins - 1,) Hz, DC left out
    pitch = 69.0 + 12.0 * np.log2(frequencies / a4_hz)
    width = np.maximum(1.0, 12.0 * bin_hz / (frequencies * math.log(2.0)))  # semitones per bin
    distance = np.mod(pitch[None, :] - np.arange(12)[:, None] + 6.0, 12.0) - 6.0  # (12, n_bins - 1)
    weights = np.exp(-0.5 * (distance / (0.5 * width)) ** 2)
    weights /= weights.sum(axis=0, keepdims=True)
    weights *= np.exp(-0.5 * (np.log2(frequencies / CHROMA_CENTRE_HZ) / CHROMA_OCTAVE_WIDTH) ** 2)
    return np.pad(weights, ((0, 0), (1, 0))).astype(np.float32)


def fft_spectrum(
    waveform: np.ndarray, sample_rate: int, *, n_fft: int = 2048, hop_length: int = 512, top_db: float | None = 80.0
) -> FftSpectrum:
    """The clip's spectrum: power of each FFT bin averaged over all frames, in dB: (n_fft // 2 + 1,) float32.

    Averaging short frames (Welch's method) gives a steady estimate whatever the clip's length.
    """
    waveform = _checked(waveform, sample_rate, n_fft, hop_length)
    total = np.zeros(n_fft // 2 + 1, dtype=np.float64)
    for _, power in power_blocks(waveform, n_fft=n_fft, hop_length=hop_length):
        total += power.sum(axis=0, dtype=np.float64)
    mean_power = total / n_frames(len(waveform), hop_length)
    frequencies = np.arange(n_fft // 2 + 1) * (sample_rate / n_fft)
    return FftSpectrum(power_to_db(mean_power, top_db=top_db), frequencies)


def tempogram(
    waveform: np.ndarray,
    sample_rate: int,
    *,
    n_fft: int = 2048,
    hop_length: int = 512,
    n_mels: int = 128,
    win_length: int = 384,
) -> Tempogram:
    """Autocorrelation tempogram: (win_length - 1, n_frames) float32, lags 1 .. win_length - 1 frames.

    The onset strength is the spectral flux of the log-mel spectrogram (:func:`onset_strength`). For
    each frame, the ``win_length`` frames centred on it (zeros beyond the clip) are multiplied by a
    Hann window and autocorrelated; the result is divided by its lag-0 value. The default 384 frames
    (8.9 s at 22050 Hz, hop 512) holds several beats of even slow music (as ``librosa.feature.tempogram``).
    """
    waveform = _checked(waveform, sample_rate, n_fft, hop_length)
    if not (isinstance(win_length, int) and win_length >= 2):
        raise SonicError(f"tempogram window must be an integer >= 2 frames, got {win_length!r}")
    envelope = onset_strength(waveform, sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
    values = _local_autocorrelation(envelope, win_length)
    lags = np.arange(1, win_length)
    bpm = 60.0 * sample_rate / (hop_length * lags)
    return Tempogram(values, lags, bpm, _frame_times(len(envelope), sample_rate, hop_length))


def onset_strength(
    waveform: np.ndarray, sample_rate: int, *, n_fft: int = 2048, hop_length: int = 512, n_mels: int = 128
) -> np.ndarray:
    """Onset strength (n_frames,) float32, dB: the rise of each mel band's level since the previous frame,
    half-wave rectified and averaged over the bands (0 for the first frame)."""
    waveform = _checked(waveform, sample_rate, n_fft, hop_length)
    fmax_hz = _checked_band(sample_rate, n_mels, 0.0, None)
    power = mel_power(waveform, sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, fmax_hz=fmax_hz)
    log_mel = power_to_db(power)
    rise = np.maximum(np.diff(log_mel, axis=1), 0.0)  # (n_mels, n_frames - 1)
    return np.concatenate([[0.0], rise.mean(axis=0)]).astype(np.float32)


def _local_autocorrelation(envelope: np.ndarray, win_length: int, *, block: int = 1024) -> np.ndarray:
    """Windowed autocorrelation of ``envelope`` (n,) around each frame: (win_length - 1, n) float32, lags >= 1."""
    half = win_length // 2
    padded = np.pad(envelope.astype(np.float32), (half, win_length - half))
    windows = np.lib.stride_tricks.sliding_window_view(padded, win_length)[: len(envelope)]  # (n, win) view
    taper = hann_window(win_length)
    out = np.empty((win_length - 1, len(envelope)), dtype=np.float32)
    for start in range(0, len(envelope), block):
        spectrum = scipy.fft.rfft(windows[start : start + block] * taper, n=2 * win_length, axis=-1)
        correlation = scipy.fft.irfft(np.square(spectrum.real) + np.square(spectrum.imag), axis=-1)[:, :win_length]
        energy = correlation[:, :1]
        out[:, start : start + block] = (correlation[:, 1:] / np.where(energy > 1e-12, energy, np.inf)).T
    return out


def _frame_times(count: int, sample_rate: int, hop_length: int) -> np.ndarray:
    """Centres (count,) float64 seconds of the frames of a centred STFT."""
    return np.arange(count) * (hop_length / sample_rate)


def _checked(waveform: np.ndarray, sample_rate: int, n_fft: int, hop_length: int) -> np.ndarray:
    """``waveform`` as float32 (samples,), after checking it and the framing options."""
    waveform = checked_waveform(waveform)
    if not (isinstance(sample_rate, int | np.integer) and sample_rate > 0):
        raise SonicError(f"sample rate must be a positive integer (Hz), got {sample_rate!r}")
    if not (isinstance(n_fft, int) and n_fft >= 2):
        raise SonicError(f"n_fft must be an integer >= 2 samples, got {n_fft!r}")
    if not (isinstance(hop_length, int) and hop_length >= 1):
        raise SonicError(f"hop_length must be a positive integer (samples), got {hop_length!r}")
    return waveform


def _checked_band(sample_rate: int, n_mels: int, fmin_hz: float, fmax_hz: float | None) -> float:
    """The mel band's top frequency (default Nyquist), after checking ``n_mels`` and the band."""
    if not (isinstance(n_mels, int) and n_mels >= 1):
        raise SonicError(f"n_mels must be a positive integer, got {n_mels!r}")
    nyquist = sample_rate / 2.0
    fmax_hz = nyquist if fmax_hz is None else float(fmax_hz)
    if not 0.0 <= fmin_hz < fmax_hz <= nyquist:
        raise SonicError(f"mel band must satisfy 0 <= fmin_hz < fmax_hz <= {nyquist:g} Hz, got {fmin_hz}..{fmax_hz}")
    return fmax_hz
