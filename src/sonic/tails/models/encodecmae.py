"""EncodecMAE (``encodecmae-base``): a masked autoencoder over EnCodec's encoder features, 24 kHz, 768-d.

Neither ``encodecmae`` (not on PyPI) nor ``encodec`` (its torchaudio is a CUDA build that cannot
load beside torch+cpu) runs here, so both halves are modules of ours with the published names:

- ``wav_encoder.model``: EnCodec's 24 kHz causal SEANet encoder (``model.<i>`` of a Sequential:
  a 7-tap conv to 32 channels; per downsampling ratio 2, 4, 5, 8 a residual block (ELU, 3-tap
  conv to half width, ELU, 1-tap conv back, plus a 1-tap conv shortcut), ELU and a strided conv
  (kernel 2 * ratio) doubling the width; a 2-layer LSTM with a skip; ELU; a 7-tap conv to 128).
  Every conv is weight-normed and padded causally: ``(kernel - 1) * dilation - (stride - 1)``
  reflected samples on the left, and on the right what makes the last window full. 75 frames/s.
- ``feat_projector`` (128 -> model_dim), ``positional_encoder`` (sinusoids times a learned
  ``scale``), and ``visible_encoder``: ResiDual transformer layers (``encoder_layers.<i>``: attention
  ``att_layer`` with bias-free ``wq``/``wk``/``wv``/``wo`` whose heads interleave along the feature
  axis, ``ff_layer`` Linear-ReLU-Linear, ``norm1``/``norm2``) and ``final_norm``; the output is
  ``x0 + final_norm(x1)`` of the two ResiDual streams.

A published checkpoint (hub ``lpepino/encodecmae-base``, upstream v1 = tag ``v.1.0.0``) is a folder
with ``model.pt`` (a PyTorch Lightning checkpoint, read with ``weights_only=True``; its ``state_dict``
also holds the decoder and heads, ignored) and ``config.gin`` (heads and EnCodec's feature scale are
read from it, in gin's line syntax ``scope/Name.param = value`` or the block syntax ``scope/Name:``
followed by indented ``param=value`` lines; widths and depth come from the tensors' shapes). Only
those two files are downloaded. EncodecMAE v2 checkpoints (``lpepino/encodecmae-v2``, other front
ends, ``wav_encoder.encoder`` and ``post_net``) are refused in one sentence.

Features as upstream's ``extract_features_from_array`` computes them: 4 s chunks, the last partial
chunk included (``tail="keep"``), and layers numbered as upstream's: layer ``k`` (0..L-1) is
``activations[k]``, the output of transformer block ``k``; ``last`` (= ``-1`` = index L) is
upstream's default output (``layer=-1``: ``x0 + final_norm(x1)``). A clip's vector is the mean over
every frame of every chunk, as the mean of upstream's concatenated frames is.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sonic.errors import SonicError
from sonic.tails.models.checkpoints import load_parameters, modern_names, read_state_dict
from sonic.tails.models.windowed import WaveformModel, WindowedEmbedder, transformer_options
from sonic.tails.models.hub import HubFiles, checkpoint_files
from sonic.tails.neural import sha256_file

if TYPE_CHECKING:
    import torch

CHECKPOINTS = {"encodecmae-base": "lpepino/encodecmae-base"}
#: The files read (and all ``sonic fetch`` downloads).
FILES = ("model.pt", "config.gin")
HUB_FILES = {name: (HubFiles(repo, required=FILES),) for name, repo in CHECKPOINTS.items()}
#: Keys only an EncodecMAE v2 checkpoint has.
V2_KEYS = ("wav_encoder.encoder.", "post_net.")
SAMPLE_RATE = 24_000
#: EncodecMAE's own feature extraction cuts audio into 4 s chunks.
DEFAULT_WINDOW_SECONDS = 4.0
#: EnCodec 24 kHz encoder: ratios applied in this order, samples per frame, widths.
RATIOS = (2, 4, 5, 8)
HOP_LENGTH = 320
N_FILTERS, CODE_DIM = 32, 128
MASK_VALUE = -1e9


@dataclass(frozen=True)
class EncodecMAEConfig:
    model_dim: int = 768
    num_layers: int = 10
    num_heads: int = 12
    ff_dim: int = 4096
    feature_scale: float = 1.0


def from_name(name: str, **options: Any) -> WindowedEmbedder:
    """The EncodecMAE embedder ``name`` with ``options`` (:class:`~sonic.tails.models.windowed.TransformerOptions`)."""
    if name not in CHECKPOINTS:
        raise SonicError(f"unknown EncodecMAE model {name!r}; known: {', '.join(CHECKPOINTS)}")
    chosen = transformer_options(name, options, checkpoint=CHECKPOINTS[name])
    model = load_encodecmae(chosen.checkpoint, name=name, revision=chosen.revision)
    return WindowedEmbedder(name, model, chosen, default_window_seconds=DEFAULT_WINDOW_SECONDS, default_tail="keep")


#: The gin parameters sonic reads (a line it cannot parse that mentions one is refused).
GIN_NEEDED = ("num_heads", "scale", "norm_type")


def gin_bindings(text: str, *, source: str = "config.gin") -> dict[str, str]:
    """Every binding of a gin file, ``"scope/Name.param"`` -> the value's text (macros substituted).

    Reads macros (``NAME = value``), line bindings (``scope/module.Name.param = value``) and block
    bindings (``scope/module.Name:`` then indented ``param = value`` lines); configurable names are
    shortened to their last part (``encoder/MultiHeadAttention.num_heads``). An indented line without
    ``=`` continues the value before it. A line of another shape that mentions one of :data:`GIN_NEEDED`
    is a SonicError naming it (other unreadable lines bind nothing sonic reads).
    """
    macros: dict[str, str] = {}
    raw: list[tuple[str, str]] = []
    block: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        code = line.split("#", 1)[0].rstrip()
        if not code.strip():
            continue
        indented = code[:1] in (" ", "\t")
        code = code.strip()
        if indented and block is not None and "=" in code:
            key, _, value = code.partition("=")
            raw.append((f"{block}.{key.strip()}", value.strip()))
            continue
        if indented and raw:  # the continuation of a value over several lines
            raw[-1] = (raw[-1][0], f"{raw[-1][1]} {code}")
            continue
        block = None
        if code.startswith(("import ", "include ", "from ")):
            continue
        if code.endswith(":") and "=" not in code:
            block = _short(code[:-1].strip())
            continue
        key, sep, value = code.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[\w./%-]+", key) or indented:
            if any(needed in code for needed in GIN_NEEDED):
                raise SonicError(f"{source} line {number} is not gin syntax sonic can read: {line.strip()!r}")
            continue
        if "." in key:
            scope_name, _, param = key.rpartition(".")
            raw.append((f"{_short(scope_name)}.{param}", value.strip()))
        else:
            macros[key] = value.strip()
    resolved = {}
    for key, value in raw:
        for _ in range(8):  # macros may name macros
            if not value.startswith("%"):
                break
            value = macros.get(value[1:], value)
        resolved[key] = value
    return resolved


def _short(name: str) -> str:
    """``encoder/tasks.models.transformers.MultiHeadAttention`` -> ``encoder/MultiHeadAttention``."""
    scope, _, configurable = name.rpartition("/")
    return f"{scope}/{configurable.split('.')[-1]}" if scope else configurable.split(".")[-1]


def gin_number(bindings: dict[str, str], keys: tuple[str, ...], default: float, *, source: str) -> float:
    """The number bound to the first of ``keys`` present, else ``default``; a non-number is a SonicError."""
    for key in keys:
        if key in bindings:
            try:
                return float(bindings[key])
            except ValueError:
                raise SonicError(f"{source} binds {key} to {bindings[key]!r}, not a number") from None
    return default


def read_config(state: dict[str, torch.Tensor], gin_text: str, *, source: str = "config.gin") -> EncodecMAEConfig:
    """Widths and depth from the tensors, heads and feature scale from the gin file."""
    model_dim = int(state["feat_projector.weight"].shape[0])
    layers = {int(m.group(1)) for key in state if (m := re.match(r"visible_encoder\.encoder_layers\.(\d+)\.", key))}
    bindings = gin_bindings(gin_text, source=source)
    norm = bindings.get("encoder/TransformerEncoder.norm_type", "'ResiDual'").strip("'\"")
    if norm != "ResiDual":
        raise SonicError(f"{source} asks for norm_type {norm!r}; EncodecMAE v1's encoder is ResiDual")
    heads = gin_number(bindings, ("encoder/MultiHeadAttention.num_heads",), model_dim // 64, source=source)
    scale = gin_number(bindings, ("EncodecEncoder.scale",), 1.0, source=source)
    return EncodecMAEConfig(
        model_dim=model_dim,
        num_layers=len(layers),
        num_heads=int(heads),
        ff_dim=int(state["visible_encoder.encoder_layers.0.ff_layer.0.weight"].shape[0]),
        feature_scale=scale,
    )


def load_encodecmae(checkpoint: str, *, name: str = "encodecmae-base", revision: str | None = None) -> WaveformModel:
    """The EncodecMAE checkpoint ``checkpoint`` (hub name or folder) as a :class:`WaveformModel`."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise SonicError("this model needs torch: pip install 'sonic[models]'") from None
    files = checkpoint_files(checkpoint, HubFiles(checkpoint, required=("model.pt",), optional=("config.gin",)),
                             name=name, revision=revision)  # fmt: skip
    weights = files.path("model.pt")
    gin_text = files.path("config.gin").read_text(encoding="utf-8", errors="replace") if files.has("config.gin") else ""
    state = modern_names(read_state_dict(weights))
    if any(key.startswith(V2_KEYS) for key in state):
        raise SonicError(
            f"weights file {str(weights)!r} is an EncodecMAE v2 checkpoint (wav_encoder.encoder, post_net), "
            f"which sonic does not load; use a v1 checkpoint such as lpepino/encodecmae-base"
        )
    if "feat_projector.weight" not in state or "visible_encoder.encoder_layers.0.ff_layer.0.weight" not in state:
        raise SonicError(
            f"weights file {str(weights)!r} is not an EncodecMAE checkpoint (no feat_projector, visible_encoder)"
        )
    config = read_config(state, gin_text, source=str(files.path("config.gin")))
    module = build_encodecmae(config)
    ignored = load_parameters(module, state, source=weights)
    return WaveformModel(
        module=module.eval(),
        hidden_states=lambda model, waveforms: model(waveforms),
        sample_rate=SAMPLE_RATE,
        hidden_size=config.model_dim,
        n_hidden_states=config.num_layers + 1,
        min_samples=HOP_LENGTH,
        do_normalize=False,
        checkpoint=str(checkpoint),
        weights_file=weights,
        weights_sha256=sha256_file(weights),
        ignored_parameters=ignored,
        sources=(files,),
        notes={"layers": "0..L-1: upstream's activations[k] (block k's output); last: upstream's layer=-1"},
    )


def build_encodecmae(config: EncodecMAEConfig) -> torch.nn.Module:
    """The encoder half of EncodecMAE (random weights, eval mode): waveforms (n, samples) -> hidden states."""
    import torch
    from torch import nn
    from torch.nn import functional as F
    from torch.nn.utils.parametrizations import weight_norm

    class CausalConv(nn.Module):
        """A weight-normed conv padded causally with reflection (``conv.conv``, as EnCodec names it)."""

        def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1) -> None:
            super().__init__()
            self.conv = nn.Module()
            self.conv.conv = weight_norm(nn.Conv1d(cin, cout, kernel, stride, dilation=dilation))
            self.kernel, self.stride, self.dilation = kernel, stride, dilation

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            left = (self.kernel - 1) * self.dilation - (self.stride - 1)
            length = x.shape[-1]
            frames = math.ceil((length - self.kernel + left) / self.stride + 1)
            right = (frames - 1) * self.stride + (self.kernel - left) - length
            extra = max(0, max(left, right) - length + 1)  # reflection needs more samples than it pads
            x = F.pad(F.pad(x, (0, extra)), (left, right), mode="reflect") if left or right else x
            return self.conv.conv(x[..., : x.shape[-1] - extra] if extra else x)

    class ResidualBlock(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.block = nn.Sequential(nn.ELU(), CausalConv(dim, dim // 2, 3), nn.ELU(), CausalConv(dim // 2, dim, 1))
            self.shortcut = CausalConv(dim, dim, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.shortcut(x) + self.block(x)

    class LSTMSkip(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.lstm = nn.LSTM(dim, dim, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.permute(2, 0, 1)  # (frames, n, channels)
            return (self.lstm(x)[0] + x).permute(1, 2, 0)

    def seanet() -> nn.Sequential:
        layers: list[nn.Module] = [CausalConv(1, N_FILTERS, 7)]
        width = N_FILTERS
        for ratio in RATIOS:
            layers += [ResidualBlock(width), nn.ELU(), CausalConv(width, 2 * width, 2 * ratio, stride=ratio)]
            width *= 2
        layers += [LSTMSkip(width), nn.ELU(), CausalConv(width, CODE_DIM, 7)]
        return nn.Sequential(*layers)

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            d = config.model_dim
            self.wq, self.wk, self.wv, self.wo = (nn.Linear(d, d, bias=False) for _ in range(4))

        def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
            n, frames, d = x.shape
            heads = config.num_heads
            # heads interleave along the features: feature f belongs to head f % heads
            q, k, v = (w(x).view(n, frames, d // heads, heads).permute(0, 3, 1, 2) for w in (self.wq, self.wk, self.wv))
            weights = (q @ k.transpose(-1, -2) * (d // heads) ** -0.5 + bias).softmax(dim=-1)
            return self.wo((weights @ v).permute(0, 2, 3, 1).reshape(n, frames, d))

    class ResiDualLayer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            d = config.model_dim
            self.att_layer = Attention()
            self.ff_layer = nn.Sequential(nn.Linear(d, config.ff_dim), nn.ReLU(), nn.Linear(config.ff_dim, d))
            self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)

        def forward(self, x0: torch.Tensor, x1: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            attended = self.att_layer(x0, bias)
            x0, x1 = self.norm1(x0 + attended), x1 + attended
            fed = self.ff_layer(x0)
            return self.norm2(x0 + fed), x1 + fed

    class EncodecMAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wav_encoder = nn.Module()
            self.wav_encoder.model = nn.Module()
            self.wav_encoder.model.model = seanet()
            self.feat_projector = nn.Linear(CODE_DIM, config.model_dim)
            self.positional_encoder = nn.Module()
            self.positional_encoder.scale = nn.Parameter(torch.tensor(1.0))
            self.visible_encoder = nn.Module()
            self.visible_encoder.encoder_layers = nn.ModuleList(ResiDualLayer() for _ in range(config.num_layers))
            self.visible_encoder.final_norm = nn.LayerNorm(config.model_dim)

        def positions(self, frames: int, dim: int, like: torch.Tensor) -> torch.Tensor:
            position = torch.arange(frames, dtype=torch.float32, device=like.device)[:, None]
            rates = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=like.device) * -(math.log(1e4) / dim))
            table = torch.zeros(frames, dim, device=like.device)
            table[:, 0::2] = torch.sin(position * rates)
            table[:, 1::2] = torch.cos(position * rates)
            return table.to(like.dtype)

        def forward(self, waveforms: torch.Tensor) -> tuple[torch.Tensor, ...]:
            codes = self.wav_encoder.model.model(waveforms[:, None, :]).transpose(1, 2) * config.feature_scale
            x = self.feat_projector(codes)
            n, frames, dim = x.shape
            x = x + self.positional_encoder.scale * self.positions(frames, dim, x)
            # frames past samples // hop (a last, partial frame) are masked as keys, as EncodecMAE does
            valid = waveforms.shape[-1] // HOP_LENGTH
            bias = torch.zeros(frames, dtype=x.dtype, device=x.device)
            bias[valid:] = MASK_VALUE
            states, x0, x1 = [], x, x
            for layer in self.visible_encoder.encoder_layers:
                x0, x1 = layer(x0, x1, bias)
                states.append(x0)
            states.append(x0 + self.visible_encoder.final_norm(x1))
            return tuple(states)

    return EncodecMAE().eval()
