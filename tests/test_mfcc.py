"""The MFCC embedder against librosa, its names and its manifest entry (sonic.tails.models.mfcc)."""

from __future__ import annotations

import dataclasses

import librosa
import numpy as np
import pytest
import scipy.fft
from audio_fixtures import noise, tone

from sonic.cream.spectra.core import mel_filterbank
from sonic.errors import AudioError, SonicError, UnknownNameError
from sonic.tails.base import EMBEDDERS, Embedder
from sonic.tails.models.mfcc import MFCCConfig, MFCCEmbedder, dct_ii_matrix

RATE = 22050


def _chirp(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * (100 * t + 400 * t**2))).astype(np.float32)


SIGNALS = {
    "noise": lambda: noise(3.0, RATE, amplitude=0.2, seed=1),
    "sine": lambda: tone(440.0, 2.0, RATE),
    "chirp": lambda: _chirp(4.0),
    "quiet-tone-plus-noise": lambda: tone(97.0, 2.5, RATE, amplitude=1e-3) + noise(2.5, RATE, amplitude=1e-4, seed=2),
    "odd-length": lambda: noise(1.2345, RATE, seed=3),
}


def _librosa_mean_mfcc(waveform: np.ndarray, n_mfcc: int) -> np.ndarray:
    mfcc = librosa.feature.mfcc(y=waveform, sr=RATE, n_mfcc=n_mfcc, n_fft=2048, hop_length=512, n_mels=128)
    return mfcc.mean(axis=1)


@pytest.mark.parametrize("n_mfcc", [13, 20, 104])
@pytest.mark.parametrize("signal", sorted(SIGNALS))
def test_mfcc_equals_librosa(signal, n_mfcc):
    waveform = SIGNALS[signal]()
    expected = _librosa_mean_mfcc(waveform, n_mfcc)

    vector = MFCCEmbedder.from_name(f"mfcc_{n_mfcc}").embed([waveform])[0]

    assert vector.shape == (n_mfcc,) and vector.dtype == np.float32
    np.testing.assert_allclose(vector, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_batch_rows_equal_single_embeddings():
    embedder = MFCCEmbedder.from_name("mfcc_20")
    batch = [noise(1.0, RATE, seed=4), tone(220.0, 3.0, RATE), _chirp(2.0)]

    together = embedder.embed(batch)

    np.testing.assert_array_equal(together, np.vstack([embedder.embed([w]) for w in batch]))


def test_mfcc_104_has_exactly_104_dimensions():
    embedder = EMBEDDERS.create("mfcc_104")

    assert isinstance(embedder, Embedder)
    assert (embedder.name, embedder.dim, embedder.sample_rate, embedder.modality) == ("mfcc_104", 104, RATE, "audio")
    assert embedder.embed([tone(440.0, 1.0, RATE)]).shape == (1, 104)
    assert embedder.runs_in_workers is True


@pytest.mark.parametrize("name", ["mfcc_0", "mfcc_x", "mfcc_129", "mfcc_", "mfcc_-3", "mfcc_13b"])
def test_bad_mfcc_names_list_what_is_valid(name):
    with pytest.raises(UnknownNameError, match=r"mfcc_1 \.\. mfcc_128") as raised:
        EMBEDDERS.create(name)

    assert repr(name) in str(raised.value)


def test_unknown_embedder_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match=r"unknown embedder 'mfc'; known: .*mfcc_<N>"):
        EMBEDDERS.create("mfc")


def test_config_is_frozen_and_validated():
    config = MFCCConfig()

    assert dataclasses.astuple(config) == (104, 2048, 512, 128, RATE)  # n_mfcc, n_fft, hop_length, n_mels, rate
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.n_mfcc = 3  # type: ignore[misc]
    with pytest.raises(SonicError, match="n_mels is 40"):
        MFCCConfig(n_mfcc=50, n_mels=40)
    with pytest.raises(SonicError, match="hop_length must be a positive integer"):
        MFCCConfig(hop_length=0)


def test_describe_gives_the_manifest_parameters():
    description = MFCCEmbedder.from_name("mfcc_104").describe()

    assert description["model"] == "mfcc_104"
    assert description["sample_rate"] == RATE
    assert description["pooling"] == "mean over time"
    parameters = description["parameters"]
    assert [parameters[key] for key in ("n_mfcc", "n_fft", "hop_length", "n_mels")] == [104, 2048, 512, 128]
    assert parameters["top_db"] == 80.0 and parameters["amin"] == 1e-10 and parameters["mel_scale"] == "slaney"


def test_filterbank_and_dct_match_their_definitions():
    np.testing.assert_allclose(
        mel_filterbank(RATE, 2048, 128), librosa.filters.mel(sr=RATE, n_fft=2048, n_mels=128), atol=1e-7
    )
    x = np.random.default_rng(5).standard_normal(128)
    np.testing.assert_allclose(dct_ii_matrix(20, 128) @ x, scipy.fft.dct(x, type=2, norm="ortho")[:20], atol=1e-12)


@pytest.mark.parametrize(
    ("waveform", "message"),
    [
        (np.zeros((2, 1000), np.float32), "need mono"),
        (np.zeros(0, np.float32), "empty"),
        (np.zeros(1000, np.int16), "dtype int16"),
    ],
    ids=["stereo", "empty", "integer"],
)
def test_embed_rejects_what_is_not_a_mono_float_waveform(waveform, message):
    with pytest.raises(AudioError, match=message):
        MFCCEmbedder.from_name("mfcc_13").embed([tone(440.0, 0.5, RATE), waveform])


@pytest.mark.parametrize("name", ["mfcc_104", "mfcc_20"])
def test_keeps_the_pitch_order_of_sine_tones_tone_by_tone(name):
    pitches = 220.0 * 2.0 ** (np.arange(25) / 12)  # a semitone apart over two octaves from A3
    embedder = MFCCEmbedder.from_name(name)
    vectors = embedder.embed([tone(pitch, 1.0, embedder.sample_rate) for pitch in pitches]).astype(np.float64)
    distance = np.linalg.norm(vectors[:, None] - vectors[None, :], axis=-1)  # (25, 25)

    for i in range(len(pitches)):
        near = max(distance[i, j] for j in (i - 1, i + 1) if 0 <= j < len(pitches))
        far = [distance[i, j] for j in range(len(pitches)) if abs(i - j) >= 6]
        assert near < min(far), f"tone {pitches[i]:.0f} Hz is closer to a far pitch than to its neighbours"
