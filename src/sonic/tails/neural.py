"""What neural embedders share: options, device choice, checkpoint lookup, equal windows, layer choice.

A neural embedder is an ordinary :class:`~sonic.tails.base.Embedder` whose ``embed`` runs a torch
model. The pieces here keep each model file down to its architecture and its checkpoint format:

- :class:`NeuralOptions`: checkpoint (hub name or local folder), device, layer, window, pooling;
- :func:`pick_device`: ``"auto"`` is CUDA when present, else CPU;
- :func:`resolve_checkpoint`: a local folder as it is; a hub name downloaded into (then read from) the
  Hugging Face cache (:mod:`sonic.tails.models.hub`); never code from a checkpoint;
- :func:`equal_windows`: a clip cut into windows of one length (MERT-v1's group norm makes
  zero-padding change every vector, so a batch only ever holds windows of equal length);
- :func:`select_layer`: the last hidden state, the mean of all, or one by index;
- :func:`inference` and :func:`to_device`: a forward pass without autograd (in bf16 autocast on CUDA
  only for an embedder that asks for it), fed from pinned memory (shared memory on the CPU).

torch is imported inside the functions that need it: importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from sonic.errors import SonicError

if TYPE_CHECKING:
    import torch

#: Layer choices besides an integer index (0 = the first hidden state the model returns).
LAYER_NAMES = ("last", "mean")
#: Pooling of window vectors into one clip vector.
POOLINGS = ("mean", "max", "mean+max")
#: Modalities the runner dispatches on.
MODALITIES = ("audio", "image", "text", "tabular")


@dataclass(frozen=True)
class NeuralOptions:
    """Options every neural embedder takes (a model adds its own in its own frozen dataclass).

    ``checkpoint``: a local folder, or a hub name such as ``m-a-p/MERT-v1-95M`` (None: the model's
    published default). ``device``: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. ``layer``:
    ``"last"``, ``"mean"`` (mean of every hidden layer) or an index. ``window_seconds``: length of
    the equal windows a clip is cut into (None: the model's default). ``pooling``: how window
    vectors become the clip vector. ``batch_size``: windows per forward pass. ``revision``: a hub
    branch, tag or commit to pin (None: ``main``; the manifest records the commit either way).
    """

    checkpoint: str | None = None
    revision: str | None = None
    device: str = "auto"
    layer: str | int = "last"
    window_seconds: float | None = None
    pooling: str = "mean"
    batch_size: int = 8

    def __post_init__(self) -> None:
        check_layer(self.layer)
        if self.pooling not in POOLINGS:
            raise SonicError(f"unknown pooling {self.pooling!r}; known: {', '.join(POOLINGS)}")
        if self.window_seconds is not None and not self.window_seconds > 0:
            raise SonicError(f"window_seconds must be positive, got {self.window_seconds}")
        if int(self.batch_size) < 1:
            raise SonicError(f"batch_size must be at least 1, got {self.batch_size}")


def check_layer(layer: str | int) -> str | int:
    """``layer`` if it is ``"last"``, ``"mean"`` or an integer (also as text, ``"6"``); else a SonicError."""
    if isinstance(layer, int) and not isinstance(layer, bool):
        return layer
    if isinstance(layer, str):
        if layer in LAYER_NAMES:
            return layer
        try:
            return int(layer)
        except ValueError:
            pass
    raise SonicError(f"unknown layer {layer!r}; valid: {', '.join(LAYER_NAMES)} or a layer index")


def pick_device(device: str = "auto") -> torch.device:
    """The torch device for ``device``: ``"auto"`` is ``cuda`` when available, else ``cpu``."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, ValueError):
        raise SonicError(f"unknown device {device!r}; valid: auto, cpu, cuda, cuda:N") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise SonicError(f"device {device!r} asked for, but torch sees no CUDA device here; use --device cpu")
    if chosen.type not in ("cpu", "cuda"):
        raise SonicError(f"unsupported device {device!r}; valid: auto, cpu, cuda, cuda:N")
    return chosen


def resolve_checkpoint(
    checkpoint: str | os.PathLike,
    *,
    needs: tuple[str, ...] = (),
    patterns: tuple[str, ...] = ("*.json", "*.txt", "*.model", "*.safetensors"),
    name: str | None = None,
    revision: str | None = None,
) -> Path:
    """The local folder holding ``checkpoint`` (for models whose file list is in the checkpoint itself).

    A path that exists is used as it is; it must contain every file in ``needs``. Anything else is a
    hub name: the files matching ``patterns`` are downloaded into the Hugging Face cache on first use
    (:func:`sonic.tails.models.hub.snapshot`; ``HF_HUB_OFFLINE=1``: from the cache only). A model that
    knows its files uses :func:`sonic.tails.models.hub.checkpoint_files` instead.
    """
    from sonic.tails.models import hub

    path = Path(checkpoint).expanduser()
    if path.exists():
        missing = [file for file in needs if not (path / file).exists()] if path.is_dir() else []
        if missing:
            raise SonicError(
                f"checkpoint folder {str(path)!r} lacks {', '.join(missing)}; "
                f"a checkpoint folder holds {', '.join(needs)}"
            )
        return path
    text = str(checkpoint)
    if not hub.is_hub_name(text):
        raise SonicError(f"checkpoint {text!r} is neither an existing folder nor a hub name of the form owner/model")
    return hub.snapshot(text, patterns, required=(needs or ("config.json",))[0], name=name or text, revision=revision)


def equal_windows(waveform: np.ndarray, window_samples: int) -> np.ndarray:
    """``waveform`` (samples,) cut into windows (n_windows, window_samples), all of one length.

    Consecutive windows without overlap; a last partial window is dropped when there is at least
    one full window. A clip shorter than one window is a single window of its own length: it is
    never zero-padded (padding changes every vector of a group-norm model). The returned array is
    a view where possible.
    """
    waveform = np.asarray(waveform)
    if waveform.ndim != 1 or waveform.size == 0:
        raise SonicError(f"a waveform must be a non-empty 1-d array, got shape {waveform.shape}")
    if window_samples < 1:
        raise SonicError(f"window_samples must be at least 1, got {window_samples}")
    n_windows = waveform.size // window_samples
    if n_windows == 0:
        return waveform[None, :]
    return waveform[: n_windows * window_samples].reshape(n_windows, window_samples)


def select_layer(hidden_states: Any, layer: str | int) -> torch.Tensor:
    """One (batch, time, dim) tensor from a model's hidden states (a sequence of them, first to last).

    ``"last"``: the last; ``"mean"``: the mean over all of them; an integer: that index
    (negative counts from the end). An index out of range names the valid range.
    """
    import torch

    layer = check_layer(layer)
    states = list(hidden_states)
    if layer == "last":
        return states[-1]
    if layer == "mean":
        return torch.stack(states).mean(dim=0)
    if not -len(states) <= layer < len(states):
        raise SonicError(f"layer {layer} does not exist; this model has hidden states 0..{len(states) - 1}")
    return states[layer]


def pool(vectors: np.ndarray, pooling: str = "mean", *, weights: np.ndarray | None = None) -> np.ndarray:
    """Window vectors (n_windows, dim) into one clip vector (dim,) or (2 * dim,) for ``mean+max``.

    ``weights`` (n_windows,): the mean is weighted by them (the frames behind each window vector, so
    the mean over windows is the mean over every frame); None or equal weights: the plain mean.
    """
    if weights is not None and len(weights) > 1 and not np.all(weights == weights[0]):
        mean = (np.average(vectors.astype(np.float64), axis=0, weights=weights)).astype(vectors.dtype)
    else:
        mean = vectors.mean(axis=0)
    if pooling == "mean":
        return mean
    if pooling == "max":
        return vectors.max(axis=0)
    if pooling == "mean+max":
        return np.concatenate([mean, vectors.max(axis=0)])
    raise SonicError(f"unknown pooling {pooling!r}; known: {', '.join(POOLINGS)}")


def inference(device: torch.device | str, *, bf16: bool = False) -> contextlib.AbstractContextManager:
    """The context a forward pass runs in: no autograd, and bf16 autocast on CUDA only when ``bf16``.

    float32 is the default on every device; the CPU never autocasts (it would change the vectors,
    and is slower there).
    """
    import torch

    device = torch.device(device)
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    if autocast_dtype(device, bf16=bf16) is not None:
        stack.enter_context(torch.autocast(device_type="cuda", dtype=torch.bfloat16))
    return stack


def autocast_dtype(device: torch.device | str, *, bf16: bool = False) -> torch.dtype | None:
    """The autocast dtype :func:`inference` uses on ``device``: bfloat16 on CUDA when ``bf16``, else None."""
    import torch

    return torch.bfloat16 if bf16 and torch.device(device).type == "cuda" else None


#: The precision an embedder declares when it says nothing: float32.
DEFAULT_PRECISION = "float32"


def declared_precision(embedder: Any) -> str:
    """The arithmetic ``embedder`` declares safe for its forward pass (its ``precision`` attribute):
    ``"bfloat16"`` or ``"float32"`` (the default, also for an embedder that declares nothing)."""
    return str(getattr(embedder, "precision", DEFAULT_PRECISION) or DEFAULT_PRECISION)


def embedder_context(embedder: Any) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of the context the runner runs ``embedder``'s batches in: for a torch embedder (one
    with a ``device``) no autograd, plus bf16 autocast on CUDA only when it declares ``bfloat16``;
    nothing for others."""
    device = getattr(embedder, "device", None)
    if device is None:
        return contextlib.nullcontext
    bf16 = declared_precision(embedder) == "bfloat16"
    return lambda: inference(device, bf16=bf16)


def to_device(batch: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """A float32 batch (any shape) as a tensor on ``device``.

    For CUDA the host copy is made in pinned (page-locked) memory and sent without blocking, so the
    copy overlaps the work already queued on the GPU; on the CPU the array is shared, not copied.
    """
    import torch

    device = torch.device(device)
    tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
    if not pins_memory(device):
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def pins_memory(device: torch.device | str) -> bool:
    """Whether :func:`to_device` stages batches for ``device`` in pinned memory (CUDA devices only)."""
    import torch

    return torch.device(device).type == "cuda"


def sha256_file(path: str | os.PathLike, *, chunk_bytes: int = 1 << 20) -> str:
    """The sha256 of a weights file, in hex, read in chunks (for the manifest's ``checkpoint_sha256``)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
