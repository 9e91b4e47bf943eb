"""A tiny random ViT written in timm's Hugging Face layout, read back by :mod:`sonic.tails.models.vit`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sonic.tails.models.vit import DINO_HEAD_WIDTH, ViTShape, build_vit, import_torch


def write_timm_checkpoint(
    folder: str | os.PathLike, *, patch_size: int, embed_dim: int, depth: int, img_size: int, seed: int = 0
) -> Path:
    """A random ViT written in timm's Hugging Face layout (``config.json`` + ``model.safetensors``); for tests.

    One head per 64 channels (DINO's width), MLP four times as wide; weights normal with std 0.2.
    """
    torch = import_torch()
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    heads = max(1, embed_dim // DINO_HEAD_WIDTH)
    shape = ViTShape(embed_dim, depth, heads, patch_size, img_size, 4 * embed_dim)
    generator = torch.Generator().manual_seed(seed)
    state = {
        name: 0.2 * torch.randn(tensor.shape, generator=generator)
        for name, tensor in build_vit(shape).state_dict().items()
    }
    save_file(state, str(folder / "model.safetensors"))
    config = {
        "architecture": f"vit_small_patch{patch_size}_224",
        "num_classes": 0,
        "num_features": embed_dim,
        "global_pool": "token",
        "model_args": {"embed_dim": embed_dim, "depth": depth, "num_heads": heads, "img_size": img_size},
        "pretrained_cfg": {"input_size": [3, img_size, img_size], "num_classes": 0,
                           "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder
