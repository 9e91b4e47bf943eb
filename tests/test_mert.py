"""MERT-v1 through transformers' HubertModel, on tiny checkpoints in the published format."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from audio_fixtures import noise, tone  # noqa: E402

from sonic.errors import AudioError, SonicError  # noqa: E402
from sonic.tails.base import EMBEDDERS, Embedder  # noqa: E402
from sonic.tails.models import mert  # noqa: E402
from sonic.testing.tiny import PREPROCESSOR, tiny_mert  # noqa: E402
from sonic.tails.models.windowed import normalize_windows  # noqa: E402

RATE = 24_000


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_mert(tmp_path_factory.mktemp("mert") / "MERT-v1-95M")


def reference_vectors(reference, windows: np.ndarray) -> np.ndarray:
    """Window vectors from transformers' HubertModel: normalised input, last hidden state, mean over time."""
    inputs = torch.from_numpy(normalize_windows(windows))
    with torch.no_grad():
        return reference(inputs).last_hidden_state.mean(dim=1).numpy()


def test_loads_the_published_format_and_equals_the_reference_forward(checkpoint):
    folder, reference = checkpoint
    embedder = EMBEDDERS.create("mert-v1-95m", checkpoint=str(folder), device="cpu", window_seconds=0.05)
    clip = tone(440.0, 0.1, RATE) + noise(0.1, RATE)

    ours = embedder.embed([clip])[0]
    windows = clip.reshape(2, -1)
    expected = reference_vectors(reference, windows).mean(axis=0)

    assert isinstance(embedder, Embedder) and embedder.modality == "audio"
    assert embedder.dim == 32 and ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)


def test_normalisation_matches_transformers_feature_extractor():
    from transformers import Wav2Vec2FeatureExtractor

    extractor = Wav2Vec2FeatureExtractor(**{k: v for k, v in PREPROCESSOR.items() if k != "feature_extractor_type"})
    windows = np.stack([tone(220.0, 0.05, RATE, amplitude=0.9) + 0.3, noise(0.05, RATE, seed=3)])

    theirs = extractor(list(windows), sampling_rate=RATE, return_tensors="np").input_values

    np.testing.assert_allclose(normalize_windows(windows), theirs, rtol=1e-4, atol=1e-5)


def test_pre_norm_330m_layout_in_safetensors(tmp_path):
    folder, reference = tiny_mert(
        tmp_path / "stable", seed=2, weights_name="model.safetensors", do_stable_layer_norm=True,
        feat_extract_norm="group", conv_bias=False, attention_relax=32.0,
    )
    embedder = mert.from_name("mert-v1-330m", checkpoint=str(folder), device="cpu", layer="last")
    clip = noise(0.03, RATE, seed=6)

    expected = reference_vectors(reference, clip[None, :])[0]
    np.testing.assert_allclose(embedder.embed([clip])[0], expected, rtol=1e-4, atol=1e-5)


def test_a_batch_of_equal_windows_gives_the_vectors_of_one_clip_at_a_time(checkpoint):
    folder, _ = checkpoint
    embedder = mert.from_name("mert-v1-95m", checkpoint=str(folder), device="cpu", window_seconds=0.02, batch_size=3)
    clips = [noise(0.1, RATE, seed=1), tone(330.0, 0.045, RATE), noise(0.013, RATE, seed=2), tone(550.0, 0.06, RATE)]

    together = embedder.embed(clips)
    alone = np.stack([embedder.embed([clip])[0] for clip in clips])

    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)
    assert not np.allclose(together[0], together[1], atol=1e-3)


def test_layer_choices(checkpoint):
    folder, reference = checkpoint
    clip = noise(0.02, RATE, seed=9)
    with torch.no_grad():
        states = reference(torch.from_numpy(normalize_windows(clip[None, :])), output_hidden_states=True).hidden_states
    assert len(states) == 4  # 3 layers + the encoder's input

    for layer, expected in [(0, states[0]), (-1, states[-1]), ("mean", torch.stack(states).mean(0))]:
        embedder = mert.from_name("mert-v1-95m", checkpoint=str(folder), device="cpu", layer=layer)
        np.testing.assert_allclose(embedder.embed([clip])[0], expected.mean(1)[0].numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(SonicError, match="hidden states 0..3"):
        mert.from_name("mert-v1-95m", checkpoint=str(folder), device="cpu", layer=4)


def test_describe_records_rate_checkpoint_hash_layer_window_and_pooling(checkpoint):
    folder, _ = checkpoint
    embedder = mert.from_name("mert-v1-95m", checkpoint=str(folder), device="cpu", pooling="mean+max")
    described = embedder.describe()

    assert embedder.sample_rate == 24_000 and described["sample_rate"] == 24_000
    assert described["weights_sha256"] == hashlib.sha256((folder / "pytorch_model.bin").read_bytes()).hexdigest()
    assert described["checkpoint"] == str(folder) and described["weights_file"] == "pytorch_model.bin"
    assert (described["layer"], described["window_seconds"], described["pooling"]) == ("last", 30.0, "mean+max")
    assert described["dim"] == embedder.dim == 64 and embedder.embed([noise(0.05, RATE)]).shape == (1, 64)
    json.dumps(described)


def test_user_mistakes_are_one_sentence(checkpoint, tmp_path, monkeypatch):
    folder, _ = checkpoint
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SonicError, match="not in the Hugging Face cache .*HF_HUB_OFFLINE.*sonic fetch mert-v1-95m.*--checkpoint"):
        mert.from_name("mert-v1-95m")
    with pytest.raises(SonicError, match="unknown option 'layers'"):
        mert.from_name("mert-v1-95m", checkpoint=str(folder), layers=3)
    with pytest.raises(AudioError, match="needs at least 20 "):  # kernels (10, 3), strides (5, 2)
        mert.from_name("mert-v1-95m", checkpoint=str(folder), device="cpu").embed([np.zeros(15, np.float32)])

    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (broken / name).write_bytes((folder / name).read_bytes())
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    torch.save({k: v for k, v in state.items() if "layers.2." not in k}, broken / "pytorch_model.bin")
    with pytest.raises(SonicError, match="lacks .* parameters"):
        mert.from_name("mert-v1-95m", checkpoint=str(broken))
    (broken / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(SonicError, match="cannot read weights file"):
        mert.from_name("mert-v1-95m", checkpoint=str(broken))
    cqt = json.loads((folder / "config.json").read_text()) | {"feature_extractor_cqt": True}
    (broken / "config.json").write_text(json.dumps(cqt))
    with pytest.raises(SonicError, match="feature_extractor_cqt"):
        mert.from_name("mert-v1-95m", checkpoint=str(broken))
    sixteen = json.loads((folder / "preprocessor_config.json").read_text()) | {"sampling_rate": 16000}
    (broken / "preprocessor_config.json").write_text(json.dumps(sixteen))
    with pytest.raises(SonicError, match="runs at 24000 Hz"):
        mert.from_name("mert-v1-95m", checkpoint=str(broken))
