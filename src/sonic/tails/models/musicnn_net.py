"""MusiCNN and VGG tagging networks (Pons & Serra, musicnn 0.1.0) in PyTorch, built from TF checkpoint tensors.

Weights arrive as ``{tf_name: array}`` (see :mod:`sonic.tails.models.tf_checkpoint`); every size is
read from their shapes, so ``MSD_musicnn``, ``MTT_musicnn``, the bigger ``MSD_musicnn_big`` and tiny
random test checkpoints share one code path. Input: log-mel patches (batch, frames, mels) float32,
``log10(1 + 10000 * mel_power)``. Batch norm always runs in inference mode (moving statistics,
epsilon 1e-3, TF's default); dropout is the identity.

musicnn (layer names as TF numbered them when the graph was built):

- ``batch_normalization`` over the single input channel;
- timbral front-end: ``conv2d`` (7 x 0.4 mels) and ``conv2d_1`` (7 x 0.7 mels), time zero-padded 3 + 3,
  valid in frequency; ReLU, batch norm (``_1``, ``_2``), max over frequency (how each front-end branch
  is laid out to run fast: :mod:`~sonic.tails.models.musicnn_front`);
- temporal front-end: ``conv2d_2..4`` (128, 64, 32 frames x 1 mel) with TF "same" padding (the extra
  zero after), ReLU, batch norm (``_3..5``), max over frequency;
- mid-end: three convolutions (``conv2d_5..7``, 7 frames over every channel, padded 3 + 3), ReLU, batch
  norm (``_6..8``), the last two residual; front-end and the three mid-end outputs are concatenated;
- back-end: max and mean over time, interleaved per channel (TF concatenated (batch, C, 1) tensors
  on their last axis), batch norm (``_9``), ``dense`` + ReLU, batch norm (``_10``) = the penultimate
  layer, ``dense_1`` = tag logits.

vgg: input batch norm, five 3 x 3 "same" convolutions (``1CNN``..``5CNN``) each with ReLU, batch norm and
max pooling ((4, 1) stride 2, then (2, 2) x 3, then (4, 4)), pool5 flattened in TF's (time, mel, channel)
order = the penultimate layer, ``dense`` = tag logits.

``precision="bfloat16"`` (opt-in) runs the convolutions in bfloat16: musicnn's front-end branches
(:mod:`~sonic.tails.models.musicnn_front`, 95% of its arithmetic) as bf16 matrix products, vgg's
convolutions under CPU/CUDA bf16 autocast; everything else stays float32 (musicnn's mid-end in bf16
doubled the deviation from float32 for no measurable gain). Only float32 matches the
original graph to 1e-4.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sonic.errors import SonicError
from sonic.tails.models.musicnn_front import FrontBranch

BN_EPSILON = 1e-3
#: Arithmetic of the convolutions: float32 (equal to the original TF graph to 1e-4) or bfloat16 (opt-in, faster).
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _param(array: np.ndarray) -> nn.Parameter:
    return nn.Parameter(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)), requires_grad=False)


class BatchNorm(nn.Module):
    """TF batch norm in inference mode over dimension 1 of an (N, C, ...) tensor, folded to scale + shift."""

    def __init__(self, weights: dict[str, np.ndarray], name: str) -> None:
        super().__init__()
        gamma, beta = weights[f"{name}/gamma"], weights[f"{name}/beta"]
        mean, variance = weights[f"{name}/moving_mean"], weights[f"{name}/moving_variance"]
        scale = gamma.astype(np.float64) / np.sqrt(variance.astype(np.float64) + BN_EPSILON)
        self.scale = _param(scale)
        self.shift = _param(beta - mean * scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.scale.view(shape) + self.shift.view(shape)


def _conv2d(weights: dict[str, np.ndarray], name: str) -> tuple[nn.Parameter, nn.Parameter]:
    """TF kernel (kh, kw, in, out) -> torch (out, in, kh, kw), with its bias."""
    return _param(weights[f"{name}/kernel"].transpose(3, 2, 0, 1)), _param(weights[f"{name}/bias"])


def _tf_same(kernel: int) -> tuple[int, int]:
    """Zeros before and after for TF's "same" padding at stride 1 (the odd one goes after)."""
    return (kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2


class MusiCNN(nn.Module):
    """The musicnn tagger. ``forward`` returns a dict of per-patch outputs (see :meth:`forward`)."""

    def __init__(self, weights: dict[str, np.ndarray], precision: str = "float32") -> None:
        super().__init__()
        self.dtype = PRECISIONS[precision]
        try:
            self.input_norm = BatchNorm(weights, "batch_normalization")
            self.front = nn.ModuleList()
            for i in range(5):
                name = "conv2d" if i == 0 else f"conv2d_{i}"
                kernel = weights[f"{name}/kernel"]  # (kh, kw, 1, C)
                pad = (3, 3) if i < 2 else _tf_same(kernel.shape[0])  # timbral: 3 + 3; temporal: TF "same"
                norm = BatchNorm(weights, f"batch_normalization_{i + 1}")
                self.front.append(FrontBranch(kernel, weights[f"{name}/bias"], norm, pad=pad, dtype=self.dtype))
            self.mid = nn.ParameterList()
            self.mid_norms = nn.ModuleList()
            for i in range(3):
                kernel = weights[f"conv2d_{5 + i}/kernel"]  # (7, in_channels, 1, out)
                self.mid.append(_param(kernel[:, :, 0, :].transpose(2, 1, 0)))  # (out, in, 7)
                self.mid.append(_param(weights[f"conv2d_{5 + i}/bias"]))
                self.mid_norms.append(BatchNorm(weights, f"batch_normalization_{6 + i}"))
            self.pool_norm = BatchNorm(weights, "batch_normalization_9")
            self.dense = nn.Parameter(_param(weights["dense/kernel"]).T.contiguous(), requires_grad=False)
            self.dense_bias = _param(weights["dense/bias"])
            self.dense_norm = BatchNorm(weights, "batch_normalization_10")
            self.output = nn.Parameter(_param(weights["dense_1/kernel"]).T.contiguous(), requires_grad=False)
            self.output_bias = _param(weights["dense_1/bias"])
        except KeyError as missing:
            raise SonicError(f"not a musicnn checkpoint: tensor {missing.args[0]!r} is missing") from None
        self.penultimate_dim = self.dense.shape[0]
        self.pool_dim = self.dense.shape[1] // 2
        self.n_tags = self.output.shape[0]

    def forward(self, patches: torch.Tensor) -> dict[str, torch.Tensor]:
        """``patches`` (batch, frames, mels) -> {"logits" (batch, tags), "penultimate" (batch, units),
        "mean_pool" and "max_pool" (batch, channels)}."""
        x = self.input_norm(patches.transpose(1, 2).unsqueeze(1)).squeeze(1)  # (B, M, T)
        features = [branch(x) for branch in self.front]  # (B, C, T) each; see musicnn_front for the layouts
        front = torch.cat(features, dim=1)  # (B, 561, T)
        mids, h = [front], front
        for i in range(3):
            kernel, bias = self.mid[2 * i], self.mid[2 * i + 1]
            y = self.mid_norms[i](F.relu(F.conv1d(F.pad(h, (3, 3)), kernel, bias)))  # (B, 64, T)
            h = y if i == 0 else y + h
            mids.append(h)
        stacked = torch.cat(mids, dim=1)  # (B, 753, T)
        max_pool, mean_pool = stacked.amax(dim=2), stacked.mean(dim=2)
        flat = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # (B, 1506): max0, mean0, max1, ...
        hidden = F.relu(F.linear(self.pool_norm(flat), self.dense, self.dense_bias))
        penultimate = self.dense_norm(hidden)
        logits = F.linear(penultimate, self.output, self.output_bias)
        return {"logits": logits, "penultimate": penultimate, "mean_pool": mean_pool, "max_pool": max_pool}


class VGG(nn.Module):
    """The vgg tagger (3-second patches only). ``forward`` returns {"logits", "penultimate"} per patch."""

    POOLS = ((4, 1, 2, 2), (2, 2, 2, 2), (2, 2, 2, 2), (2, 2, 2, 2), (4, 4, 4, 4))  # (kh, kw, sh, sw)

    def __init__(self, weights: dict[str, np.ndarray], precision: str = "float32") -> None:
        super().__init__()
        self.dtype = PRECISIONS[precision]
        try:
            self.input_norm = BatchNorm(weights, "batch_normalization")
            self.convs = nn.ParameterList()
            self.norms = nn.ModuleList()
            for i in range(5):
                self.convs.extend(_conv2d(weights, f"{i + 1}CNN"))
                self.norms.append(BatchNorm(weights, f"batch_normalization_{i + 1}"))
            self.output = nn.Parameter(_param(weights["dense/kernel"]).T.contiguous(), requires_grad=False)
            self.output_bias = _param(weights["dense/bias"])
        except KeyError as missing:
            raise SonicError(f"not a vgg checkpoint: tensor {missing.args[0]!r} is missing") from None
        self.penultimate_dim = self.output.shape[1]
        self.n_tags = self.output.shape[0]

    def forward(self, patches: torch.Tensor) -> dict[str, torch.Tensor]:
        """``patches`` (batch, frames, mels) -> {"logits" (batch, tags), "penultimate" (batch, pool5 size)}."""
        x = self.input_norm(patches.unsqueeze(1))  # (B, 1, T, M)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16):
            for i, (kh, kw, sh, sw) in enumerate(self.POOLS):
                x = self.norms[i](F.relu(F.conv2d(x, self.convs[2 * i], self.convs[2 * i + 1], padding=1)))
                x = F.max_pool2d(x, (kh, kw), (sh, sw))
        flat = x.float().permute(0, 2, 3, 1).flatten(1)  # TF's NHWC flatten order
        if flat.shape[1] != self.penultimate_dim:
            raise SonicError(
                f"vgg needs 3-second patches: pool5 has {flat.shape[1]} values, its dense layer expects "
                f"{self.penultimate_dim}"
            )
        return {"logits": F.linear(flat, self.output, self.output_bias), "penultimate": flat}


def build_network(weights: dict[str, np.ndarray], precision: str = "float32") -> MusiCNN | VGG:
    """The network whose layer names ``weights`` holds (musicnn: ``conv2d/kernel``; vgg: ``1CNN/kernel``).

    ``precision``: a key of :data:`PRECISIONS`, the arithmetic of the convolutions.
    """
    if "1CNN/kernel" in weights:
        return VGG(weights, precision).eval()
    if "conv2d/kernel" in weights:
        return MusiCNN(weights, precision).eval()
    raise SonicError("the checkpoint holds neither a musicnn (conv2d/kernel) nor a vgg (1CNN/kernel) network")
