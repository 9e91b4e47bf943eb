"""EncodecMAE (24 kHz) as a module of ours, on a tiny checkpoint written as the published Lightning model.pt.

The transformer is checked against EncodecMAE's equations written out here (heads laid out as its
MultiHeadAttention lays them: N*H batches, feature f in head f % H; ResiDual streams). The SEANet
encoder matched encodec 0.1.1's own SEANetEncoder exactly in a one-off run (encodec cannot be
installed here: its torchaudio needs CUDA); here its causality and frame count are checked.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from audio_fixtures import noise, tone  # noqa: E402

from sonic.errors import SonicError  # noqa: E402
from sonic.tails.base import EMBEDDERS  # noqa: E402
from sonic.tails.models import encodecmae  # noqa: E402
from sonic.testing.tiny import tiny_encodecmae  # noqa: E402

RATE = 24_000
F = torch.nn.functional


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_encodecmae(tmp_path_factory.mktemp("encodecmae") / "encodecmae-base")


def reference_features(state: dict, codes: torch.Tensor, n_samples: int, heads: int = 4) -> torch.Tensor:
    """EncodecMAE's visible encoder from its equations, on EnCodec codes (N, T, 128)."""
    x = F.linear(codes, state["feat_projector.weight"], state["feat_projector.bias"])
    n, t, d = x.shape
    pe = torch.zeros_like(x)
    position = torch.arange(0, t).unsqueeze(1).unsqueeze(0)
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float) * -(math.log(10000.0) / d))
    pe[:, :, 0::2], pe[:, :, 1::2] = torch.sin(position.float() * div), torch.cos(position.float() * div)
    x = x + state["positional_encoder.scale"] * pe
    key_mask = torch.zeros(n, t, dtype=torch.bool)
    key_mask[:, n_samples // 320:] = True
    dq = d // heads
    x0 = x1 = x
    for i in range(2):
        p = f"visible_encoder.encoder_layers.{i}."

        def split(y):
            return y.view(n, t, dq, heads).permute(0, 3, 1, 2).reshape(n * heads, t, dq)

        q, k, v = (split(F.linear(x0, state[p + f"att_layer.{w}.weight"])) for w in ("wq", "wk", "wv"))
        mask = torch.tile(key_mask[:, None, None, :], (1, heads, t, 1)).reshape(n * heads, t, t)
        att = (q @ k.transpose(-2, -1) * dq**-0.5 + mask * -1e9).softmax(dim=-1)
        out = (att @ v).view(n, heads, t, dq).permute(0, 2, 3, 1).reshape(n, t, dq * heads)
        out = F.linear(out, state[p + "att_layer.wo.weight"])
        x0 = F.layer_norm(x0 + out, (d,), state[p + "norm1.weight"], state[p + "norm1.bias"])
        x1 = x1 + out
        ff = F.linear(F.relu(F.linear(x0, state[p + "ff_layer.0.weight"], state[p + "ff_layer.0.bias"])),
                      state[p + "ff_layer.2.weight"], state[p + "ff_layer.2.bias"])
        x0 = F.layer_norm(x0 + ff, (d,), state[p + "norm2.weight"], state[p + "norm2.bias"])
        x1 = x1 + ff
    final = F.layer_norm(x1, (d,), state["visible_encoder.final_norm.weight"], state["visible_encoder.final_norm.bias"])
    return x0 + final


@pytest.mark.parametrize("seconds", [0.2, 0.2 + 123 / RATE])  # a whole number of frames, and a partial last one
def test_equals_encodecmae_equations_on_the_published_format(checkpoint, seconds):
    folder, state = checkpoint
    embedder = EMBEDDERS.create("encodecmae-base", checkpoint=str(folder), device="cpu", window_seconds=seconds)
    clip = tone(440.0, seconds, RATE) + noise(seconds, RATE)

    ours = embedder.embed([clip])[0]
    with torch.no_grad():
        codes = embedder.module.wav_encoder.model.model(torch.from_numpy(clip)[None, None]).transpose(1, 2)
        expected = reference_features(state, codes, clip.size).mean(dim=1)[0].numpy()

    assert codes.shape[1] == math.ceil(clip.size / 320)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)
    described = embedder.describe()
    assert embedder.sample_rate == 24_000 and described["sample_rate"] == 24_000
    assert described["weights_file"] == "model.pt" and described["n_hidden_states"] == 4
    assert described["ignored_parameters"] == 3  # decoder, decoder projector, head


def test_the_encoder_is_causal_after_its_opening_frames(checkpoint):
    folder, _ = checkpoint
    embedder = EMBEDDERS.create("encodecmae-base", checkpoint=str(folder), device="cpu")
    seanet = embedder.module.wav_encoder.model.model
    clip = noise(0.5, RATE, seed=4)
    changed = clip.copy()
    changed[4800:] = noise(0.5, RATE, seed=5)[4800:]  # from frame 15 on

    with torch.no_grad():
        a, b = (seanet(torch.from_numpy(c)[None, None])[0] for c in (clip, changed))

    # causal padding reflects the first samples, so only the opening frames see a little ahead
    assert a.shape == (128, 38)
    torch.testing.assert_close(a[:, :15], b[:, :15])
    assert not torch.allclose(a[:, 15:], b[:, 15:])


def test_padding_free_batches_default_window_and_bad_files(checkpoint, tmp_path):
    folder, _ = checkpoint
    embedder = EMBEDDERS.create("encodecmae-base", checkpoint=str(folder), device="cpu", window_seconds=0.1)
    clips = [noise(0.25, RATE, seed=1), tone(220.0, 0.07, RATE), noise(0.2, RATE, seed=2)]
    np.testing.assert_allclose(
        embedder.embed(clips), np.stack([embedder.embed([c])[0] for c in clips]), rtol=1e-4, atol=1e-5
    )
    assert EMBEDDERS.create("encodecmae-base", checkpoint=str(folder), device="cpu").window_seconds == 4.0

    torch.save({"state_dict": {"x": torch.zeros(1)}}, tmp_path / "model.pt")
    with pytest.raises(SonicError, match="not an EncodecMAE checkpoint"):
        encodecmae.from_name("encodecmae-base", checkpoint=str(tmp_path))
