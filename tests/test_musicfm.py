"""MusicFM (24 kHz) on a tiny checkpoint written as the published pretrained_msd.pt + msd_stats.json.

Its hidden states are checked against upstream MusicFM's own code in test_upstream_references.py; here:
the file format, sizes read from the tensors, the published conformer settings, the rate, and that the
vector is a mean over time (one value per channel), not over channels.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from audio_fixtures import noise, tone  # noqa: E402

from sonic.errors import SonicError  # noqa: E402
from sonic.tails.base import EMBEDDERS  # noqa: E402
from sonic.tails.models import musicfm  # noqa: E402
from sonic.testing.tiny import MUSICFM_STATS, tiny_musicfm  # noqa: E402

RATE = 24_000


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_musicfm(tmp_path_factory.mktemp("musicfm") / "MusicFM")


def test_reads_the_published_files_and_averages_over_time(checkpoint):
    folder, state = checkpoint
    embedder = EMBEDDERS.create("musicfm", checkpoint=str(folder), device="cpu")
    config = musicfm.musicfm_config(MUSICFM_STATS, state, source="test")
    clip = tone(440.0, 0.6, RATE) + noise(0.6, RATE)

    ours = embedder.embed([clip])[0]
    with torch.no_grad():
        last = embedder.module(torch.from_numpy(clip[None, :]))[-1]  # (1, frames, channels)

    assert (config.encoder_dim, config.encoder_depth, config.conv_dim) == (32, 2, 4)
    assert config.conformer["position_embeddings_type"] == "rotary" and config.conformer["num_attention_heads"] == 16
    assert last.shape[1] == 15 and last.shape[2] == 32  # 0.6 s at 25 frames/s; 32 channels
    assert ours.shape == (32,) and embedder.dim == 32
    np.testing.assert_allclose(ours, last.mean(dim=1)[0].numpy(), rtol=1e-4, atol=1e-5)
    assert embedder.sample_rate == 24_000 and embedder.describe()["sample_rate"] == 24_000
    assert embedder.describe()["weights_file"] == "pretrained_msd.pt"
    assert embedder.describe()["ignored_parameters"] == 3


def test_padding_free_batches_and_missing_files(checkpoint, tmp_path):
    folder, _ = checkpoint
    embedder = EMBEDDERS.create("musicfm", checkpoint=str(folder), device="cpu", window_seconds=0.2, batch_size=2)
    clips = [noise(0.45, RATE, seed=1), tone(220.0, 0.1, RATE), noise(0.3, RATE, seed=3)]
    np.testing.assert_allclose(
        embedder.embed(clips), np.stack([embedder.embed([c])[0] for c in clips]), rtol=1e-4, atol=1e-5
    )
    with pytest.raises(SonicError, match="pretrained_msd.pt with msd_stats.json"):
        musicfm.from_name("musicfm", checkpoint=str(tmp_path))
