"""EncodecMAE (24 kHz) as a module of ours, on a tiny checkpoint written as the published Lightning model.pt.

The whole model is checked against upstream's own code (encodecmae v1 with encodec 0.1.1) in
test_upstream_references.py; here: causality, padding-free batches, the gin reader, v2 refusal.
"""

from __future__ import annotations

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


def test_gin_blocks_and_lines_are_read_and_v2_checkpoints_refused(checkpoint, tmp_path):
    block = "MODEL_DIM=32\nencoder/tasks.models.transformers.MultiHeadAttention:\n    model_dim=%MODEL_DIM\n    num_heads=2\n"
    line = "tasks.models.encodecmae.encoders.EncodecEncoder.scale = 0.5\nencoder/MultiHeadAttention.num_heads = 8\n"
    state = {"feat_projector.weight": torch.zeros(32, 128),
             "visible_encoder.encoder_layers.0.ff_layer.0.weight": torch.zeros(64, 32)}  # fmt: skip
    assert encodecmae.read_config(state, block).num_heads == 2
    assert (encodecmae.read_config(state, line).num_heads, encodecmae.read_config(state, line).feature_scale) == (8, 0.5)
    with pytest.raises(SonicError, match="is not gin syntax sonic can read"):
        encodecmae.read_config(state, "encoder/MultiHeadAttention.num_heads: 4\n")
    with pytest.raises(SonicError, match="norm_type 'prenorm'"):
        encodecmae.read_config(state, "encoder/TransformerEncoder:\n    norm_type='prenorm'\n")

    folder, _ = checkpoint
    v2 = tmp_path / "v2"
    v2.mkdir()
    torch.save({"state_dict": {"wav_encoder.encoder.0.weight": torch.zeros(2), "post_net.weight": torch.zeros(2)}},
               v2 / "model.pt")  # fmt: skip
    with pytest.raises(SonicError, match="is an EncodecMAE v2 checkpoint"):
        encodecmae.from_name("encodecmae-base", checkpoint=str(v2))
