"""The contract every registered audio embedder keeps, on inputs with a known answer.

Registering an embedder puts it under these tests: add a default name for it to
``CONTRACT_NAMES`` (``test_every_registered_embedder_is_under_contract`` fails until then).
"""

from __future__ import annotations

import numpy as np
import pytest
from audio_fixtures import noise, tone

from sonic.tails.base import EMBEDDERS, Embedder

#: Names built and checked here, at least one per registry entry or family.
CONTRACT_NAMES = ["mfcc_104", "mfcc_20"]
#: Names whose published checkpoints are not here; each is checked on a tiny checkpoint in its own test file.
CHECKED_ON_TINY_CHECKPOINTS = {
    "mert-v1-95m": "test_mert.py",
    "mert-v1-330m": "test_mert.py",
    "music2vec-v1": "test_music2vec.py",
    "muq": "test_muq.py",
    "muq-mulan": "test_muq.py",
    "musicfm": "test_musicfm.py",
    "encodecmae-base": "test_encodecmae.py",
}

#: Pitches a semitone apart over two octaves from A3.
PITCHES_HZ = 220.0 * 2.0 ** (np.arange(25) / 12)
#: Intervals (in semitones) that count as far apart, against one semitone as near.
FAR_SEMITONES = 6


@pytest.fixture(scope="module", params=CONTRACT_NAMES)
def embedder(request) -> Embedder:
    return EMBEDDERS.create(request.param)


def test_every_registered_embedder_is_under_contract():
    families = {name.removesuffix("_<N>") for name in EMBEDDERS.names()}
    covered = {name for name in families if any(n == name or n.startswith(f"{name}_") for n in CONTRACT_NAMES)}
    covered |= families & set(CHECKED_ON_TINY_CHECKPOINTS)

    assert covered == families, f"add a name for {sorted(families - covered)} to CONTRACT_NAMES"


def test_declares_the_protocol(embedder):
    assert isinstance(embedder, Embedder)
    assert isinstance(embedder.dim, int) and embedder.dim > 0
    assert isinstance(embedder.sample_rate, int) and embedder.sample_rate > 0
    assert embedder.modality == "audio"
    assert embedder.name in CONTRACT_NAMES
    description = embedder.describe()
    assert {"model", "sample_rate", "pooling"} <= set(description)


def test_output_shape_dtype_and_finite(embedder):
    rate = embedder.sample_rate
    batch = [tone(440.0, 1.0, rate), noise(2.5, rate), np.zeros(rate, np.float32)]

    vectors = embedder.embed(batch)

    assert vectors.shape == (3, embedder.dim)
    assert vectors.dtype == np.float32
    assert np.isfinite(vectors).all()


def test_deterministic_and_independent_of_batching(embedder):
    rate = embedder.sample_rate
    batch = [noise(1.5, rate, seed=7), tone(330.0, 1.5, rate)]

    first = embedder.embed(batch)

    np.testing.assert_array_equal(first, embedder.embed(batch))
    np.testing.assert_allclose(first[1], embedder.embed(batch[1:])[0], rtol=1e-5, atol=1e-6)


def test_keeps_pitch_order_of_sine_tones(embedder):
    rate = embedder.sample_rate
    vectors = embedder.embed([tone(pitch, 1.0, rate) for pitch in PITCHES_HZ]).astype(np.float64)
    distance = np.linalg.norm(vectors[:, None] - vectors[None, :], axis=-1)  # (25, 25)

    n = len(PITCHES_HZ)
    for i in range(n):
        near = max(distance[i, j] for j in (i - 1, i + 1) if 0 <= j < n)
        far = [distance[i, j] for j in range(n) if abs(i - j) >= FAR_SEMITONES]
        assert near < min(far), f"tone {PITCHES_HZ[i]:.0f} Hz is closer to a far pitch than to its neighbours"
