"""Dropout that stays cheap on CPU: on attention weights, and on activations.

torch's fused CPU attention kernel refuses dropout, so a transformer trained with attention dropout
(BERT4Rec's 0.2) falls back to the unfused path: the (heads x T x T) weights of the whole batch are
written, dropped and read again a dozen times: about 4.5x the fused kernel's time at BERT4Rec's shapes
(64 sequences x 300 positions), a third of a gBCE training step at the journal's scale.
:func:`dropped_attention` computes the same thing, softmax(q k^T / sqrt(d) + bias), each weight zeroed
with probability p and the rest scaled by 1 / (1 - p), then times v, a few sequences at a time, so that
each block of weights stays in cache. It keeps only the drop mask (one byte a weight) and recomputes
the softmax in the backward pass, as flash attention does. ``benchmarks/dropout.py`` times both against
torch's.

torch's CPU dropout draws its mask with ``bernoulli_``, slower than drawing uniform numbers and
comparing them with p (its forward + backward takes about twice as long); :func:`dropped` does the latter (the same law: each value kept with
probability 1 - p and scaled by 1 / (1 - p)) and keeps the scaled mask for the backward pass.

:func:`attention_layer` is an ``nn.MultiheadAttention`` (same parameters, same state-dict keys) and
:func:`dropout_layer` an ``nn.Dropout``; both use these when training on CPU in float32 and torch's own
ops otherwise (on CUDA torch's fused kernels take dropout). Draws come from torch's default generator,
so ``torch.manual_seed`` fixes them.
"""

from __future__ import annotations

import functools
from typing import Any

from sonic.rouge.models.training import require_torch

BLOCK_BYTES = 1 << 19  # the weights of one block of sequences: 512 KiB fits a core's L2 cache


def dropped_attention(q: Any, k: Any, v: Any, bias: Any, p: float, generator: Any = None) -> Any:
    """softmax(q k^T / sqrt(d) + bias) with dropout ``p`` on the weights, times v.

    ``q``, ``k``, ``v`` (B, H, T, d) float32 on CPU; ``bias`` (B, T) float, added to every query's
    score of each key (0 to keep a key, -inf to hide it); ``generator``: the torch generator of the
    drop (None: torch's default) -> (B, H, T, d).
    """
    return _function().apply(q, k, v, bias, float(p), generator)


def attention_layer(hidden: int, heads: int, dropout: float) -> Any:
    """An ``nn.MultiheadAttention(hidden, heads, dropout, batch_first=True)`` whose training forward on
    CPU in float32 with dropout is :func:`dropped_attention`."""
    return _layer_class()(hidden, heads, dropout=dropout, batch_first=True)


def dropped(x: Any, p: float) -> Any:
    """``x`` with each value zeroed with probability ``p`` and the rest scaled by 1 / (1 - p)
    (CPU, float32)."""
    return _activation_function().apply(x, float(p))


def dropout_layer(p: float) -> Any:
    """An ``nn.Dropout(p)`` whose training forward on CPU in float32 is :func:`dropped`."""
    return _dropout_class()(p)


def _block(heads: int, queries: int, keys: int) -> int:
    """Sequences per block: as many as keep one block's weights within BLOCK_BYTES (at least one)."""
    return max(1, BLOCK_BYTES // (4 * heads * queries * keys))


@functools.cache
def _function() -> Any:
    torch = require_torch("bert4rec")

    def weights(q: Any, k: Any, bias: Any, scale: float) -> Any:
        scores = torch.matmul(q, k.transpose(-1, -2)).mul_(scale).add_(bias[:, None, None, :])
        return torch.softmax(scores, -1)

    class DroppedAttention(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, q: Any, k: Any, v: Any, bias: Any, p: float, generator: Any) -> Any:
            scale = q.shape[-1] ** -0.5
            step = _block(q.shape[1], q.shape[2], k.shape[2])
            out = torch.empty_like(q)
            kept = torch.empty(q.shape[:-1] + (k.shape[2],), dtype=torch.bool)
            for start in range(0, q.shape[0], step):
                part = slice(start, start + step)
                w = weights(q[part], k[part], bias[part], scale)
                keep = torch.rand(w.shape, generator=generator) >= p
                kept[part] = keep
                torch.matmul(w.mul_(keep), v[part], out=out[part])
            out.mul_(1.0 / (1.0 - p))
            ctx.save_for_backward(q, k, v, bias, kept)
            ctx.p = p
            return out

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            q, k, v, bias, kept = ctx.saved_tensors
            scale = q.shape[-1] ** -0.5
            step = _block(q.shape[1], q.shape[2], k.shape[2])
            grad = grad.contiguous() * (1.0 / (1.0 - ctx.p))
            grad_q, grad_k, grad_v = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
            for start in range(0, q.shape[0], step):
                part = slice(start, start + step)
                w, keep = weights(q[part], k[part], bias[part], scale), kept[part]
                torch.matmul((w * keep).transpose(-1, -2), grad[part], out=grad_v[part])
                grad_w = torch.matmul(grad[part], v[part].transpose(-1, -2)).mul_(keep)
                # softmax's backward: w * (g - sum(g * w)), then the 1 / sqrt(d) of the scores
                grad_s = grad_w.sub_((grad_w * w).sum(-1, keepdim=True)).mul_(w).mul_(scale)
                torch.matmul(grad_s, k[part], out=grad_q[part])
                torch.matmul(grad_s.transpose(-1, -2), q[part], out=grad_k[part])
            return grad_q, grad_k, grad_v, None, None, None

    return DroppedAttention


@functools.cache
def _layer_class() -> Any:
    torch = require_torch("bert4rec")
    functional = torch.nn.functional

    class CachedDropoutAttention(torch.nn.MultiheadAttention):
        """nn.MultiheadAttention; self-attention while training on CPU in float32 with dropout runs
        :func:`dropped_attention` (the same computation, cache-sized blocks)."""

        def forward(self, query: Any, key: Any, value: Any, key_padding_mask: Any = None, need_weights: bool = True,
                    attn_mask: Any = None, average_attn_weights: bool = True, is_causal: bool = False) -> Any:
            if not self._takes_blocks(query, key, value, attn_mask, need_weights):
                return super().forward(query, key, value, key_padding_mask=key_padding_mask,
                                       need_weights=need_weights, attn_mask=attn_mask,
                                       average_attn_weights=average_attn_weights, is_causal=is_causal)
            batch, length, width = query.shape
            heads = self.num_heads
            q, k, v = (functional.linear(query, self.in_proj_weight, self.in_proj_bias)
                       .view(batch, length, 3, heads, width // heads).permute(2, 0, 3, 1, 4).unbind(0))
            if key_padding_mask is None:
                bias = query.new_zeros(batch, length)
            elif key_padding_mask.dtype == torch.bool:
                bias = query.new_zeros(batch, length).masked_fill_(key_padding_mask, float("-inf"))
            else:
                bias = key_padding_mask.to(query.dtype)
            mixed = dropped_attention(q, k, v, bias, self.dropout)
            return self.out_proj(mixed.transpose(1, 2).reshape(batch, length, width)), None

        def _takes_blocks(self, query: Any, key: Any, value: Any, attn_mask: Any, need_weights: bool) -> bool:
            return (self.training and self.dropout > 0 and _cheap_on_cpu(query, torch)
                    and query is key and key is value and attn_mask is None and not need_weights
                    and self.batch_first and self._qkv_same_embed_dim and self.in_proj_bias is not None
                    and query.dim() == 3)

    return CachedDropoutAttention


def _cheap_on_cpu(x: Any, torch: Any) -> bool:
    """Whether ``x`` is a float32 CPU tensor outside CPU autocast: where the cheap draws apply."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")


@functools.cache
def _activation_function() -> Any:
    torch = require_torch("bert4rec")

    class Dropped(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, p: float) -> Any:
            scaled_keep = torch.rand(x.shape).ge_(p).mul_(1.0 / (1.0 - p))  # 1 / (1 - p) or 0
            ctx.save_for_backward(scaled_keep)
            return x * scaled_keep

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            (scaled_keep,) = ctx.saved_tensors
            return grad * scaled_keep, None

    return Dropped


@functools.cache
def _dropout_class() -> Any:
    torch = require_torch("bert4rec")

    class CheapDropout(torch.nn.Dropout):
        """nn.Dropout; while training on CPU in float32 it draws its mask as :func:`dropped` does."""

        def forward(self, x: Any) -> Any:
            if self.training and 0.0 < self.p < 1.0 and not self.inplace and _cheap_on_cpu(x, torch):
                return dropped(x, self.p)
            return super().forward(x)

    return CheapDropout
