"""Random-weights controls of the DINO ViTs: the published architecture, weights drawn at initialisation.

``dino_vits16_random`` is ViT-S/16 (width 384, 12 blocks, 6 heads, 16-pixel patches, 224-pixel
pictures) with weights drawn as timm initialises an untrained ViT (linear layers truncated normal with
std 0.02 and zero bias, LayerNorms 1 and 0, position embeddings truncated normal std 0.02, class token
normal std 1e-6, the patch convolution PyTorch's default) from a fixed seed. It answers "how much of
DINO's score is the architecture and the pictures, not the training?" and is never the published model:
its name says ``random`` and its manifest says ``random weights``.

The weights are written once in timm's checkpoint layout (``config.json`` + ``model.safetensors``)
into ``~/.cache/sonic/dino-random/<name>-seed<seed>/`` (``SONIC_DINO_RANDOM_CACHE`` moves it), under a
temporary name then renamed (:func:`sonic.files.atomic_folder`), and loaded by :func:`~sonic.tails.models.vit.read_checkpoint` exactly as a
published checkpoint is. The same seed gives the same file, bit for bit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sonic.tails.models.vit import ViTShape, build_vit, import_torch

#: Control name -> the published DINO embedder whose architecture it copies.
RANDOM_CONTROLS = {"dino_vits16_random": "dino_vits16"}
#: The published architectures the controls copy (timm's names and shapes).
ARCHITECTURES = {"dino_vits16": ("vit_small_patch16_224", ViTShape(384, 12, 6, 16, 224, 1536))}
#: The seed every control draws its weights from.
SEED = 0
CACHE_ENV = "SONIC_DINO_RANDOM_CACHE"
#: The key of config.json that marks the weights as random (read back into the manifest).
MARK = "sonic_random_weights"


def cache_dir() -> Path:
    """Where the random checkpoints live: ``$SONIC_DINO_RANDOM_CACHE`` or ``~/.cache/sonic/dino-random``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "sonic" / "dino-random").expanduser()


def random_checkpoint(name: str, *, shape: ViTShape | None = None, folder: Path | None = None) -> Path:
    """The checkpoint folder of control ``name`` (written on first use); ``shape`` overrides the
    published architecture (the tests draw a tiny one), ``folder`` the cache folder."""
    architecture, published = ARCHITECTURES[RANDOM_CONTROLS[name]]
    shape = shape or published
    if folder is None:
        size = "" if shape == published else f"-{shape.embed_dim}x{shape.depth}-{shape.img_size}px"
        folder = cache_dir() / f"{name}{size}-seed{SEED}"
    if not (folder / "model.safetensors").is_file() or not (folder / "config.json").is_file():
        write_random_checkpoint(folder, shape, architecture=architecture, seed=SEED)
    return folder


def random_state(shape: ViTShape, *, seed: int) -> dict[str, Any]:
    """A ViT state dict of ``shape`` drawn as timm initialises an untrained ViT, from ``seed``."""
    torch = import_torch()
    init = torch.nn.init
    generator = torch.Generator().manual_seed(seed)
    model = build_vit(shape)
    with torch.no_grad():
        for module_name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear):
                init.trunc_normal_(module.weight, std=0.02, generator=generator)
                init.zeros_(module.bias)
            elif isinstance(module, torch.nn.LayerNorm):
                init.ones_(module.weight)
                init.zeros_(module.bias)
            elif isinstance(module, torch.nn.Conv2d):  # the patch embedding: PyTorch's default initialisation
                init.kaiming_uniform_(module.weight, a=5**0.5, generator=generator)
                fan_in = module.weight[0].numel()
                init.uniform_(module.bias, -(fan_in**-0.5), fan_in**-0.5, generator=generator)
        init.trunc_normal_(model.pos_embed, std=0.02, generator=generator)
        init.normal_(model.cls_token, std=1e-6, generator=generator)
    return {key: value.contiguous() for key, value in model.state_dict().items()}


def write_random_checkpoint(folder: Path, shape: ViTShape, *, architecture: str, seed: int) -> Path:
    """Random weights of ``shape`` in timm's layout under ``folder``, written atomically; return ``folder``."""
    from safetensors.torch import save_file

    from sonic.files import atomic_folder

    folder = Path(folder)
    with atomic_folder(folder) as staging:  # an incomplete folder from an interrupted write is replaced
        save_file(random_state(shape, seed=seed), str(staging / "model.safetensors"))
        config = {
            "architecture": architecture,
            "num_classes": 0,
            "num_features": shape.embed_dim,
            "global_pool": "token",
            "model_args": {"embed_dim": shape.embed_dim, "depth": shape.depth, "num_heads": shape.num_heads,
                           "img_size": shape.img_size},
            "pretrained_cfg": {"input_size": [3, shape.img_size, shape.img_size], "num_classes": 0,
                               "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
            MARK: {"seed": seed, "init": "timm's initialisation of an untrained ViT", "trained": False},
        }  # fmt: skip
        (staging / "config.json").write_text(json.dumps(config, indent=2))
        staging.chmod(0o755)
    return folder
