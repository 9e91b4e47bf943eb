"""Music2Vec (data2vec-audio, 16 kHz) through transformers' Data2VecAudioModel, on a tiny published-format folder."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from audio_fixtures import noise, tone  # noqa: E402

from sonic.errors import SonicError  # noqa: E402
from sonic.tails.base import EMBEDDERS  # noqa: E402
from sonic.testing.tiny import tiny_music2vec  # noqa: E402
from sonic.tails.models.windowed import normalize_windows  # noqa: E402

RATE = 16_000


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_music2vec(tmp_path_factory.mktemp("music2vec") / "music2vec-v1")


def test_equals_transformers_own_loading_of_the_same_folder(checkpoint):
    from transformers import Data2VecAudioModel

    folder, _ = checkpoint
    embedder = EMBEDDERS.create("music2vec-v1", checkpoint=str(folder), device="cpu", window_seconds=0.03)
    reference = Data2VecAudioModel.from_pretrained(str(folder), local_files_only=True).eval()
    clip = tone(440.0, 0.09, RATE) + noise(0.09, RATE)

    ours = embedder.embed([clip])[0]
    with torch.no_grad():
        states = reference(torch.from_numpy(normalize_windows(clip.reshape(3, -1)))).last_hidden_state
    np.testing.assert_allclose(ours, states.mean(dim=1).mean(dim=0).numpy(), rtol=1e-4, atol=1e-5)


def test_sixteen_kilohertz_in_the_description_and_padding_free_batches(checkpoint):
    folder, _ = checkpoint
    embedder = EMBEDDERS.create("music2vec-v1", checkpoint=str(folder), device="cpu", window_seconds=0.02)
    clips = [noise(0.05, RATE, seed=1), tone(300.0, 0.011, RATE), noise(0.04, RATE, seed=4)]

    assert embedder.sample_rate == 16_000 and embedder.describe()["sample_rate"] == 16_000
    assert embedder.describe()["n_hidden_states"] == 4 and embedder.dim == 32
    np.testing.assert_allclose(
        embedder.embed(clips), np.stack([embedder.embed([c])[0] for c in clips]), rtol=1e-5, atol=1e-6
    )


def test_a_24_khz_checkpoint_is_refused(checkpoint, tmp_path):
    folder, _ = checkpoint
    other = tmp_path / "other"
    other.mkdir()
    for name in ("config.json", "pytorch_model.bin"):
        (other / name).write_bytes((folder / name).read_bytes())
    (other / "preprocessor_config.json").write_text('{"sampling_rate": 24000, "do_normalize": true}')
    with pytest.raises(SonicError, match="runs at 16000 Hz"):
        EMBEDDERS.create("music2vec-v1", checkpoint=str(other))
