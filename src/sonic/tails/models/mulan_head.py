"""MuQ-MuLan's audio head: the layers between a MuQ hidden state and the 512-d joint music-text latent.

As published (``OpenMuQ/MuQ-MuLan-large``, names under ``mulan.audio.`` and ``mulan.``):
``proj`` (Linear 1024 -> 768), ``transformer.layers.<i>.0`` attention and ``.1`` feed-forward blocks
(pre-norm, residual), a mean over time, ``audio_to_latents`` (Linear 768 -> 512) and L2 normalisation.

Attention: bias-free layer norm with a learned scale (``norm.learned_gamma``), bias-free ``to_q`` and
``to_kv`` projections, queries and keys L2-normalised per head then multiplied by learned
``q_scale``/``k_scale`` (dim_head,), logits times a fixed 8, softmax, bias-free ``to_out.0``.
Feed-forward: the same layer norm (``.0``), a bias-free Linear to ``2 * hidden`` (``.1``) split into
value and gate, ``value * gelu(gate)``, a bias-free Linear back (``.4``); ``hidden = int(dim * mult * 2 / 3)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: The fixed factor MuLan's attention multiplies its cosine logits by.
ATTENTION_SCALE = 8.0


@dataclass(frozen=True)
class MulanHeadConfig:
    """``model_dim``: the backbone's width; ``dim``: the head's; ``dim_latent``: the joint space's."""

    model_dim: int = 1024
    dim: int = 768
    depth: int = 8
    heads: int = 8
    dim_head: int = 64
    ff_mult: float = 4
    dim_latent: int = 512


def build_mulan_head(config: MulanHeadConfig) -> torch.nn.Module:
    """The head (random weights, eval mode): ``forward(states (n, frames, model_dim)) -> (n, dim_latent)``."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class ScaledNorm(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.learned_gamma = nn.Parameter(torch.ones(dim))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.layer_norm(x, x.shape[-1:], self.learned_gamma)

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            inner = config.heads * config.dim_head
            self.norm = ScaledNorm(config.dim)
            self.to_q = nn.Linear(config.dim, inner, bias=False)
            self.to_kv = nn.Linear(config.dim, 2 * inner, bias=False)
            self.q_scale = nn.Parameter(torch.ones(config.dim_head))
            self.k_scale = nn.Parameter(torch.ones(config.dim_head))
            self.to_out = nn.Sequential(nn.Linear(inner, config.dim, bias=False))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n, frames, _ = x.shape
            x = self.norm(x)
            q, k, v = (self.to_q(x), *self.to_kv(x).chunk(2, dim=-1))
            q, k, v = (t.reshape(n, frames, config.heads, config.dim_head).transpose(1, 2) for t in (q, k, v))
            q = F.normalize(q, dim=-1) * self.q_scale
            k = F.normalize(k, dim=-1) * self.k_scale
            weights = (torch.matmul(q, k.transpose(-1, -2)) * ATTENTION_SCALE).softmax(dim=-1)
            out = torch.matmul(weights, v).transpose(1, 2).reshape(n, frames, -1)
            return self.to_out(out)

    class GatedGelu(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            value, gate = x.chunk(2, dim=-1)
            return value * F.gelu(gate)

    def feed_forward() -> nn.Module:
        hidden = int(config.dim * config.ff_mult * 2 / 3)
        return nn.Sequential(
            ScaledNorm(config.dim),
            nn.Linear(config.dim, 2 * hidden, bias=False),
            GatedGelu(),
            nn.Identity(),  # dropout in training
            nn.Linear(hidden, config.dim, bias=False),
        )

    class Transformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList(nn.ModuleList([Attention(), feed_forward()]) for _ in range(config.depth))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for attention, ff in self.layers:
                x = x + attention(x)
                x = x + ff(x)
            return x

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(config.model_dim, config.dim)
            self.transformer = Transformer()
            self.audio_to_latents = nn.Linear(config.dim, config.dim_latent)

        def forward(self, states: torch.Tensor) -> torch.Tensor:
            pooled = self.transformer(self.proj(states)).mean(dim=1)
            return F.normalize(self.audio_to_latents(pooled), dim=-1)

    return Head().eval()
