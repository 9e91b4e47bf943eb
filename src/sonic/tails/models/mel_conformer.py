"""The mel-spectrogram conformer shared by MuQ and MusicFM (same design, same parameter names).

Both turn 24 kHz audio into a 128-band HTK mel power spectrogram (n_fft 2048, hop 240: 100 frames/s,
centred with reflection padding, periodic Hann window), take ``10 * log10(max(power, 1e-10))``, drop
the last frame, standardise with the checkpoint's global mean and standard deviation, subsample it
four times in time with two residual 2-d convolution blocks (``conv.conv.0``, ``conv.conv.1``,
``conv.linear``) and run transformers' ``Wav2Vec2ConformerEncoder`` (``conformer``) over the 25
frames/s sequence.

Hidden states follow the convention both models were published with: the encoder's input, the
output of every layer but the last, and the last layer's output after the encoder's final layer
norm (``layers + 1`` states in all).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sonic.tails.models.checkpoints import load_parameters
from sonic.tails.models.windowed import WaveformModel
from sonic.tails.neural import sha256_file

if TYPE_CHECKING:
    from pathlib import Path

    import torch

SAMPLE_RATE = 24_000
N_FFT = 2048
HOP_LENGTH = 240
N_MELS = 128
POWER_FLOOR = 1e-10


def htk_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular HTK-scale mel filters (n_fft // 2 + 1, n_mels) float32, unnormalised, 0 Hz to Nyquist."""
    n_freqs = n_fft // 2 + 1
    freqs = np.linspace(0.0, sample_rate // 2, n_freqs)
    mel_max = 2595.0 * np.log10(1.0 + (sample_rate / 2) / 700.0)
    edges = 700.0 * (10.0 ** (np.linspace(0.0, mel_max, n_mels + 2) / 2595.0) - 1.0)  # Hz, (n_mels + 2,)
    widths = np.diff(edges)
    offsets = edges[None, :] - freqs[:, None]  # (n_freqs, n_mels + 2)
    rising = -offsets[:, :-2] / widths[:-1]
    falling = offsets[:, 2:] / widths[1:]
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


@dataclass(frozen=True)
class MelConformerConfig:
    """What a MuQ or MusicFM checkpoint fixes: widths, depth, the conformer's own config, mel statistics."""

    conv_dim: int
    encoder_dim: int
    encoder_depth: int
    mel_mean: float
    mel_std: float
    conformer: dict[str, Any]
    n_mels: int = N_MELS
    hop_length: int = HOP_LENGTH
    n_fft: int = N_FFT


def build_mel_conformer(config: MelConformerConfig) -> torch.nn.Module:
    """The module (random weights, eval mode): ``forward(waveforms (n, samples)) -> hidden states``."""
    import torch
    from torch import nn
    from transformers import Wav2Vec2ConformerConfig
    from transformers.models.wav2vec2_conformer.modeling_wav2vec2_conformer import Wav2Vec2ConformerEncoder

    from sonic.tails.models.huggingface import config_values

    class ResidualBlock(nn.Module):
        """conv3x3-bn-relu-conv3x3-bn plus a (strided, projected) shortcut, then relu."""

        def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int]) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, stride=stride)
            self.bn1 = nn.BatchNorm2d(out_channels)
            self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(out_channels)
            self.relu = nn.ReLU()
            self.project = in_channels != out_channels or stride[0] > 1
            if self.project:
                self.conv3 = nn.Conv2d(in_channels, out_channels, 3, padding=1, stride=stride)
                self.bn3 = nn.BatchNorm2d(out_channels)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            shortcut = self.bn3(self.conv3(x)) if self.project else x
            return self.relu(shortcut + out)

    class Subsampling(nn.Module):
        """(n, n_mels, frames) -> (n, frames // 4, encoder_dim): two blocks halving bands and time."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Sequential(
                ResidualBlock(1, config.conv_dim, (2, 2)), ResidualBlock(config.conv_dim, config.conv_dim, (2, 2))
            )
            self.linear = nn.Linear(config.conv_dim * (config.n_mels // 4), config.encoder_dim)

        def forward(self, mel: torch.Tensor) -> torch.Tensor:
            x = self.conv(mel[:, None])  # (n, channels, bands, frames)
            n, channels, bands, frames = x.shape
            return self.linear(x.permute(0, 3, 1, 2).reshape(n, frames, channels * bands))

    class MelConformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = Subsampling()
            values = config_values(config.conformer)  # a saved config's bookkeeping keys dropped
            conformer = Wav2Vec2ConformerConfig(
                **{**values, "num_hidden_layers": config.encoder_depth, "hidden_size": config.encoder_dim}
            )
            self.conformer = Wav2Vec2ConformerEncoder(conformer)
            fbank = torch.from_numpy(htk_mel_filterbank(SAMPLE_RATE, config.n_fft, config.n_mels))
            self.register_buffer("mel_filters", fbank, persistent=False)
            self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)

        def mel(self, waveforms: torch.Tensor) -> torch.Tensor:
            """Standardised log-mel (n, n_mels, frames) in float32, also under autocast."""
            with torch.autocast(device_type=waveforms.device.type, enabled=False):
                return self._mel(waveforms)

        def _mel(self, waveforms: torch.Tensor) -> torch.Tensor:
            spectrum = torch.stft(
                waveforms.float(), config.n_fft, hop_length=config.hop_length, window=self.window.float(),
                center=True, pad_mode="reflect", return_complex=True,
            )
            power = spectrum.real.square() + spectrum.imag.square()  # (n, freqs, frames)
            mel = torch.matmul(self.mel_filters.float().T, power)
            decibels = 10.0 * torch.log10(mel.clamp(min=POWER_FLOOR))[..., :-1]
            return (decibels - config.mel_mean) / config.mel_std

        def forward(self, waveforms: torch.Tensor) -> tuple[torch.Tensor, ...]:
            hidden = self.conv(self.mel(waveforms))
            encoder = self.conformer
            hidden = encoder.dropout(hidden)
            positions = encoder.embed_positions(hidden) if encoder.embed_positions is not None else None
            states = [hidden]
            for layer in encoder.layers:
                hidden = layer(hidden, attention_mask=None, relative_position_embeddings=positions)
                states.append(hidden)
            states[-1] = encoder.layer_norm(hidden)
            return tuple(states)

    return MelConformer().eval()


def mel_conformer_hidden_states(module: torch.nn.Module, waveforms: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Hidden states of a :func:`build_mel_conformer` module, first to last."""
    return module(waveforms)


def min_samples(n_fft: int = N_FFT) -> int:
    """The shortest clip the centred STFT takes: reflection padding needs more than ``n_fft // 2`` samples."""
    return n_fft // 2 + 1


def loaded_mel_conformer(
    config: MelConformerConfig, state: dict[str, Any], *, weights: Path, checkpoint: str, sources: tuple = (),
    notes: dict[str, Any] | None = None,
) -> WaveformModel:
    """A mel conformer built from ``config`` with ``state`` loaded, as the windowed embedder runs it (MuQ, MusicFM)."""
    module = build_mel_conformer(config)
    ignored = load_parameters(module, state, source=weights)
    return WaveformModel(
        module=module.eval(),
        hidden_states=mel_conformer_hidden_states,
        sample_rate=SAMPLE_RATE,
        hidden_size=config.encoder_dim,
        n_hidden_states=config.encoder_depth + 1,
        min_samples=min_samples(config.n_fft),
        do_normalize=False,
        checkpoint=checkpoint,
        weights_file=weights,
        weights_sha256=sha256_file(weights),
        ignored_parameters=ignored,
        sources=sources,
        notes=notes or {},
    )
