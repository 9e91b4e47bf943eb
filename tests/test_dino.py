"""DINO on spectrogram pictures: tiny random ViTs in timm's and the original release's formats.

The slow test compares with timm's own forward (computed in a subprocess by dino_timm_reference.py);
the fast ones compare the two formats with each other and our ViT with a numpy forward written here
from the equations.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import noise, tone

torch = pytest.importorskip("torch")
save_file = pytest.importorskip("safetensors.torch").save_file

from sonic.errors import SonicError  # noqa: E402
from sonic.tails.base import EMBEDDERS  # noqa: E402
from sonic.tails.models.dino import DinoEmbedder, DinoOptions  # noqa: E402
from sonic.tails.models.vit import ViTShape, build_vit  # noqa: E402
from sonic.tails.vision import ImageConfig, spectrogram_images  # noqa: E402

RATE = 22050
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
TINY = ViTShape(embed_dim=128, depth=3, num_heads=2, patch_size=16, img_size=32, mlp_hidden=512)


def clips() -> list[np.ndarray]:
    return [tone(440.0, 4.0, RATE), noise(2.0, RATE, seed=3), tone(97.0, 1.0, RATE) + noise(1.0, RATE, seed=4)]


def random_state(shape: ViTShape = TINY, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    model = build_vit(shape)
    return {name: torch.randn_like(tensor) * 0.2 for name, tensor in model.state_dict().items()}


def write_timm_folder(folder: Path, state: dict, *, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)) -> Path:
    """timm's Hugging Face layout: config.json + model.safetensors."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, folder / "model.safetensors")
    config = {
        "architecture": "vit_small_patch16_224",
        "num_classes": 0,
        "num_features": TINY.embed_dim,
        "global_pool": "token",
        "model_args": {"embed_dim": TINY.embed_dim, "depth": TINY.depth, "num_heads": TINY.num_heads, "img_size": 32},
        "pretrained_cfg": {"input_size": [3, 32, 32], "mean": list(mean), "std": list(std), "num_classes": 0},
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def numpy_vit(state: dict, images: np.ndarray, shape: ViTShape = TINY) -> np.ndarray:
    """Outputs of every block after the final LayerNorm, (depth, n, 1 + patches, C), from the equations."""
    w = {name: tensor.double().numpy() for name, tensor in state.items()}

    def layer_norm(x, prefix):
        centred = x - x.mean(-1, keepdims=True)
        return centred / np.sqrt((centred**2).mean(-1, keepdims=True) + 1e-6) * w[f"{prefix}.weight"] + w[
            f"{prefix}.bias"]

    def linear(x, prefix):
        return x @ w[f"{prefix}.weight"].T + w[f"{prefix}.bias"]

    n, p, side = len(images), shape.patch_size, shape.img_size // shape.patch_size
    patches = images.astype(np.float64).reshape(n, 3, side, p, side, p).transpose(0, 2, 4, 1, 3, 5)
    kernel = w["patch_embed.proj.weight"].reshape(shape.embed_dim, -1)
    x = patches.reshape(n, side * side, -1) @ kernel.T + w["patch_embed.proj.bias"]
    x = np.concatenate([np.broadcast_to(w["cls_token"], (n, 1, shape.embed_dim)), x], axis=1) + w["pos_embed"]
    heads, width = shape.num_heads, shape.embed_dim // shape.num_heads
    outputs = []
    for b in range(shape.depth):
        qkv = linear(layer_norm(x, f"blocks.{b}.norm1"), f"blocks.{b}.attn.qkv")
        q, k, v = qkv.reshape(n, -1, 3, heads, width).transpose(2, 0, 3, 1, 4)
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(width)
        attention = np.exp(scores - scores.max(-1, keepdims=True))
        attention /= attention.sum(-1, keepdims=True)
        mixed = (attention @ v).transpose(0, 2, 1, 3).reshape(n, -1, shape.embed_dim)
        x = x + linear(mixed, f"blocks.{b}.attn.proj")
        hidden = linear(layer_norm(x, f"blocks.{b}.norm2"), f"blocks.{b}.mlp.fc1")
        hidden = 0.5 * hidden * (1 + np.vectorize(__import__("math").erf)(hidden / np.sqrt(2)))
        x = x + linear(hidden, f"blocks.{b}.mlp.fc2")
        outputs.append(layer_norm(x, "norm"))
    return np.stack(outputs)


@pytest.fixture(scope="module")
def formats(tmp_path_factory) -> dict:
    """One random tiny ViT in timm's layout and in both of the original release's .pth layouts."""
    root = tmp_path_factory.mktemp("dino")
    state = random_state()
    write_timm_folder(root / "timm", state, mean=IMAGENET[0], std=IMAGENET[1])
    torch.save(state, root / "dino_tiny_pretrain.pth")
    nested = {f"module.backbone.{k}": v for k, v in state.items()} | {"module.head.last_layer.weight": torch.ones(4, 8)}
    torch.save({"student": nested, "epoch": torch.tensor(3)}, root / "dino_full_checkpoint.pth")
    return {"state": state, "root": root}


def test_both_formats_give_the_vectors_of_the_equations(formats):
    root, batch = formats["root"], clips()
    embedders = {
        name: DinoEmbedder("dino_vits16", DinoOptions(checkpoint=str(root / name), device="cpu"))
        for name in ("timm", "dino_tiny_pretrain.pth", "dino_full_checkpoint.pth")
    }
    vectors = {name: embedder.embed(batch) for name, embedder in embedders.items()}

    pictures = spectrogram_images(batch, config=ImageConfig(image_size=32))
    expected = pictures.pool(numpy_vit(formats["state"], pictures.images)[-1][:, 0])
    for name, got in vectors.items():
        assert got.shape == (3, TINY.embed_dim) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4, err_msg=name)
    assert embedders["timm"].describe()["checkpoint"]["format"] == "timm"
    assert embedders["dino_tiny_pretrain.pth"].describe()["checkpoint"]["format"] == "dino"


@pytest.mark.parametrize(
    ("layer", "tokens", "pick"),
    [
        (0, "cls", lambda blocks: blocks[0][:, 0]),
        (-2, "patch_mean", lambda blocks: blocks[1][:, 1:].mean(1)),
        ("mean", "cls", lambda blocks: blocks[:, :, 0].mean(0)),
        ("last", "cls+patch_mean", lambda blocks: np.concatenate([blocks[-1][:, 0], blocks[-1][:, 1:].mean(1)], 1)),
    ],
)
def test_layer_and_token_choices(formats, layer, tokens, pick):
    options = DinoOptions(checkpoint=str(formats["root"] / "timm"), device="cpu", layer=layer, tokens=tokens,
                          fit="resize")
    embedder = DinoEmbedder("dino_vits16", options)
    batch = clips()[:2]

    got = embedder.embed(batch)

    pictures = spectrogram_images(batch, config=embedder.image_config)
    assert len(pictures.images) == 2  # resize: one picture per clip
    expected = pick(numpy_vit(formats["state"], pictures.images))
    assert got.shape == (2, embedder.dim) == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_registry_options_and_manifest(formats):
    embedder = EMBEDDERS.create("dino_vits16", checkpoint=str(formats["root"] / "timm"), device="cpu", layer="1")
    description = embedder.describe()

    assert embedder.modality == "image" and embedder.sample_rate == 22050 and embedder.dim == 128
    assert description["layer"] == 1 and description["blocks"] == [1]
    assert description["image"]["fit"] == "tiles" and description["image"]["tile_frames"] == 128
    assert description["image"]["image_size"] == 32
    assert len(description["checkpoint"]["sha256"]) == 64
    assert description["architecture"]["depth"] == 3


def test_bad_requests_are_one_sentence(formats, tmp_path):
    root = formats["root"]
    with pytest.raises(SonicError, match="unknown DINO option 'levels'; known: checkpoint"):
        EMBEDDERS.create("dino_vits16", checkpoint=str(root / "timm"), levels=3)
    with pytest.raises(SonicError, match="layer 3 does not exist; this ViT has blocks 0..2"):
        DinoEmbedder("dino_vits16", DinoOptions(checkpoint=str(root / "timm"), device="cpu", layer=3))
    with pytest.raises(SonicError, match="16-pixel patches but dino_vits8 uses 8"):
        DinoEmbedder("dino_vits8", DinoOptions(checkpoint=str(root / "timm"), device="cpu"))
    with pytest.raises(SonicError, match="unknown DINO tokens"):
        DinoOptions(tokens="avg")
    registers = dict(formats["state"]) | {"reg_token": torch.zeros(1, 4, 128)}
    torch.save(registers, tmp_path / "registers.pth")
    with pytest.raises(SonicError, match="has tensors a plain ViT lacks: reg_token"):
        DinoEmbedder("dino_vits16", DinoOptions(checkpoint=str(tmp_path / "registers.pth"), device="cpu"))
    (tmp_path / "code.pth").write_bytes(b"not a torch file")
    with pytest.raises(SonicError, match="cannot read checkpoint .* as tensors only"):
        DinoEmbedder("dino_vits16", DinoOptions(checkpoint=str(tmp_path / "code.pth"), device="cpu"))
    with pytest.raises(SonicError, match="not in the Hugging Face cache .*HF_HUB_OFFLINE is set; run `sonic fetch dino_vits16`.*--checkpoint"):
        DinoEmbedder("dino_vits16", DinoOptions(checkpoint="nobody/no-such-dino", device="cpu"))


@pytest.mark.slow
def test_equals_timms_own_forward_in_both_formats(tmp_path):
    import importlib.util

    if importlib.util.find_spec("timm") is None or importlib.util.find_spec("torchvision") is None:
        pytest.skip("timm and the torchvision it imports are not installed (torchvision has no CPU build for "
                    "torch 2.13 on PyPI, and a CUDA build breaks transformers beside torch+cpu): no reference forward")
    batch = clips()
    configs = {"half": ImageConfig(image_size=32, mean=(0.5,) * 3, std=(0.5,) * 3),
               "imagenet": ImageConfig(image_size=32)}
    pictures = {key: spectrogram_images(batch, config=config) for key, config in configs.items()}
    for key, batch_pictures in pictures.items():
        np.save(tmp_path / f"pictures_{key}.npy", batch_pictures.images)
    script = Path(__file__).with_name("dino_timm_reference.py")
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, capture_output=True, timeout=600)

    cases = [  # timm's export declares mean = std = 0.5; DINO's .pth files imply ImageNet's
        ("timm", "half"), ("dino_tiny_pretrain.pth", "imagenet"), ("dino_tiny_full_checkpoint.pth", "imagenet")]
    for checkpoint, key in cases:
        reference = np.load(tmp_path / f"reference_{key}.npz")
        np.testing.assert_allclose(reference["cls"], reference["cls_features"], rtol=1e-6, atol=1e-6)

        def embed(**options):
            options = DinoOptions(checkpoint=str(tmp_path / checkpoint), device="cpu", **options)  # noqa: B023
            return DinoEmbedder("dino_vits16", options).embed(batch)

        pool = pictures[key].pool
        np.testing.assert_allclose(embed(), pool(reference["cls"]), rtol=1e-4, atol=1e-5, err_msg=checkpoint)
        np.testing.assert_allclose(embed(tokens="patch_mean"), pool(reference["patch_mean"]), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(embed(layer=0), pool(reference["cls_block0"]), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(embed(layer="mean"), pool(reference["cls_mean_blocks"]), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_sonic_embed_with_a_tiny_checkpoint_writes_a_complete_table(tmp_path):
    from audio_fixtures import write

    from sonic.testing.vit_tiny import write_timm_checkpoint
    from sonic.tails.table import read_embeddings

    audio = tmp_path / "audios"
    audio.mkdir()
    for i, clip in enumerate(clips()):
        write(audio / f"track{i}.wav", clip, RATE)
    write_timm_checkpoint(tmp_path / "tiny", patch_size=16, embed_dim=64, depth=2, img_size=32)
    command = [sys.executable, "-m", "sonic", "embed", "--model-type", "dino_vits16", "--audio-dir", str(audio),
               "--checkpoint", str(tmp_path / "tiny"), "--option", "layer=0", "--option", "fit=resize",
               "--num-workers", "0", "--out", str(tmp_path / "out")]

    done = subprocess.run(command, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr
    table = read_embeddings(tmp_path / "out" / "dino_vits16.parquet")
    assert table.track_ids.tolist() == ["track0", "track1", "track2"] and table.dim == 64
    manifest = table.manifest
    assert manifest["layer"] == 0 and manifest["image"]["fit"] == "resize" and manifest["image"]["image_size"] == 32
    assert manifest["checkpoint"]["format"] == "timm" and manifest["modality"] == "image"
    bad = subprocess.run(command[:-2] + ["--option", "level=3", "--out", str(tmp_path / "bad")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "unknown DINO option 'level'" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_a_name_alone_loads_timms_dino_weights_from_the_local_hub_cache(tmp_path):
    import os

    from sonic.testing.vit_tiny import write_timm_checkpoint

    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--timm--vit_small_patch16_224.dino"
    write_timm_checkpoint(repo / "snapshots" / revision, patch_size=16, embed_dim=64, depth=2, img_size=32)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    script = ("from sonic.tails.base import EMBEDDERS; import json; e = EMBEDDERS.create('dino_vits16', device='cpu'); "
              "print(json.dumps(e.describe()['checkpoint']))")
    environment = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment, timeout=300)

    assert done.returncode == 0, done.stderr[-2000:]
    checkpoint = json.loads(done.stdout.strip().splitlines()[-1])
    assert checkpoint["name"] == "timm/vit_small_patch16_224.dino" and checkpoint["format"] == "timm"
