"""The spectral core (sonic.cream.spectral) against librosa, and its known answers."""

from __future__ import annotations

import numpy as np
import pytest
from audio_fixtures import noise, tone

from sonic.cream.spectral import (
    hz_to_mel,
    mel_filterbank,
    mel_frequencies,
    mel_to_hz,
    n_frames,
    power_spectrogram,
    power_to_db,
)

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
    assert (power_to_db(np.zeros((3, 4)), top_db=None) == -100.0).all()
