"""MusiCNN embedders (``musicnn`` = ``MSD_musicnn``, ``MTT_musicnn``, ``MSD_vgg``, ``MTT_vgg``) in PyTorch.

Weights: the TF checkpoints of the ``musicnn==0.1.0`` wheel (:mod:`~sonic.tails.models.musicnn_weights`,
fetched into a cache on first use or by ``sonic fetch musicnn``), read without TensorFlow
(:mod:`~sonic.tails.models.tf_checkpoint`); ``checkpoint=`` takes a folder holding another model's
``.index`` / ``.data-*`` files instead.

Front-end, as the package's ``extractor.py`` and ``configuration.py`` define it: mono audio at 16 kHz;
mel power spectrogram with librosa's conventions (n_fft 512, hop 256, 96 Slaney mel bands up to 8 kHz,
centred frames with zero padding); ``log10(1 + 10000 * mel)`` taken in float32 (the package casts to
float16 first, where values above 6.55 overflow to infinity and loud tracks give NaN, REFERENCE.md §3);
consecutive patches of 187 frames (3 s; ``librosa.time_to_frames(3) + 1``), a partial last patch dropped;
a clip shorter than one patch is repeated up to one (the models were trained with repeat-padding).

Outputs per patch, pooled over a clip's patches by ``pooling`` (default mean):

- ``penultimate`` (default): musicnn's 200-unit dense layer after ReLU and batch norm, computed for
  every patch (the packaged extractor returns the first patch's vector for all of them, musicnn issue
  #20); vgg's flattened pool5 (256 values);
- ``mean_max_pool`` (musicnn only): the mid-end's mean and max over time, concatenated (753 + 753);
- ``taggram``: the 50 tag probabilities (sigmoid of the logits), tags in :attr:`MusiCNNEmbedder.labels`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sonic.errors import SonicError, UnknownNameError
from sonic.tails.models import musicnn_weights
from sonic.tails.neural import POOLINGS

SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
PATCH_SECONDS = 3.0
#: Registered names -> the model inside the wheel.
VARIANTS = {"musicnn": "MSD_musicnn", **{model: model for model in musicnn_weights.MODELS}}
OUTPUTS = ("penultimate", "mean_max_pool", "taggram")
#: Arithmetic of the convolutions; only float32 matches the original TF graph (to 1e-4).
PRECISIONS = ("float32", "bfloat16")

#: Tag names, in the order of the taggram columns (the package's configuration.py).
MTT_LABELS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano", "ambient",
    "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing", "vocals", "no vocals",
    "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop", "soft", "sitar", "solo",
    "man", "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello",
    "no voice", "weird", "country", "metal", "female voice", "choral",
)
MSD_LABELS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock",
    "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow",
    "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient",
    "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening",
    "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad",
    "House", "happy",
)


def patch_frames(seconds: float) -> int:
    """Frames in a patch of ``seconds`` (the package: ``librosa.time_to_frames(seconds) + 1``; 3 s -> 187)."""
    samples = int(round(seconds * SAMPLE_RATE))
    return (samples - N_FFT // 2) // HOP_LENGTH + 1


@dataclass(frozen=True)
class MusiCNNOptions:
    """Options of a MusiCNN embedder.

    ``checkpoint``: a folder with a TF checkpoint (None: the published model, from the cache).
    ``device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``. ``output``: one of :data:`OUTPUTS`.
    ``pooling``: over a clip's patches, ``mean``, ``max`` or ``mean+max``. ``batch_size``: the most
    patches in one forward pass (None: 4 on CPU, where a chunk's intermediate tensors stay in cache:
    2 and 4 ran equally fast per patch, 6 and 10 a third slower, in float32 and bfloat16; 64 on
    CUDA). ``window_seconds``: patch length (vgg: 3 s only). ``precision``: ``float32`` (default; equal
    to the original TF graph to 1e-4) or ``bfloat16``, opt-in: the convolutions in bf16 (on CPUs with
    avx512_bf16 or AMX faster; ``benchmarks/musicnn.py`` measures both), vectors close to float32's but
    not equal: on 125 real recordings, cosine to float32 at least 0.9996 per patch and 0.9998 per clip
    (``benchmarks/musicnn_precision.py``).
    """

    checkpoint: str | None = None
    device: str = "auto"
    output: str = "penultimate"
    pooling: str = "mean"
    batch_size: int | None = None
    window_seconds: float = PATCH_SECONDS
    precision: str = "float32"

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise SonicError(f"unknown musicnn output {self.output!r}; known: {', '.join(OUTPUTS)}")
        if self.pooling not in POOLINGS:
            raise SonicError(f"unknown pooling {self.pooling!r}; known: {', '.join(POOLINGS)}")
        if self.batch_size is not None and (
            isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1
        ):
            raise SonicError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if self.precision not in PRECISIONS:
            raise SonicError(f"unknown musicnn precision {self.precision!r}; known: {', '.join(PRECISIONS)}")
        if not self.window_seconds >= 1.0:
            raise SonicError(f"window_seconds must be at least 1 s for musicnn, got {self.window_seconds}")


def from_name(name: str, **options: Any) -> MusiCNNEmbedder:
    """The embedder registered as ``name`` (``musicnn``, ``MSD_musicnn``, ``MTT_musicnn``, ``MSD_vgg``, ``MTT_vgg``).

    ``options`` are :class:`MusiCNNOptions` fields; ``None`` values keep the defaults.
    """
    if name not in VARIANTS:
        raise UnknownNameError(f"unknown embedder {name!r}; known: {', '.join(VARIANTS)}")
    known = [field.name for field in dataclasses.fields(MusiCNNOptions)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise SonicError(f"unknown option {unknown[0]!r} for {name}; known: {', '.join(known)}")
    return MusiCNNEmbedder(name, MusiCNNOptions(**{key: value for key, value in options.items() if value is not None}))


class MusiCNNEmbedder:
    """A MusiCNN or VGG tagger as an embedder: mono float32 16 kHz waveforms -> (n, dim) float32."""

    modality: ClassVar[str] = "audio"
    sample_rate: ClassVar[int] = SAMPLE_RATE

    def __init__(self, name: str, options: MusiCNNOptions = MusiCNNOptions()) -> None:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise SonicError(f"{name} runs on PyTorch, which is not installed: pip install 'sonic[models]'") from None
        from sonic.tails.models.musicnn_net import VGG, build_network
        from sonic.tails.models.tf_checkpoint import index_path, read_tf_checkpoint
        from sonic.tails.neural import pick_device

        self.name, self.options, self.model = name, options, VARIANTS.get(name, name)
        if options.checkpoint is None:
            cache = musicnn_weights.fetch_musicnn()
            folder = musicnn_weights.cached_model(self.model, cache)
        else:
            folder = Path(options.checkpoint).expanduser()
        index = index_path(folder)
        self.checkpoint_files = (index, *sorted(index.parent.glob(f"{index.name[: -len('.index')]}.data-*")))
        self.device = pick_device(options.device)
        self.batch_size = options.batch_size or (4 if self.device.type == "cpu" else 64)
        #: The arithmetic of the forward pass; the runner never adds an autocast of its own.
        self.precision = options.precision
        self.network = build_network(read_tf_checkpoint(index), options.precision).to(self.device)
        self.is_vgg = isinstance(self.network, VGG)
        if self.is_vgg and options.window_seconds != PATCH_SECONDS:
            raise SonicError(f"{name} takes 3-second patches only, got window_seconds={options.window_seconds}")
        if self.is_vgg and options.output == "mean_max_pool":
            raise SonicError(f"{name} has no mean_max_pool output; valid: penultimate, taggram")
        self.frames = patch_frames(options.window_seconds)
        self.labels = MSD_LABELS if self.model.startswith("MSD") else MTT_LABELS
        width = {
            "penultimate": self.network.penultimate_dim,
            "mean_max_pool": 0 if self.is_vgg else 2 * self.network.pool_dim,
            "taggram": self.network.n_tags,
        }[options.output]
        self.dim = width * (2 if options.pooling == "mean+max" else 1)

    def log_mel(self, waveform: np.ndarray) -> np.ndarray:
        """(frames, 96) float32 ``log10(1 + 10000 * mel power)`` of a 16 kHz mono waveform (samples,)."""
        from sonic.cream.spectra import checked_waveform, mel_power

        waveform = checked_waveform(waveform)
        mel = mel_power(waveform, SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=N_MELS).T
        mel *= np.float32(10000.0)
        mel += np.float32(1.0)
        return np.log10(mel, out=mel)

    def patches(self, waveform: np.ndarray) -> np.ndarray:
        """The clip's consecutive log-mel patches (n_patches, frames, 96) float32."""
        spectrogram = self.log_mel(waveform)
        if len(spectrogram) < self.frames:  # repeat-pad a short clip to one patch
            spectrogram = np.resize(spectrogram, (self.frames, N_MELS))
        n_patches = len(spectrogram) // self.frames
        return spectrogram[: n_patches * self.frames].reshape(n_patches, self.frames, N_MELS)

    def forward(self, patches: np.ndarray) -> dict[str, np.ndarray]:
        """Every output of the network for ``patches`` (n, frames, 96), ``batch_size`` patches at a time.

        Returns float32 arrays: ``taggram`` (n, tags), ``penultimate`` (n, units) and, for musicnn,
        ``mean_pool`` and ``max_pool`` (n, channels).
        """
        import torch

        from sonic.tails.neural import to_device

        chunks: dict[str, list[np.ndarray]] = {}
        # float32 as asked, even inside a caller's autocast region (bfloat16 is the network's own, inside it)
        with torch.inference_mode(), torch.autocast(self.device.type, enabled=False):
            for start in range(0, len(patches), self.batch_size):
                outputs = self.network(to_device(patches[start : start + self.batch_size], self.device))
                outputs["taggram"] = torch.sigmoid(outputs.pop("logits"))
                for key, value in outputs.items():
                    chunks.setdefault(key, []).append(value.float().cpu().numpy())
        return {key: np.concatenate(values) for key, values in chunks.items()}

    def patch_vectors(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The chosen ``output`` per patch (n, width) from :meth:`forward`'s dict."""
        if self.options.output == "mean_max_pool":
            return np.concatenate([outputs["mean_pool"], outputs["max_pool"]], axis=1)
        return outputs[self.options.output]

    def embed(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        """Mono float32 waveforms at 16 kHz (lengths may differ) -> (n, dim) float32, one row each.

        A clip's patches (all of one length) go through the network ``batch_size`` at a time, starting
        at the clip's first patch, so a clip's vector depends on that clip alone, never on its
        batch-mates: a resumed run gives the bits of an uninterrupted one.
        """
        from sonic.tails.neural import pool

        rows = [
            pool(self.patch_vectors(self.forward(self.patches(waveform))), self.options.pooling) for waveform in batch
        ]
        return np.stack(rows).astype(np.float32, copy=False) if rows else np.zeros((0, self.dim), dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """Manifest parameters: model, checkpoint and its sha256, output, window, pooling, front-end."""
        from sonic.tails.neural import sha256_file

        data = [path for path in self.checkpoint_files if ".data-" in path.name]
        return {
            "model": self.model,
            "source": f"musicnn=={musicnn_weights.VERSION} (PyPI wheel, TF checkpoint read without TensorFlow)"
            if self.options.checkpoint is None
            else "TF checkpoint folder",
            "checkpoint": str(self.checkpoint_files[0].parent),
            "checkpoint_sha256": {path.name: sha256_file(path) for path in data},
            "layer": self.options.output,
            "output": self.options.output,
            "window_seconds": self.options.window_seconds,
            "window_frames": self.frames,
            "pooling": self.options.pooling,
            "front_end": f"mel power n_fft {N_FFT} hop {HOP_LENGTH} {N_MELS} mels, log10(1 + 10000 x) in float32",
            "sample_rate": SAMPLE_RATE,
            "device": str(self.device),
            "precision": self.options.precision,
            "batch_size": self.batch_size,
        }
