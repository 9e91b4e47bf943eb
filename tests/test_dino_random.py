"""The random-weights DINO control: the real ViT-S/16 architecture, weights drawn at initialisation, written in
timm's checkpoint layout and loaded through the published model's code path, and never taken for DINO."""

from __future__ import annotations

import json

import numpy as np
import pytest
from audio_fixtures import noise, tone

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from sonic.errors import SonicError  # noqa: E402
from sonic.tails.base import EMBEDDERS, info  # noqa: E402
from sonic.tails.models import dino_random  # noqa: E402
from sonic.tails.models.dino import MODELS, DinoEmbedder, DinoOptions  # noqa: E402
from sonic.tails.models.vit import ARCHITECTURE_HEADS, ViTShape, read_checkpoint  # noqa: E402

RATE = 22050
SMALL = ViTShape(embed_dim=128, depth=3, num_heads=2, patch_size=16, img_size=32, mlp_hidden=512)


def control(folder, **options) -> DinoEmbedder:
    return DinoEmbedder("dino_vits16_random", DinoOptions(device="cpu", **options), random_shape=SMALL,
                        random_folder=folder)


def test_the_control_copies_the_published_vit_s16_shape():
    architecture, shape = dino_random.ARCHITECTURES["dino_vits16"]
    assert architecture == "vit_small_patch16_224" and ARCHITECTURE_HEADS[architecture] == shape.num_heads == 6
    assert (shape.embed_dim, shape.depth, shape.patch_size, shape.img_size, shape.mlp_hidden) == (384, 12, 16, 224,
                                                                                                  1536)
    assert MODELS["dino_vits16"][1] == shape.patch_size
    assert info("dino_vits16_random").dim == 384 and "random weights" in info("dino_vits16_random").source


def test_weights_are_drawn_as_an_untrained_vit_and_the_same_seed_gives_the_same_file(tmp_path):
    state = dino_random.random_state(SMALL, seed=0)
    assert torch.equal(state["norm.weight"], torch.ones(128)) and torch.equal(state["blocks.0.norm1.bias"],
                                                                               torch.zeros(128))
    qkv = state["blocks.1.attn.qkv.weight"]
    assert float(qkv.std()) == pytest.approx(0.02, rel=0.05) and float(qkv.abs().max()) < 0.15  # timm: cut at +-2
    assert torch.equal(state["blocks.1.attn.qkv.bias"], torch.zeros(3 * 128))
    assert float(state["pos_embed"].std()) == pytest.approx(0.02, rel=0.1)
    assert float(state["cls_token"].abs().max()) < 1e-4
    first = dino_random.write_random_checkpoint(tmp_path / "a", SMALL, architecture="vit_small_patch16_224", seed=0)
    again = dino_random.write_random_checkpoint(tmp_path / "b", SMALL, architecture="vit_small_patch16_224", seed=0)
    other = dino_random.write_random_checkpoint(tmp_path / "c", SMALL, architecture="vit_small_patch16_224", seed=1)
    weights = [(folder / "model.safetensors").read_bytes() for folder in (first, again, other)]
    assert weights[0] == weights[1] and weights[0] != weights[2]
    assert not list(tmp_path.glob(".*"))  # staged under a temporary name, nothing left behind
    config = json.loads((first / "config.json").read_text())
    assert config[dino_random.MARK]["trained"] is False


def test_the_control_loads_through_the_published_checkpoint_path_and_says_it_is_random(tmp_path):
    embedder = control(tmp_path / "weights")
    checkpoint = read_checkpoint(tmp_path / "weights")  # what a published timm folder goes through
    assert checkpoint.format == "timm" and checkpoint.shape == SMALL
    for name, tensor in embedder._model.state_dict().items():
        assert torch.equal(tensor, checkpoint.state_dict[name]), name
    description = embedder.describe()
    assert description["model"] == "dino_vits16_random"
    assert description["weights"] == "random (a control, not the published DINO)"
    assert "not the published DINO" in description["checkpoint"]["name"]
    assert description["checkpoint"]["format"] == "timm" and len(description["checkpoint"]["sha256"]) == 64
    vectors = embedder.embed([tone(440.0, 3.0, RATE), noise(2.0, RATE, seed=3)])
    assert vectors.shape == (2, 128) and vectors.dtype == np.float32 and np.isfinite(vectors).all()
    assert not np.allclose(vectors[0], vectors[1], atol=1e-4)  # different clips, different vectors
    again = control(tmp_path / "weights")  # the folder is there: read, not redrawn
    assert again.describe()["checkpoint"]["sha256"] == description["checkpoint"]["sha256"]
    np.testing.assert_allclose(again.embed([tone(440.0, 3.0, RATE)]), vectors[:1], atol=1e-5)  # batch of one


def test_the_published_model_is_not_reachable_through_the_control(tmp_path):
    with pytest.raises(SonicError, match="dino_vits16_random is the random-weights control and takes no "
                                         "checkpoint; to run the published DINO, name dino_vits16 with checkpoint="):
        DinoEmbedder("dino_vits16_random", DinoOptions(checkpoint=str(tmp_path), device="cpu"))
    with pytest.raises(SonicError, match="unknown DINO option 'seed'"):
        EMBEDDERS.create("dino_vits16_random", seed=3)


def test_the_registry_writes_the_full_size_control_into_its_cache_once(tmp_path, monkeypatch):
    monkeypatch.setenv(dino_random.CACHE_ENV, str(tmp_path))
    folder = dino_random.random_checkpoint("dino_vits16_random", shape=SMALL)
    assert folder.parent == tmp_path and folder.name == "dino_vits16_random-128x3-32px-seed0"
    written = (folder / "model.safetensors").stat().st_mtime_ns
    assert dino_random.random_checkpoint("dino_vits16_random", shape=SMALL) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == written
