"""musicnn's front-end branches (convolution, ReLU, batch norm, max over mels) laid out to run fast on a CPU.

Each branch sees the one-channel log-mel patch, and what comes out is ``max over mels of
bn(relu(conv + bias))`` per (patch, filter, frame). Three choices make that cheap, and each keeps the
float32 result equal to the plain order up to the summation order of the convolution itself:

- **The max before ReLU and batch norm.** Per filter, ReLU and the batch norm ``scale * v + shift``
  are monotone: non-decreasing when ``scale >= 0``, non-increasing when ``scale < 0``. So the max of
  ``bn(relu(z + b))`` over mels is ``bn(relu(max z + b))`` for a non-negative scale and the same with
  ``min z`` for a negative one, and the rest of the branch runs on (B, C, T) values only. The min is
  ``-max(-z)``: a filter whose scale is negative has its kernel negated once, at load (negation is
  exact in floating point, so ``-z`` is bit for bit the negated convolution), and a single ``amax``
  serves every filter. (``torch.aminmax`` over both was 17% of the forward pass.)
- **The max over an axis that is not the innermost one.** A max over a short innermost axis (59 or
  30 mel positions) is a horizontal reduction per output value; over an outer axis it is an
  element-wise max of whole contiguous rows, which vectorises. So the convolutions write layouts where
  the mel axis sits outside the filter or frame axis, as described per branch below.
- **Temporal filters as one matrix product.** The 128-, 64- and 32-frame filters are 1 frame wide
  in mels: every mel band is an independent 1-D signal with one input channel, which oneDNN runs at a
  fraction of its speed (13-46 GFLOP/s where a matrix product of the same work reaches 140+). Output
  frames are cut into blocks of ``L``; a block needs ``L + K - 1`` input frames, and all filters'
  outputs over the block are ``segment @ toeplitz`` with the banded matrix ``toeplitz[s, c * L + t]
  = kernel_c[s - t]`` (0 outside the band), built once. That does ``(L + K - 1) / K`` times the useful
  multiply-adds (the band's zeros) but at matrix-product speed; its output is laid out (B, mels,
  blocks, C, L) and the max runs over mels, an outer axis.

Timbral filters (7 frames x 38 or 67 mels) in float32 stay oneDNN's direct convolution, on the patch
transposed to (B, 1, mels, frames) so that the output (B, C, mel positions, frames) has mels outside
the frame axis: an explicit im2col + float32 matrix product ran slower here (MKL's float32 product
on these narrow shapes: about 40 GFLOP/s against oneDNN's 60 on this AMD CPU). In bfloat16 it is the
other way round: oneDNN's bf16 convolution gains little with one input channel (the bf16 dot product
pairs values along the input channels), while a bf16 matrix product runs 2-3x faster than float32;
so in bfloat16 the timbral branch is im2col (B * mel positions * frames, kh * kw) -- the reduction
length padded with zeros to a multiple of 16, which the bf16 kernels need for full speed -- times the
kernel matrix, output (B, mel positions, frames, C), max over mel positions. The im2col rows are
copied from the patch's mel windows laid out (B, mel positions, frames, kw), where a row (kh
consecutive frames of one window) is one contiguous run: 5x faster than gathering kw-long pieces.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Output frames per block of the temporal branches' banded matrix product: at least 16, a quarter of the kernel.
MIN_BLOCK_FRAMES = 16


def max_over(values: torch.Tensor, dim: int) -> torch.Tensor:
    """``values.amax(dim)``, computed as a running element-wise maximum of the slices along ``dim``.

    Equal bit for bit; 1.6-2.3x faster than ``amax`` on this CPU for the timbral branches' maxima over mel
    positions (e.g. 3.6 against 8.2 ms on a (4, 59, 187, 204) bf16 tensor, 6.6 against 11 ms on the
    float32 (4, 204, 59, 187) one), since each step is a plain vectorised maximum of long rows. (Over
    the temporal branches' 96 short slices, ``amax`` is the faster.)
    """
    out = values.select(dim, 0).clone()
    for i in range(1, values.shape[dim]):
        torch.maximum(out, values.select(dim, i), out=out)
    return out


def temporal_block(kernel_frames: int) -> int:
    """Output frames per block for a temporal kernel of ``kernel_frames`` (128 -> 32; 64, 32 -> 16)."""
    return max(MIN_BLOCK_FRAMES, kernel_frames // 4)


class FrontBranch(nn.Module):
    """One front-end branch: ``max over mels of norm(relu(conv(x) + bias))``, (B, mels, frames) -> (B, C, frames).

    ``kernel``: TF layout (kh frames, kw mels, 1, C); ``bias`` (C,); ``norm``: the branch's batch norm
    (a module with a ``scale`` (C,) tensor, applied on (B, C, T)); ``pad``: zero frames before and
    after; ``dtype``: ``torch.float32`` or ``torch.bfloat16`` for the convolution (the rest of the
    branch runs in float32).
    """

    def __init__(
        self, kernel: np.ndarray, bias: np.ndarray, norm: nn.Module, *, pad: tuple[int, int], dtype: torch.dtype
    ) -> None:
        super().__init__()
        kh, kw, _, channels = kernel.shape
        self.kh, self.kw, self.channels, self.pad, self.dtype = kh, kw, channels, pad, dtype
        self.norm = norm
        sign = np.where(norm.scale.detach().cpu().numpy() >= 0, 1.0, -1.0).astype(np.float32)  # (C,)
        signed = kernel[:, :, 0, :].transpose(2, 0, 1) * sign[:, None, None]  # (C, kh, kw), exact
        self.register_buffer("sign", torch.from_numpy(sign).view(1, -1, 1))
        self.register_buffer("bias", torch.from_numpy(np.ascontiguousarray(bias, dtype=np.float32)).view(1, -1, 1))
        self.temporal = kw == 1
        if self.temporal:
            block = self.block = temporal_block(kh)
            toeplitz = np.zeros((block + kh - 1, channels, block), np.float32)
            for t in range(block):
                toeplitz[t : t + kh, :, t] = signed[:, :, 0].T
            weight = toeplitz.reshape(block + kh - 1, channels * block)
        elif dtype == torch.float32:
            weight = signed.transpose(0, 2, 1)[:, None]  # (C, 1, kw, kh): the patch goes in as (mels, frames)
        else:
            self.reduction = -(-kh * kw // 16) * 16
            weight = np.zeros((self.reduction, channels), np.float32)
            weight[: kh * kw] = signed.reshape(channels, kh * kw).T
        self.register_buffer("weight", torch.from_numpy(np.ascontiguousarray(weight)).to(dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, mels, frames) float32 -> (B, C, frames) float32."""
        if self.temporal:
            extreme = self._temporal_max(x)
        elif self.dtype == torch.float32:
            extreme = self._timbral_max_direct(x)
        else:
            extreme = self._timbral_max_im2col(x)
        return self.norm(F.relu(extreme * self.sign + self.bias))

    def _timbral_max_direct(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, self.pad).unsqueeze(1)  # (B, 1, M, T + kh - 1)
        return max_over(F.conv2d(padded, self.weight), dim=2)  # (B, C, F, T) -> (B, C, T)

    def _timbral_max_im2col(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, self.pad).transpose(1, 2).to(self.dtype)  # (B, T + kh - 1, M)
        batch, length = padded.shape[:2]
        frames, positions, taps = length - self.kh + 1, padded.shape[2] - self.kw + 1, self.kh * self.kw
        # mel windows first, laid out (B, F, T + kh - 1, kw): the kh frames of a window are then one
        # contiguous run of kh * kw values, and the im2col rows are overlapping slices of it
        by_position = padded.unfold(2, self.kw, 1).permute(0, 2, 1, 3).contiguous()
        windows = by_position.as_strided(
            (batch, positions, frames, taps), (positions * length * self.kw, length * self.kw, self.kw, 1)
        )
        columns = torch.empty((batch, positions, frames, self.reduction), dtype=self.dtype, device=x.device)
        columns[..., taps:] = 0
        columns[..., :taps].copy_(windows)
        out = (columns.view(-1, self.reduction) @ self.weight).view(batch, positions, frames, self.channels)
        return max_over(out, dim=1).transpose(1, 2).float()  # (B, F, T, C) -> (B, T, C) -> (B, C, T)

    def _temporal_max(self, x: torch.Tensor) -> torch.Tensor:
        batch, mels, frames = x.shape
        block, span = self.block, self.block + self.kh - 1
        blocks = -(-frames // block)
        before = self.pad[0]
        padded = F.pad(x, (before, blocks * block + self.kh - 1 - frames - before)).to(self.dtype)
        segments = padded.unfold(2, span, block).reshape(-1, span)  # (B * M * blocks, L + K - 1)
        out = (segments @ self.weight).view(batch, mels, blocks, self.channels, block).amax(dim=1)  # short rows
        return out.permute(0, 2, 1, 3).reshape(batch, self.channels, blocks * block)[..., :frames].float()
