"""The four spectral pictures (sonic.cream.spectra.pictures): known answers on generated audio, and librosa."""

from __future__ import annotations

import numpy as np
import pytest
from audio_fixtures import noise, tone

from sonic.cream.spectra.pictures import (
    PITCH_CLASSES,
    Tempogram,
    chroma_filterbank,
    chromagram,
    fft_spectrum,
    mel_spectrogram,
    tempogram,
)
from sonic.errors import SonicError

librosa = pytest.importorskip("librosa")

SR = 22050


def click_track(bpm: float, seconds: float, sample_rate: int = SR) -> np.ndarray:
    """Clicks (5-ms noise bursts) every 60 / bpm seconds: (samples,) float32."""
    out = np.zeros(round(seconds * sample_rate), dtype=np.float32)
    burst = noise(0.005, sample_rate, amplitude=0.5, seed=1) * np.hanning(round(0.005 * sample_rate))
    for start in np.arange(0.0, seconds - 0.01, 60.0 / bpm):
        index = round(start * sample_rate)
        out[index : index + len(burst)] += burst
    return out


@pytest.mark.parametrize(
    ("n_fft", "hop_length", "n_mels", "fmin", "fmax", "sample_rate"),
    [(2048, 512, 128, 0.0, None, 22050), (1024, 256, 64, 40.0, 7000.0, 16000)],
)
def test_mel_spectrogram_equals_librosa_in_db(n_fft, hop_length, n_mels, fmin, fmax, sample_rate):
    y = tone(440.0, 2.0, sample_rate) + noise(2.0, sample_rate, amplitude=0.05)

    ours = mel_spectrogram(
        y, sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, fmin_hz=fmin, fmax_hz=fmax
    )
    power = librosa.feature.melspectrogram(
        y=y, sr=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, fmin=fmin, fmax=fmax
    )
    theirs = librosa.power_to_db(power, ref=1.0, top_db=80.0)

    assert ours.values.shape == theirs.shape == (n_mels, 1 + len(y) // hop_length)
    assert ours.values.dtype == np.float32
    np.testing.assert_allclose(ours.values, theirs, atol=2e-3)
    top = fmax or sample_rate / 2
    np.testing.assert_allclose(ours.frequencies_hz, librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=top)[1:-1])
    np.testing.assert_allclose(
        ours.times_s, librosa.frames_to_time(np.arange(theirs.shape[1]), sr=sample_rate, hop_length=hop_length)
    )


@pytest.mark.parametrize("frequency", [440.0, 523.25, 1000.0, 3000.0])
def test_fft_spectrum_of_a_sine_peaks_at_its_frequency(frequency):
    spectrum = fft_spectrum(tone(frequency, 2.0, SR), SR)

    assert spectrum.values.shape == spectrum.frequencies_hz.shape == (2048 // 2 + 1,)
    assert spectrum.values.dtype == np.float32
    np.testing.assert_allclose(spectrum.frequencies_hz[[0, -1]], [0.0, SR / 2])
    peak = spectrum.frequencies_hz[np.argmax(spectrum.values)]
    assert abs(peak - frequency) <= SR / 2048
    assert spectrum.values.max() - np.median(spectrum.values) > 60  # a clean line over a floor


@pytest.mark.parametrize(("frequency", "pitch_class"), [(440.0, "A"), (523.25, "C"), (329.63, "E"), (196.0, "G")])
def test_chromagram_of_a_tone_peaks_at_its_pitch_class(frequency, pitch_class):
    y = tone(frequency, 2.0, SR)

    chroma = chromagram(y, SR)
    reference = librosa.feature.chroma_stft(y=y, sr=SR, tuning=0.0)

    assert chroma.values.shape == reference.shape == (12, 1 + len(y) // 512)
    assert chroma.pitch_classes == PITCH_CLASSES and chroma.values.dtype == np.float32
    assert PITCH_CLASSES[np.argmax(chroma.values.mean(axis=1))] == pitch_class
    assert np.argmax(chroma.values.mean(axis=1)) == np.argmax(reference.mean(axis=1))
    np.testing.assert_allclose(chroma.values.max(axis=0), 1.0, rtol=1e-6)


def test_chromagram_of_a_chord_follows_librosa():
    y = sum(tone(f, 2.0, SR, amplitude=0.2) for f in (261.63, 329.63, 392.0)) + noise(2.0, SR, amplitude=0.02)

    ours = chromagram(y, SR).values
    theirs = librosa.feature.chroma_stft(y=y, sr=SR, tuning=0.0)

    assert {PITCH_CLASSES[i] for i in np.argsort(ours.mean(axis=1))[-3:]} == {"C", "E", "G"}
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.99


def test_chroma_filterbank_shares_each_bin_among_pitch_classes():
    filters = chroma_filterbank(SR, 2048)

    assert filters.shape == (12, 1025) and filters.dtype == np.float32
    assert np.all(filters[:, 0] == 0)  # DC has no pitch
    a4_bin = round(440.0 * 2048 / SR)
    assert np.argmax(filters[:, a4_bin]) == PITCH_CLASSES.index("A")


@pytest.mark.parametrize("bpm", [120.0, 90.0, 137.0])
def test_tempogram_of_a_click_track_peaks_at_its_tempo(bpm):
    picture = tempogram(click_track(bpm, 12.0), SR)

    n_frames = 1 + round(12.0 * SR) // 512
    assert picture.values.shape == (383, n_frames) and picture.values.dtype == np.float32
    np.testing.assert_allclose(picture.bpm, 60.0 * SR / (512 * picture.lags))
    assert np.all(picture.values <= 1.0 + 1e-5)
    assert picture.tempo_bpm() == pytest.approx(bpm, rel=0.03)
    profile = picture.values.mean(axis=1)
    beat_lag = 60.0 * SR / (512 * bpm)
    near_beat = np.abs(picture.lags - beat_lag) <= 1
    between_beats = (picture.bpm >= 60) & (picture.bpm <= 300) & ~near_beat & (np.abs(picture.lags - 2 * beat_lag) > 1)
    assert profile[near_beat].max() > 4 * profile[between_beats].mean()


def test_tempo_prior_settles_a_tie_towards_120_bpm():
    bpm = np.array([240.0, 120.0, 60.0])
    picture = Tempogram(np.ones((3, 4), np.float32), np.array([1, 2, 4]), bpm, np.arange(4) * 0.1)

    assert picture.tempo_bpm() == 120.0
    assert picture.tempo_bpm(prior_bpm=60.0) == 60.0
    with pytest.raises(SonicError, match="no lag"):
        picture.tempo_bpm(min_bpm=300.0, max_bpm=400.0)


def test_silence_gives_the_floor_without_nan():
    silence = np.zeros(2 * SR, dtype=np.float32)

    mel, spectrum = mel_spectrogram(silence, SR), fft_spectrum(silence, SR)
    chroma, tempo = chromagram(silence, SR), tempogram(silence, SR)

    # float32 log10 differs in the last bit between AVX2 and AVX-512 code paths
    np.testing.assert_allclose(mel.values, -100.0, rtol=1e-6)
    np.testing.assert_allclose(spectrum.values, -100.0, rtol=1e-6)
    np.testing.assert_array_equal(chroma.values, 0.0)
    np.testing.assert_array_equal(tempo.values, 0.0)
    assert tempo.tempo_bpm() is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mel_spectrogram(np.zeros((2, 1000), np.float32), SR), "mono"),
        (lambda: chromagram(np.zeros(1000, np.float32), 0), "sample rate"),
        (lambda: fft_spectrum(np.zeros(1000, np.float32), SR, hop_length=0), "hop_length"),
        (lambda: mel_spectrogram(np.zeros(1000, np.float32), SR, fmax_hz=20000.0), "fmax_hz <= 11025"),
        (lambda: tempogram(np.full(1000, np.nan, np.float32), SR), "NaN"),
        (lambda: tempogram(np.zeros(1000, np.float32), SR, win_length=1), "window"),
    ],
)
def test_bad_input_is_a_sonic_error_naming_it(call, message):
    with pytest.raises(SonicError, match=message):
        call()
