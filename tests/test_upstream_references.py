"""Each family against its upstream implementation: upstream's own code ran on seeded random weights saved
in the published checkpoint layout (tests/fixtures/make_upstream_references.py, in a separate venv; its
outputs are in tests/fixtures/upstream/*.npz with the upstream commit). Here the same weights are redrawn
(tests/fixtures/seeded.py), written in that layout, loaded through sonic, and the hidden states compared."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
import seeded  # noqa: E402

from sonic.tails.base import EMBEDDERS  # noqa: E402

TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def reference(name: str):
    return seeded.load(FIXTURES / "upstream" / f"{name}.npz")


def legacy_names(state: dict) -> dict:
    return {k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1",
                                                                                   "weight_v"): v
            for k, v in seeded.as_torch(state).items()}  # fmt: skip


@pytest.mark.parametrize("key, name", [("mert95m", "mert-v1-95m"), ("mert330m", "mert-v1-330m"),
                                       ("mert_deepnorm", "mert-v1-95m")])  # fmt: skip
def test_mert_equals_merts_own_modeling_code(tmp_path, key, name):
    state, meta, outputs = reference(key)
    folder = tmp_path / key
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(meta["config.json"]))
    (folder / "preprocessor_config.json").write_text(json.dumps(
        {"do_normalize": True, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
         "padding_side": "right", "padding_value": 0, "return_attention_mask": True, "sampling_rate": 24000}))
    torch.save(legacy_names(state), folder / "pytorch_model.bin")
    clip = seeded.audio(*meta["audio"])
    n_states = len(outputs["hidden_means"])
    for layer in range(n_states):
        embedder = EMBEDDERS.create(name, checkpoint=str(folder), device="cpu", window_seconds=1.0, layer=layer)
        np.testing.assert_allclose(embedder.embed([clip])[0], outputs["hidden_means"][layer], **TOLERANCE)
    last = EMBEDDERS.create(name, checkpoint=str(folder), device="cpu", window_seconds=1.0)
    np.testing.assert_allclose(last.embed([clip])[0], outputs["last_hidden_state"].mean(0), **TOLERANCE)


def test_encodecmae_30_s_equals_upstream_extract_features_from_array_with_its_partial_last_chunk(tmp_path):
    state, meta, outputs = reference("encodecmae")
    folder = tmp_path / "encodecmae-base"
    folder.mkdir()
    torch.save({"state_dict": seeded.as_torch(state), "epoch": 1}, folder / "model.pt")
    (folder / "config.gin").write_text(meta["config.gin"])
    clip = seeded.audio(*meta["audio"])  # 30 s: seven 4 s chunks and a 2 s one

    embedder = EMBEDDERS.create("encodecmae-base", checkpoint=str(folder), device="cpu", batch_size=8)
    np.testing.assert_allclose(embedder.embed([clip])[0], outputs["final_mean"], **TOLERANCE)
    with torch.no_grad():
        first = embedder.module(torch.from_numpy(clip[:96_000])[None])[-1][0]
        last = embedder.module(torch.from_numpy(clip[7 * 96_000 :])[None])[-1][0]
    assert 7 * 300 + last.shape[0] == int(outputs["n_frames"])
    np.testing.assert_allclose(first[:3].numpy(), outputs["final_head"], **TOLERANCE)
    np.testing.assert_allclose(last[-3:].numpy(), outputs["final_tail"], **TOLERANCE)
    for layer in range(2):  # upstream's activations[k]
        block = EMBEDDERS.create("encodecmae-base", checkpoint=str(folder), device="cpu", layer=layer)
        np.testing.assert_allclose(block.embed([clip])[0], outputs["layers_mean"][layer], **TOLERANCE)
    assert embedder.describe()["tail"] == "keep"


def test_musicfm_equals_upstream_musicfm(tmp_path):
    state, meta, outputs = reference("musicfm")
    folder = tmp_path / "MusicFM"
    folder.mkdir()
    torch.save({"state_dict": {f"model.{k}": v for k, v in seeded.as_torch(state).items()}},
               folder / "pretrained_msd.pt")  # fmt: skip
    (folder / "msd_stats.json").write_text(json.dumps(meta["msd_stats.json"]))
    clip = seeded.audio(*meta["audio"])
    for layer in range(len(outputs["hidden_means"])):
        embedder = EMBEDDERS.create("musicfm", checkpoint=str(folder), device="cpu", layer=layer)
        np.testing.assert_allclose(embedder.embed([clip])[0], outputs["hidden_means"][layer], **TOLERANCE)


def test_muq_equals_the_muq_package(tmp_path):
    from safetensors.torch import save_file

    state, meta, outputs = reference("muq")
    folder = tmp_path / "MuQ-large-msd-iter"
    folder.mkdir()
    save_file(seeded.as_torch({k: v for k, v in state.items()}), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(meta["config.json"]))
    clip = seeded.audio(*meta["audio"])
    for layer in range(len(outputs["hidden_means"])):
        embedder = EMBEDDERS.create("muq", checkpoint=str(folder), device="cpu", layer=layer)
        np.testing.assert_allclose(embedder.embed([clip])[0], outputs["hidden_means"][layer], **TOLERANCE)


@pytest.mark.parametrize("key, name", [("dino_s16", "dino_vits16"), ("dino_s8", "dino_vits8"),
                                       ("dino_b16", "dino_vitb16")])  # fmt: skip
def test_dino_equals_dinos_own_vision_transformer_in_both_release_formats(tmp_path, key, name):
    from sonic.tails.models.dino import DinoEmbedder, DinoOptions

    state, meta, outputs = reference(key)
    np.testing.assert_allclose(outputs["cls"], outputs["timm_cls"], rtol=1e-5, atol=1e-6)  # timm agrees with DINO
    weights = seeded.as_torch(state)
    torch.save(weights, tmp_path / "pretrain.pth")
    torch.save({  # main_dino.py's checkpoint.pth: both networks, the optimizer, and the run's argparse.Namespace
        "student": {f"module.backbone.{k}": v for k, v in weights.items()},
        "teacher": {**{f"backbone.{k}": v for k, v in weights.items()}, "head.mlp.0.weight": torch.ones(4, 4)},
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.0005, "params": [0, 1]}]},
        "epoch": 100, "dino_loss": {"center": torch.zeros(1, 4)},
        "args": argparse.Namespace(arch="vit_small", patch_size=meta["shape"][1], out_dim=65536, lr=0.0005,
                                   global_crops_scale=(0.4, 1.0), output_dir="/runs/dino", use_fp16=True),
    }, tmp_path / "checkpoint.pth")
    images = torch.from_numpy(np.random.RandomState(meta["images"][0]).standard_normal(meta["images"][1:])
                              .astype(np.float32))  # fmt: skip
    for file in ("pretrain.pth", "checkpoint.pth"):
        def vectors(**options):
            embedder = DinoEmbedder(name, DinoOptions(checkpoint=str(tmp_path / file), device="cpu", **options))
            with torch.no_grad():
                return embedder.picture_vectors(images).numpy()

        np.testing.assert_allclose(vectors(), outputs["cls"], **TOLERANCE)
        np.testing.assert_allclose(vectors(layer=0), outputs["block_cls"][0], **TOLERANCE)
        np.testing.assert_allclose(vectors(tokens="patch_mean"), outputs["block_patch_mean"][1], **TOLERANCE)
