"""A plain Vision Transformer (DINO's and timm's ``VisionTransformer``) and its two checkpoint formats.

The network, written from the published architecture (Dosovitskiy et al. 2021; Caron et al. 2021):
patches of ``patch_size`` pixels -> linear embedding (a strided convolution); a learned class token in
front; learned position embeddings added; ``depth`` pre-norm blocks ``x + attn(norm1(x))``,
``x + mlp(norm2(x))`` (multi-head self-attention, fused q/k/v projection with bias; MLP with exact
GELU); a final LayerNorm (eps 1e-6 everywhere). Parameter names are those of both the original DINO
release and timm (``cls_token``, ``pos_embed``, ``patch_embed.proj``, ``blocks.N.norm1``,
``blocks.N.attn.qkv``, ``blocks.N.attn.proj``, ``blocks.N.norm2``, ``blocks.N.mlp.fc1``,
``blocks.N.mlp.fc2``, ``norm``), so either state dict loads strictly.

It is our own module rather than timm's because importing timm imports torchvision, and a torchvision
wheel built for another torch (CUDA build beside a CPU torch) fails at import: DINO then needs only
torch. The tests check it against timm's own forward.

Checkpoints (:func:`read_checkpoint`):

- timm's Hugging Face layout: a folder with ``config.json`` (``architecture``, optional ``model_args``,
  ``pretrained_cfg`` with ``mean``/``std``) and ``model.safetensors`` (or ``pytorch_model.bin``);
- the original DINO release: a ``.pth`` file (or a folder holding one) with a plain state dict
  (``dino_deitsmall16_pretrain.pth``) or a training checkpoint (``checkpoint.pth``) whose ``teacher`` /
  ``student`` entry holds ``backbone.``-prefixed (and ``module.``-prefixed) weights beside a projection
  head, with the optimizer's state and the run's ``argparse.Namespace`` under ``args``.

Every ``.pth`` / ``.bin`` is read with ``torch.load(weights_only=True)``: tensors and plain containers
only, never code; ``argparse.Namespace`` is the one class added to torch's allow-list of safe globals
(``torch.serialization.safe_globals``), so training checkpoints load without unpickling anything else.
The architecture is read from the tensors' shapes; only the number of heads is not visible there:
``model_args.num_heads``, else the named architecture's, else DINO's width of 64 per head.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sonic.errors import SonicError

#: Heads of timm's ViT architectures (the rest of the shape is read from the weights).
ARCHITECTURE_HEADS = {
    "vit_tiny_patch16_224": 3,
    "vit_small_patch16_224": 6,
    "vit_small_patch8_224": 6,
    "vit_base_patch16_224": 12,
    "vit_base_patch8_224": 12,
}
#: Width of one attention head in every DINO ViT (384 / 6 = 768 / 12 = 64).
DINO_HEAD_WIDTH = 64
#: LayerNorm epsilon of DINO's and timm's ViTs.
LAYER_NORM_EPS = 1e-6
#: Prefixes the original training checkpoints put in front of the backbone's names.
_PREFIXES = ("module.", "backbone.")


def import_torch() -> Any:
    """``torch``, or one sentence on how to install it."""
    try:
        import torch
    except ImportError:
        raise SonicError(
            "this embedder needs PyTorch, which is not installed; install it with: pip install 'sonic[models]'"
        ) from None
    return torch


@dataclass(frozen=True)
class ViTShape:
    """The architecture a state dict describes: widths in channels, sizes in pixels."""

    embed_dim: int
    depth: int
    num_heads: int
    patch_size: int
    img_size: int
    mlp_hidden: int


@dataclass(frozen=True)
class Checkpoint:
    """Weights read from disk: the state dict, its shape, and what it says about its inputs."""

    state_dict: dict[str, Any]
    shape: ViTShape
    path: Path  # the weights file
    format: str  # "timm" or "dino"
    mean: tuple[float, float, float] | None  # normalisation the checkpoint declares, if any
    std: tuple[float, float, float] | None


def build_vit(shape: ViTShape) -> Any:
    """A ViT module with ``shape`` (random weights); ``forward(images) -> [hidden states]``."""
    torch = import_torch()
    nn, functional = torch.nn, torch.nn.functional

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(shape.embed_dim, 3 * shape.embed_dim)
            self.proj = nn.Linear(shape.embed_dim, shape.embed_dim)

        def forward(self, x):  # (B, N, C)
            batch, tokens, channels = x.shape
            qkv = self.qkv(x).reshape(batch, tokens, 3, shape.num_heads, channels // shape.num_heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, C / heads)
            out = functional.scaled_dot_product_attention(q, k, v)
            return self.proj(out.transpose(1, 2).reshape(batch, tokens, channels))

    class Mlp(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(shape.embed_dim, shape.mlp_hidden)
            self.fc2 = nn.Linear(shape.mlp_hidden, shape.embed_dim)

        def forward(self, x):
            return self.fc2(functional.gelu(self.fc1(x)))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1 = nn.LayerNorm(shape.embed_dim, eps=LAYER_NORM_EPS)
            self.attn = Attention()
            self.norm2 = nn.LayerNorm(shape.embed_dim, eps=LAYER_NORM_EPS)
            self.mlp = Mlp()

        def forward(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class PatchEmbed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Conv2d(3, shape.embed_dim, kernel_size=shape.patch_size, stride=shape.patch_size)

        def forward(self, images):  # (B, 3, H, W) -> (B, H * W / patch**2, C)
            return self.proj(images).flatten(2).transpose(1, 2)

    class VisionTransformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            n_patches = (shape.img_size // shape.patch_size) ** 2
            self.patch_embed = PatchEmbed()
            self.cls_token = nn.Parameter(torch.zeros(1, 1, shape.embed_dim))
            self.pos_embed = nn.Parameter(torch.zeros(1, n_patches + 1, shape.embed_dim))
            self.blocks = nn.ModuleList(Block() for _ in range(shape.depth))
            self.norm = nn.LayerNorm(shape.embed_dim, eps=LAYER_NORM_EPS)

        def forward(self, images, *, upto: int | None = None) -> list:
            """Block outputs (B, 1 + n_patches, C), class token first, for blocks 0 .. ``upto`` (all: None)."""
            x = self.patch_embed(images)
            x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.pos_embed
            states = []
            for block in self.blocks[: None if upto is None else upto + 1]:
                x = block(x)
                states.append(x)
            return states

    return VisionTransformer()


def read_checkpoint(location: str | os.PathLike) -> Checkpoint:
    """The ViT weights at ``location`` (a timm folder, a ``.pth`` file, or a folder holding one)."""
    torch = import_torch()
    location = Path(location)
    config: dict[str, Any] = {}
    if location.is_dir():
        weights = _weights_file(location)
        if (location / "config.json").is_file():
            config = _read_config(location / "config.json")
    elif location.is_file():
        weights = location
    else:
        raise SonicError(f"checkpoint '{location}' does not exist; give a folder or a .pth file")
    if weights.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(weights), device="cpu")
    else:
        import argparse

        try:  # DINO's training checkpoints keep their argparse.Namespace under "args": allowed, nothing else
            with torch.serialization.safe_globals([argparse.Namespace]):
                state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - an unreadable or unsafe file is the user's to fix
            reason = str(error).splitlines()[0]
            raise SonicError(f"cannot read checkpoint '{weights}' as tensors only: {reason}") from None
    state, fmt = _backbone(state, weights), ("timm" if config else "dino")
    heads = config.get("model_args", {}).get("num_heads") or ARCHITECTURE_HEADS.get(config.get("architecture", ""))
    pretrained = config.get("pretrained_cfg", {})
    mean, std = pretrained.get("mean"), pretrained.get("std")
    return Checkpoint(
        state_dict=state,
        shape=_shape(state, heads, weights),
        path=weights,
        format=fmt,
        mean=tuple(float(v) for v in mean) if mean else None,
        std=tuple(float(v) for v in std) if std else None,
    )


def load_vit(checkpoint: Checkpoint) -> Any:
    """The ViT of ``checkpoint`` with its weights, in eval mode; a wrong or missing tensor is a SonicError."""
    model = build_vit(checkpoint.shape)
    expected = model.state_dict()
    unknown = sorted(set(checkpoint.state_dict) - set(expected))
    missing = sorted(set(expected) - set(checkpoint.state_dict))
    if unknown or missing:
        problem = f"has tensors a plain ViT lacks: {', '.join(unknown[:4])}" if unknown else (
            f"lacks {', '.join(missing[:4])}")
        raise SonicError(
            f"checkpoint '{checkpoint.path}' {problem}; a DINO checkpoint is a plain ViT with a class token "
            f"(no registers, layer scale or classifier head)"
        )
    model.load_state_dict(checkpoint.state_dict, strict=True)
    return model.eval()


def _weights_file(folder: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    pth = sorted(folder.glob("*.pth"))
    if len(pth) == 1:
        return pth[0]
    found = ", ".join(p.name for p in pth) or "none"
    raise SonicError(
        f"checkpoint folder '{folder}' holds no single weights file (.pth files: {found}); "
        f"a folder holds model.safetensors (timm's layout) or exactly one .pth file (DINO's release)"
    )


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SonicError(f"cannot read '{path}' as JSON: {error}") from None
    if not isinstance(config, dict):
        raise SonicError(f"'{path}' is not a JSON object; timm's config.json maps architecture, pretrained_cfg...")
    return config


def _backbone(state: Any, path: Path) -> dict[str, Any]:
    """The backbone's tensors under timm's names: unwrap a training checkpoint, strip prefixes, drop heads."""
    if isinstance(state, dict):
        for key in ("teacher", "state_dict", "model", "student"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    torch = import_torch()
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SonicError(f"checkpoint '{path}' is not a state dict of tensors")
    cleaned = {}
    for name, tensor in state.items():
        for prefix in _PREFIXES:
            name = name.removeprefix(prefix)
        if not name.startswith("head."):  # DINO's projection head or a classifier: not the backbone
            cleaned[name] = tensor
    return cleaned


def _shape(state: dict[str, Any], heads: int | None, path: Path) -> ViTShape:
    needed = ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.mlp.fc1.weight")
    absent = [name for name in needed if name not in state]
    if absent:
        raise SonicError(f"checkpoint '{path}' is not a ViT state dict: it has no {absent[0]!r}")
    embed_dim, _, patch_size, _ = state["patch_embed.proj.weight"].shape
    n_patches = state["pos_embed"].shape[1] - 1
    side = math.isqrt(n_patches)
    if side * side != n_patches:
        raise SonicError(f"checkpoint '{path}' has {n_patches} position embeddings, not a square grid of patches")
    depth = len({name.split(".")[1] for name in state if name.startswith("blocks.")})
    heads = int(heads) if heads else max(1, embed_dim // DINO_HEAD_WIDTH)
    if embed_dim % heads:
        raise SonicError(f"checkpoint '{path}': width {embed_dim} does not split into {heads} attention heads")
    return ViTShape(
        embed_dim=int(embed_dim),
        depth=depth,
        num_heads=heads,
        patch_size=int(patch_size),
        img_size=int(side * patch_size),
        mlp_hidden=int(state["blocks.0.mlp.fc1.weight"].shape[0]),
    )
