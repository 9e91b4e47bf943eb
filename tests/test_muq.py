"""MuQ (24 kHz) as a module of ours, on a tiny checkpoint in the published format.

The hidden states are checked against the ``muq`` package's own code in test_upstream_references.py
(it cannot run beside torch+cpu: its torchaudio is a CUDA build). MuQ-MuLan's audio head is still
checked against its equations written out here (no upstream run of MuLan yet).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
librosa = pytest.importorskip("librosa")

from audio_fixtures import noise, tone  # noqa: E402

from sonic.errors import SonicError  # noqa: E402
from sonic.tails.base import EMBEDDERS  # noqa: E402
from sonic.tails.models.mel_conformer import htk_mel_filterbank  # noqa: E402
from sonic.testing.tiny import MUQ_CONFIG, tiny_muq  # noqa: E402

RATE = 24_000
F = torch.nn.functional


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_muq(tmp_path_factory.mktemp("muq") / "MuQ-large-msd-iter")


def test_mel_filterbank_equals_librosa_htk():
    ours = htk_mel_filterbank(RATE, 2048, 128)
    theirs = librosa.filters.mel(sr=RATE, n_fft=2048, n_mels=128, htk=True, norm=None).T
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_reads_the_published_format(checkpoint):
    folder, state = checkpoint
    embedder = EMBEDDERS.create("muq", checkpoint=str(folder), device="cpu")
    clip = tone(440.0, 0.5, RATE) + noise(0.5, RATE)

    ours = embedder.embed([clip])[0]

    assert embedder.sample_rate == 24_000 and embedder.describe()["sample_rate"] == 24_000
    assert embedder.dim == 32 and embedder.describe()["n_hidden_states"] == 3
    assert embedder.describe()["ignored_parameters"] == 3  # linear, cls_token, the quantizer
    assert ours.shape == (32,) and np.isfinite(ours).all()


def test_padding_free_batches_give_one_at_a_time_vectors(checkpoint):
    folder, _ = checkpoint
    embedder = EMBEDDERS.create("muq", checkpoint=str(folder), device="cpu", window_seconds=0.2, layer="mean")
    clips = [noise(0.5, RATE, seed=1), tone(220.0, 0.15, RATE), noise(0.41, RATE, seed=2)]

    together = embedder.embed(clips)

    np.testing.assert_allclose(together, np.stack([embedder.embed([c])[0] for c in clips]), rtol=1e-4, atol=1e-5)


def test_a_config_without_mel_statistics_is_one_sentence(checkpoint, tmp_path):
    import json

    folder, _ = checkpoint
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    (broken / "config.json").write_text(json.dumps({**MUQ_CONFIG, "stat": {}}))
    with pytest.raises(SonicError, match="lacks stat.melspec_2048_mean"):
        EMBEDDERS.create("muq", checkpoint=str(broken))


def reference_mulan_head(head: dict, states: torch.Tensor) -> np.ndarray:
    """MuLan's audio head from its equations, with torch's scaled_dot_product_attention."""
    x = F.linear(states, head["proj.weight"], head["proj.bias"])
    for i in range(2):
        a = f"transformer.layers.{i}.0."
        normed = F.layer_norm(x, (24,), head[a + "norm.learned_gamma"])
        q = F.linear(normed, head[a + "to_q.weight"]).unflatten(-1, (2, 8)).transpose(1, 2)
        kv = F.linear(normed, head[a + "to_kv.weight"]).chunk(2, -1)
        k, v = (t.unflatten(-1, (2, 8)).transpose(1, 2) for t in kv)
        q = q / q.norm(dim=-1, keepdim=True) * head[a + "q_scale"]
        k = k / k.norm(dim=-1, keepdim=True) * head[a + "k_scale"]
        attended = F.scaled_dot_product_attention(q, k, v, scale=8.0).transpose(1, 2).flatten(2)
        x = x + F.linear(attended, head[a + "to_out.0.weight"])
        f = f"transformer.layers.{i}.1."
        value, gate = F.linear(F.layer_norm(x, (24,), head[f + "0.learned_gamma"]), head[f + "1.weight"]).chunk(2, -1)
        x = x + F.linear(value * F.gelu(gate), head[f + "4.weight"])
    latent = F.linear(x.mean(dim=1), head["audio_to_latents.weight"], head["audio_to_latents.bias"])
    return (latent / latent.norm(dim=-1, keepdim=True)).numpy()


def test_muq_mulan_latent_equals_its_equations(checkpoint, tmp_path):
    from sonic.testing.tiny import tiny_muq_mulan

    backbone, backbone_state = checkpoint
    folder, head = tiny_muq_mulan(tmp_path / "MuQ-MuLan-large", backbone, backbone_state)
    embedder = EMBEDDERS.create("muq-mulan", checkpoint=str(folder), device="cpu", window_seconds=0.25)
    muq = EMBEDDERS.create("muq", checkpoint=str(backbone), device="cpu")
    clips = [noise(0.5, RATE, seed=3), tone(330.0, 0.3, RATE)]

    ours = embedder.embed(clips)
    with torch.no_grad():
        windows = [clips[0].reshape(2, -1), clips[1][None, :6000]]
        expected = [reference_mulan_head(head, muq.module(torch.from_numpy(w))[-1]).mean(0) for w in windows]

    assert embedder.dim == 16 and embedder.sample_rate == 24_000 and embedder.describe()["window_seconds"] == 0.25
    assert embedder.describe()["ignored_parameters"] == 6  # backbone heads (3), aggregator, text tower (2)
    np.testing.assert_allclose(ours, np.stack(expected), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(embedder.embed([clips[1]]), axis=1), 1.0, rtol=1e-5)
    assert EMBEDDERS.create("muq-mulan", checkpoint=str(folder), device="cpu").window_seconds == 10.0


def test_muq_mulan_takes_a_local_backbone_folder_and_wraps_the_tail_as_upstream(checkpoint, tmp_path, monkeypatch):
    import json

    from sonic.testing.tiny import tiny_muq_mulan

    backbone, backbone_state = checkpoint
    folder, _ = tiny_muq_mulan(tmp_path / "MuQ-MuLan-large", backbone, backbone_state)
    config = json.loads((folder / "config.json").read_text())
    config["audio_model"]["name"] = "OpenMuQ/MuQ-large-msd-iter"  # as published: a hub name
    (folder / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(SonicError, match="'OpenMuQ/MuQ-large-msd-iter' is not in the Hugging Face cache"):
        EMBEDDERS.create("muq-mulan", checkpoint=str(folder), device="cpu")
    embedder = EMBEDDERS.create("muq-mulan", checkpoint=str(folder), backbone=str(backbone), device="cpu",
                                window_seconds=0.25)  # fmt: skip
    clip = noise(0.35, RATE, seed=8)  # one full window and a 0.1 s tail, completed with the clip's start

    wrapped = np.concatenate([clip[6000:], clip[: 6000 - (clip.size - 6000)]])
    windows = embedder.module.to("cpu")
    with torch.no_grad():
        latents = [embedder.model.hidden_states(windows, torch.from_numpy(w)[None])[0][0, 0].numpy()
                   for w in (clip[:6000], wrapped)]  # fmt: skip
    np.testing.assert_allclose(embedder.embed([clip])[0], np.mean(latents, axis=0), rtol=1e-4, atol=1e-5)
    assert embedder.describe()["tail"] == "wrap" and embedder.describe()["backbone"] == str(backbone)
    dropped = EMBEDDERS.create("muq-mulan", checkpoint=str(folder), backbone=str(backbone), device="cpu",
                               window_seconds=0.25, tail="drop")  # fmt: skip
    np.testing.assert_allclose(dropped.embed([clip])[0], latents[0], rtol=1e-4, atol=1e-5)
