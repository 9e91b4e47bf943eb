"""One embedder for every waveform transformer: a clip in, equal windows through the model, one vector out.

A clip is cut into windows of one length (:func:`sonic.tails.neural.equal_windows`); what happens to a
last, shorter part is the ``tail`` option (``drop`` it, ``keep`` it as a shorter window, or ``wrap``
it: complete it with the clip's start, as MuQ-MuLan does). Windows of the same length from every clip
of a batch go through the model together, ``batch_size`` at a time, so a batch never holds padding
(MERT-v1's group norm would change every vector). Each window is normalised
as the checkpoint's ``preprocessor_config.json`` says (``do_normalize``: zero mean, unit variance per
window, as transformers' ``Wav2Vec2FeatureExtractor``), its hidden states are reduced to one layer
(``last``, ``mean`` of all, or an index), averaged over time, and the window vectors of a clip are
pooled (``mean``, ``max`` or ``mean+max``) into the clip's vector; ``mean`` weighs each window by its
frames, so it is the mean over every frame of the clip (windows of one length: the plain mean).

Precision: float32 everywhere unless ``precision="bfloat16"`` is asked for (bf16 autocast on CUDA;
the CPU stays float32). The vectors of a transformer in bf16 differ from float32's in the third
digit, so it is opt-in; the manifest records which ran.

A model file supplies a :class:`WaveformModel`: the torch module, a function giving its hidden
states, and what the checkpoint says about rate, width and input normalisation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sonic.errors import AudioError, SonicError
from sonic.tails.models.hub import Checkpoint
from sonic.tails.neural import NeuralOptions, inference, pick_device, pool, select_layer, to_device

if TYPE_CHECKING:
    import torch

#: Numeric precisions of the forward pass: ``float32`` (default, every device) or ``bfloat16`` (bf16
#: autocast on CUDA, float32 on the CPU: :func:`sonic.tails.neural.inference`).
PRECISIONS = ("float32", "bfloat16")
#: What becomes of a clip's last part shorter than a window.
TAILS = ("drop", "keep", "wrap")
#: The variance floor transformers' Wav2Vec2FeatureExtractor adds before its square root.
NORMALIZE_EPSILON = 1e-7


@dataclass(frozen=True)
class TransformerOptions(NeuralOptions):
    """:class:`~sonic.tails.neural.NeuralOptions` plus ``precision`` (one of :data:`PRECISIONS`) and
    ``tail`` (one of :data:`TAILS`; None: the model's own, as upstream extracts its features)."""

    precision: str = "float32"
    tail: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.precision not in PRECISIONS:
            raise SonicError(f"unknown precision {self.precision!r}; known: {', '.join(PRECISIONS)}")
        if self.tail is not None and self.tail not in TAILS:
            raise SonicError(f"unknown tail {self.tail!r}; known: {', '.join(TAILS)}")


def transformer_options(name: str, options: Mapping[str, Any], **defaults: Any) -> TransformerOptions:
    """The options of embedder ``name``: ``options`` over ``defaults``; None means the default.

    An unknown option is a SonicError listing the known ones.
    """
    known = [field.name for field in fields(TransformerOptions)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise SonicError(f"unknown option {unknown[0]!r} for embedder {name!r}; known: {', '.join(known)}")
    given = {key: value for key, value in options.items() if value is not None}
    return TransformerOptions(**{**defaults, **given})


@dataclass(frozen=True)
class WaveformModel:
    """A loaded model and what its checkpoint says.

    ``hidden_states(module, input_values)`` maps a float batch (windows, samples) to the model's
    hidden states, first to last, each (windows, frames, hidden_size). ``min_samples``: the
    shortest window the model's convolutions accept.
    """

    module: torch.nn.Module
    hidden_states: Callable[[torch.nn.Module, torch.Tensor], Sequence[torch.Tensor]]
    sample_rate: int
    hidden_size: int
    n_hidden_states: int
    min_samples: int
    do_normalize: bool
    checkpoint: str
    weights_file: Path
    weights_sha256: str
    ignored_parameters: tuple[str, ...] = ()
    #: The checkpoints read (hub commit, sha256 of each file) for the manifest.
    sources: tuple[Checkpoint, ...] = ()
    #: Anything else the manifest should say about how the checkpoint was read.
    notes: Mapping[str, Any] = field(default_factory=dict)


def min_input_samples(kernels: Sequence[int], strides: Sequence[int]) -> int:
    """The shortest input (samples) a stack of unpadded 1-d convolutions turns into at least one frame."""
    samples = 1
    for kernel, stride in reversed(list(zip(kernels, strides, strict=True))):
        samples = (samples - 1) * stride + kernel
    return samples


def normalize_windows(windows: np.ndarray) -> np.ndarray:
    """Each row of ``windows`` (n, samples) float32 at zero mean and unit variance (float32)."""
    windows = np.asarray(windows, dtype=np.float32)
    mean = windows.mean(axis=1, keepdims=True)
    var = windows.var(axis=1, keepdims=True)
    return ((windows - mean) / np.sqrt(var + NORMALIZE_EPSILON)).astype(np.float32, copy=False)


class WindowedEmbedder:
    """An audio :class:`~sonic.tails.base.Embedder` over a :class:`WaveformModel`.

    ``default_window_seconds`` and ``default_tail`` are used when the options leave ``window_seconds``
    and ``tail`` unset.
    """

    modality = "audio"

    def __init__(
        self, name: str, model: WaveformModel, options: TransformerOptions, *, default_window_seconds: float,
        default_tail: str = "drop",
    ) -> None:
        self.name = name
        self.model = model
        self.options = options
        self.sample_rate = int(model.sample_rate)
        self.dim = int(model.hidden_size) * (2 if options.pooling == "mean+max" else 1)
        self.window_seconds = float(options.window_seconds or default_window_seconds)
        self.window_samples = max(1, int(round(self.window_seconds * self.sample_rate)))
        if self.window_samples < model.min_samples:
            raise SonicError(
                f"window_seconds {self.window_seconds} is shorter than {name}'s shortest input "
                f"({model.min_samples / self.sample_rate:.4f} s)"
            )
        if isinstance(options.layer, int) and not -model.n_hidden_states <= options.layer < model.n_hidden_states:
            raise SonicError(
                f"layer {options.layer} does not exist; {name} has hidden states 0..{model.n_hidden_states - 1}"
            )
        self.tail = options.tail or default_tail
        self.device = pick_device(options.device)
        self.bf16 = options.precision == "bfloat16" and self.device.type == "cuda"
        #: What the runner may run this embedder's forward pass in (float32 unless bfloat16 was asked for).
        self.precision = "bfloat16" if self.bf16 else "float32"
        self.module = model.module.to(device=self.device).eval()

    def embed(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        """Vectors (len(batch), dim) float32 for mono waveforms at ``sample_rate``, in order."""
        clip_windows = [self._windows(waveform, i) for i, waveform in enumerate(batch)]
        by_length: dict[int, list[tuple[int, np.ndarray]]] = {}
        for clip, windows in enumerate(clip_windows):
            for window in windows:
                by_length.setdefault(window.size, []).append((clip, window))
        vectors: list[list[np.ndarray]] = [[] for _ in batch]
        frames: list[list[int]] = [[] for _ in batch]
        step = int(self.options.batch_size)
        for items in by_length.values():
            for start in range(0, len(items), step):
                chunk = items[start : start + step]
                rows, n_frames = self.window_frames(np.stack([window for _, window in chunk]))
                for (clip, _), row in zip(chunk, rows, strict=True):
                    vectors[clip].append(row)
                    frames[clip].append(n_frames)
        out = np.empty((len(batch), self.dim), dtype=np.float32)
        for clip, rows in enumerate(vectors):
            out[clip] = pool(np.stack(rows), self.options.pooling, weights=np.asarray(frames[clip], np.float64))
        return out

    def window_vectors(self, windows: np.ndarray) -> np.ndarray:
        """One vector (hidden_size,) float32 per window of ``windows`` (n, samples): layer, then mean over time."""
        return self.window_frames(windows)[0]

    def window_frames(self, windows: np.ndarray) -> tuple[np.ndarray, int]:
        """:meth:`window_vectors` and the number of frames each vector is the mean of."""
        import torch

        if self.model.do_normalize:
            windows = normalize_windows(windows)
        # float32 asked for: also when a caller has already entered an autocast region
        exact = contextlib.nullcontext() if self.bf16 else torch.autocast(self.device.type, enabled=False)
        with inference(self.device, bf16=self.bf16), exact:
            states = self.model.hidden_states(self.module, to_device(windows, self.device))
            chosen = select_layer(states, self.options.layer)  # (n, frames, hidden)
            return chosen.float().mean(dim=1).cpu().numpy(), int(chosen.shape[1])

    def _windows(self, waveform: np.ndarray, index: int) -> list[np.ndarray]:
        windows = clip_windows(np.asarray(waveform, dtype=np.float32), self.window_samples, self.tail,
                               min_samples=self.model.min_samples)  # fmt: skip
        if windows[0].size < self.model.min_samples:
            raise AudioError(
                f"clip {index} of the batch has {windows[0].size} samples; {self.name} needs at least "
                f"{self.model.min_samples} ({self.model.min_samples / self.sample_rate:.4f} s at {self.sample_rate} Hz)"
            )
        return windows

    def describe(self) -> dict[str, Any]:
        """Manifest parameters: model, checkpoint and weights sha256, layer, window, pooling, precision."""
        options = asdict(self.options)
        sources = [source.describe() for source in self.model.sources]
        return {
            "model": self.name,
            "checkpoint": self.model.checkpoint,
            "revision": sources[0]["revision"] if sources else None,
            "files": {name: digest for source in sources for name, digest in source["files"].items()},
            **({"checkpoints": sources} if len(sources) > 1 else {}),
            "weights_file": self.model.weights_file.name,
            "weights_sha256": self.model.weights_sha256,
            "sample_rate": self.sample_rate,
            "dim": self.dim,
            "hidden_size": self.model.hidden_size,
            "n_hidden_states": self.model.n_hidden_states,
            "layer": options["layer"],
            "window_seconds": self.window_seconds,
            "tail": self.tail,
            "time_pooling": "mean",
            "pooling": options["pooling"],
            "do_normalize": self.model.do_normalize,
            "precision": "bfloat16 autocast" if self.bf16 else "float32",
            "ignored_parameters": len(self.model.ignored_parameters),
            **dict(self.model.notes),
        }


def clip_windows(waveform: np.ndarray, window_samples: int, tail: str, *, min_samples: int = 1) -> list[np.ndarray]:
    """``waveform`` (samples,) cut into consecutive windows of ``window_samples``, its last part by ``tail``.

    ``drop``: a last part shorter than a window is dropped when there is at least one full window
    (:func:`sonic.tails.neural.equal_windows`). ``keep``: it is a window of its own, shorter
    (EncodecMAE's ``extract_features_from_array`` encodes it; dropped when shorter than
    ``min_samples``, the shortest input the model takes). ``wrap``: it is completed with the clip's
    start, ``concat(tail, clip[: window - len(tail)])`` (MuQ-MuLan's ``_get_all_clips``; a clip shorter
    than a window is completed the same way, so one shorter than half a window stays shorter). Otherwise
    a clip shorter than one window is one window of its own length.
    """
    from sonic.tails.neural import equal_windows

    waveform = np.asarray(waveform)
    if tail == "wrap" and 0 < waveform.size < window_samples:  # upstream wraps a short clip onto itself too
        return [np.concatenate([waveform, waveform[: window_samples - waveform.size]])]
    full = equal_windows(waveform, window_samples)
    windows = list(full)
    rest = waveform[full.shape[0] * full.shape[1] :]
    if rest.size and tail == "keep" and rest.size >= min_samples:
        windows.append(rest)
    elif rest.size and tail == "wrap":
        windows.append(np.concatenate([rest, waveform[: window_samples - rest.size]]))
    return windows
