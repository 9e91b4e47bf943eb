"""Music2Vec (data2vec-audio, 16 kHz) through transformers' Data2VecAudioModel, on a tiny published-format folder."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from audio_fixtures import noise, tone  # noqa: E402

from sonic.errors import SonicError  # noqa: E402
from sonic.tails.base import EMBEDDERS  # noqa: E402
from sonic.testing.tiny import MUSIC2VEC_PUBLISHED_EXTRAS as PUBLISHED_EXTRAS  # noqa: E402
from sonic.testing.tiny import tiny_music2vec  # noqa: E402
from sonic.tails.models.windowed import normalize_windows  # noqa: E402

RATE = 16_000


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_music2vec(tmp_path_factory.mktemp("music2vec") / "music2vec-v1")


def test_equals_transformers_own_loading_of_the_same_weights(checkpoint, tmp_path):
    import json

    from transformers import Data2VecAudioModel

    folder, _ = checkpoint
    embedder = EMBEDDERS.create("music2vec-v1", checkpoint=str(folder), device="cpu", window_seconds=0.03)
    accepted = tmp_path / "accepted"  # the same weights with the config keys transformers 5 accepts
    accepted.mkdir()
    (accepted / "pytorch_model.bin").write_bytes((folder / "pytorch_model.bin").read_bytes())
    config = json.loads((folder / "config.json").read_text())
    (accepted / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k not in PUBLISHED_EXTRAS}))
    reference = Data2VecAudioModel.from_pretrained(str(accepted), local_files_only=True).eval()
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


def test_the_published_config_without_a_preprocessor_config_embeds_a_folder(checkpoint, tmp_path):
    import json

    from audio_fixtures import write
    from transformers import Data2VecAudioConfig, Data2VecAudioModel

    from sonic.tails.runner import embed_folder
    from sonic.tails.table import read_embeddings

    published, reference = checkpoint
    config = json.loads((published / "config.json").read_text())
    assert isinstance(config["vocab_size"], str) and not (published / "preprocessor_config.json").exists()
    with pytest.raises(Exception, match="vocab_size"):  # what transformers 5 does with it
        Data2VecAudioConfig(**{k: v for k, v in config.items() if k not in ("model_type", "architectures")})
    clips = {"a": tone(330.0, 1.2, RATE) + noise(1.2, RATE), "b": noise(1.1, RATE, seed=7)}
    for name, clip in clips.items():
        write(tmp_path / "audio" / f"{name}.wav", clip, RATE, kind="wav_float")

    result = embed_folder(tmp_path / "audio", "music2vec-v1", tmp_path / "out", num_workers=0,
                          model_options={"checkpoint": str(published), "device": "cpu", "window_seconds": 0.3})
    table = read_embeddings(result.table_path)
    manifest = table.manifest

    assert list(table.track_ids) == ["a", "b"] and result.n_failed == 0
    assert "vocab_size" in manifest["config_keys_dropped"] and "num_negatives" in manifest["config_keys_dropped"]
    assert "data2vec-audio-base-960h" in manifest["preprocessor"] and manifest["do_normalize"] is True
    with torch.no_grad():  # transformers' own model on the same weights, normalised as data2vec's processor does
        windows = normalize_windows(clips["a"][: clips["a"].size // 4800 * 4800].reshape(-1, 4800))
        expected = reference(torch.from_numpy(windows)).last_hidden_state.mean(dim=1).mean(dim=0).numpy()
    np.testing.assert_allclose(table.vectors[0], expected, rtol=1e-4, atol=1e-5)
    assert isinstance(reference.config, Data2VecAudioModel.config_class)
