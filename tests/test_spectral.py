"""The spectral core (sonic.cream.spectra.core) against librosa, and its known answers."""

from __future__ import annotations

import numpy as np
import pytest
from audio_fixtures import noise, tone

from sonic.cream.spectra.core import (
    checked_waveform,
    hz_to_mel,
    mel_filterbank,
    mel_frequencies,
    mel_power,
    mel_to_hz,
    n_frames,
    power_spectrogram,
    power_to_db,
)
from sonic.errors import AudioError

librosa = pytest.importorskip("librosa")


@pytest.mark.parametrize(
    ("n_fft", "hop_length", "n_samples"), [(2048, 512, 30_000), (512, 160, 16_001), (1024, 256, 2000)]
)
def test_power_spectrogram_equals_librosa_stft_power(n_fft, hop_length, n_samples):
    y = noise(n_samples / 22050, 22050, seed=3) + tone(1000.0, n_samples / 22050, 22050)

    ours = power_spectrogram(y, n_fft=n_fft, hop_length=hop_length)
    theirs = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length, pad_mode="constant")) ** 2

    assert ours.shape == theirs.shape == (n_fft // 2 + 1, n_frames(len(y), hop_length))
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * theirs.max())


@pytest.mark.parametrize(
    ("sample_rate", "n_mels", "fmin", "fmax"), [(22050, 128, 0.0, None), (16000, 96, 30.0, 7600.0)]
)
def test_mel_filterbank_equals_librosa_at_any_sample_rate(sample_rate, n_mels, fmin, fmax):
    ours = mel_filterbank(sample_rate, 1024, n_mels, fmin_hz=fmin, fmax_hz=fmax)
    theirs = librosa.filters.mel(sr=sample_rate, n_fft=1024, n_mels=n_mels, fmin=fmin, fmax=fmax)

    np.testing.assert_allclose(ours, theirs, atol=1e-7)
    top = fmax or sample_rate / 2
    centres = librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=top)[1:-1]
    np.testing.assert_allclose(mel_frequencies(n_mels, fmin_hz=fmin, fmax_hz=top), centres)


def test_mel_scale_round_trips_and_is_linear_below_1khz():
    hz = np.array([0.0, 200.0, 999.0, 1000.0, 4000.0, 11025.0])

    np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz)), hz, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(hz_to_mel(np.array([300.0, 600.0])), [4.5, 9.0])


def test_power_to_db_equals_librosa_and_floors_silence():
    power = np.abs(np.random.default_rng(0).standard_normal((20, 30))).astype(np.float32) ** 4

    np.testing.assert_allclose(power_to_db(power), librosa.power_to_db(power, top_db=80.0), atol=1e-4)
    np.testing.assert_allclose(power_to_db(power, top_db=None), librosa.power_to_db(power, top_db=None), atol=1e-4)
    # float32 log10 differs in the last bit between AVX2 and AVX-512 code paths (-100.00001 against -100.0)
    np.testing.assert_allclose(power_to_db(np.zeros((3, 4)), top_db=None), -100.0, rtol=1e-6)


def test_mel_power_equals_filterbank_times_power_spectrogram():
    y = noise(1.5, 16000, seed=5)

    ours = mel_power(y, 16000, n_fft=512, hop_length=160, n_mels=40, fmin_hz=50.0, fmax_hz=7000.0)
    basis = mel_filterbank(16000, 512, 40, fmin_hz=50.0, fmax_hz=7000.0)
    dense = basis @ power_spectrogram(y, n_fft=512, hop_length=160)

    np.testing.assert_allclose(ours, dense, rtol=1e-5, atol=1e-6 * dense.max())


@pytest.mark.parametrize(
    ("waveform", "message"),
    [
        (np.zeros((2, 100), np.float32), "need mono"),
        (np.zeros(0, np.float32), "is empty"),
        (np.zeros(100, np.int16), "need float32"),
        (np.array([0.0, np.nan], np.float32), "NaN or infinite"),
    ],
)
def test_checked_waveform_names_the_problem(waveform, message):
    with pytest.raises(AudioError, match=message):
        checked_waveform(waveform, "clip 3")
