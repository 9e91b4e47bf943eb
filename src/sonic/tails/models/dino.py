"""DINO ViTs on mel-spectrogram pictures: ``dino_vits16``, ``dino_vits8``, ``dino_vitb16``, ``dino_vitb8``.

A clip (mono float32 waveform at 22050 Hz) becomes model-ready pictures through
:func:`sonic.tails.vision.spectrogram_images` (filterbank at the real rate, [0, 1] before the
normalisation, square tiles or one resized square: REFERENCE.md §3), each picture goes through the
ViT (:mod:`sonic.tails.models.vit`), and the pictures' vectors are averaged per clip.

The vector of a picture is taken from the output of one block, or of all (``layer``), after the
ViT's final LayerNorm, as DINO's own evaluation does with ``get_intermediate_layers``:

- ``layer``: ``"last"`` (the model's output), ``"mean"`` (the mean over every block's output) or a
  block index (0 = the first block, -1 = the last; the original project's ``--level``);
- ``tokens``: ``"cls"`` (the class token, the published vector), ``"patch_mean"`` (the mean of the
  patch tokens) or ``"cls+patch_mean"`` (both, concatenated: twice the width).

Checkpoints: by default timm's copy of the DINO weights for the name (``timm/vit_small_patch16_224.dino``
...), taken from the local Hugging Face cache; or ``checkpoint=`` a local folder in timm's layout, or the
original release's ``.pth`` (``dino_deitsmall16_pretrain.pth``), or another hub name.

``dino_vits16_random`` is the control: ViT-S/16 with random weights, not the published DINO
(:mod:`sonic.tails.models.dino_random`); it takes every option but ``checkpoint``.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sonic.errors import SonicError, UnknownNameError
from sonic.tails.models.dino_random import RANDOM_CONTROLS, SEED, random_checkpoint
from sonic.tails.models.vit import Checkpoint, ViTShape, import_torch, load_vit, read_checkpoint
from sonic.tails.models.hub import HubFiles, checkpoint_files
from sonic.tails.neural import check_layer, pick_device
from sonic.tails.vision import ImageConfig, spectrogram_images

#: Name -> (timm's copy of the published DINO weights, patch size in pixels).
MODELS = {
    "dino_vits16": ("timm/vit_small_patch16_224.dino", 16),
    "dino_vits8": ("timm/vit_small_patch8_224.dino", 8),
    "dino_vitb16": ("timm/vit_base_patch16_224.dino", 16),
    "dino_vitb8": ("timm/vit_base_patch8_224.dino", 8),
}
#: What a hub name downloads (and ``sonic fetch``): timm's config.json and one weights file.
HUB_FILES = {name: (HubFiles(hub, required=("config.json",), weights=("model.safetensors", "pytorch_model.bin")),)
             for name, (hub, _) in MODELS.items()}  # fmt: skip
#: Token choices; ``cls+patch_mean`` doubles the width.
TOKENS = ("cls", "patch_mean", "cls+patch_mean")


@dataclass(frozen=True)
class DinoOptions:
    """Options of a DINO embedder (pictures: :class:`~sonic.tails.vision.ImageConfig`'s defaults otherwise).

    ``checkpoint``: a folder, a ``.pth`` file or a hub name (None: the name's published weights);
    ``revision``: the hub branch, tag or commit to pin.
    ``device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``. ``layer`` and ``tokens``: see the module
    docstring. ``fit``: ``tiles`` or ``resize``; ``tile_overlap``: fraction of a tile shared with the
    next. ``batch_size``: pictures per forward pass.
    """

    checkpoint: str | None = None
    revision: str | None = None
    device: str = "auto"
    layer: str | int = "last"
    tokens: str = "cls"
    fit: str = "tiles"
    tile_overlap: float = 0.5
    colormap: str = "magma"
    sample_rate: int = 22050
    batch_size: int = 32

    def __post_init__(self) -> None:
        object.__setattr__(self, "layer", check_layer(self.layer))
        if self.tokens not in TOKENS:
            raise SonicError(f"unknown DINO tokens {self.tokens!r}; known: {', '.join(TOKENS)}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise SonicError(f"batch_size must be a positive integer, got {self.batch_size!r}")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> DinoOptions:
        """Options from keyword arguments; an unknown key lists the known ones."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise SonicError(f"unknown DINO option {unknown[0]!r}; known: {', '.join(known)}")
        return cls(**options)


class DinoEmbedder:
    """A DINO ViT on spectrogram pictures; ``embed`` takes mono waveforms at :attr:`sample_rate` Hz.

    Returns float32 (n, dim): ``dim`` is the ViT's width (384 for ViT-S, 768 for ViT-B), twice that
    for ``tokens="cls+patch_mean"``.
    """

    modality: ClassVar[str] = "image"
    runs_in_workers: ClassVar[bool] = False
    #: The ViT runs in float32 on every device (bf16 autocast moved its vectors by 0.03).
    precision: ClassVar[str] = "float32"

    def __init__(self, name: str, options: DinoOptions = DinoOptions(), *, random_shape: ViTShape | None = None,
                 random_folder: Path | None = None) -> None:
        """``random_shape`` and ``random_folder``: a random-weights control's architecture and weights folder
        (default: the published model's shape, in the cache; the tests draw a tiny one into their own folder)."""
        if name not in MODELS and name not in RANDOM_CONTROLS:
            known = ", ".join([*MODELS, *RANDOM_CONTROLS])
            raise UnknownNameError(f"unknown embedder {name!r}; known DINO names: {known}")
        self.random_weights = name in RANDOM_CONTROLS
        self._source = None
        hub_name, patch_size = MODELS[RANDOM_CONTROLS.get(name, name)]
        self.name, self.options = name, options
        if self.random_weights:
            if options.checkpoint is not None:
                raise SonicError(
                    f"{name} is the random-weights control and takes no checkpoint; to run the published DINO, "
                    f"name {RANDOM_CONTROLS[name]} with checkpoint={options.checkpoint!r} instead"
                )
            location = random_checkpoint(name, shape=random_shape, folder=random_folder)
            self.checkpoint_name = f"random weights drawn with seed {SEED}, not the published DINO"
        else:
            self.checkpoint_name = options.checkpoint or hub_name
            location = Path(self.checkpoint_name).expanduser()
            if not location.exists():  # a hub name: config.json and one weights file, through the cache
                spec = HUB_FILES[name][0]
                self._source = checkpoint_files(
                    self.checkpoint_name, HubFiles(self.checkpoint_name, spec.required, spec.weights),
                    name=name, revision=options.revision,
                )
                location = self._source.folder
        self._checkpoint: Checkpoint = read_checkpoint(location)
        shape = self._checkpoint.shape
        if shape.patch_size != patch_size:
            raise SonicError(
                f"checkpoint '{self._checkpoint.path}' has {shape.patch_size}-pixel patches but {name} "
                f"uses {patch_size}; pick dino_vit{'s' if shape.embed_dim <= 384 else 'b'}{shape.patch_size}"
            )
        self._blocks = self._chosen_blocks(options.layer, shape.depth)
        self.device = pick_device(options.device)
        self._model = load_vit(self._checkpoint).to(self.device)
        self.dim = shape.embed_dim * (2 if options.tokens == "cls+patch_mean" else 1)
        self.sample_rate = options.sample_rate
        self.image_config = ImageConfig(
            sample_rate=options.sample_rate,
            image_size=shape.img_size,
            fit=options.fit,
            tile_overlap=options.tile_overlap,
            colormap=options.colormap,
            **{k: v for k, v in (("mean", self._checkpoint.mean), ("std", self._checkpoint.std)) if v},
        )
        self._sha256: str | None = None

    @classmethod
    def from_name(cls, name: str, **options: Any) -> DinoEmbedder:
        """``"dino_vits16"`` etc. with :class:`DinoOptions` as keywords."""
        return cls(name, DinoOptions.from_options(options))

    @staticmethod
    def _chosen_blocks(layer: str | int, depth: int) -> list[int]:
        if layer == "last":
            return [depth - 1]
        if layer == "mean":
            return list(range(depth))
        if not -depth <= layer < depth:
            raise SonicError(f"layer {layer} does not exist; this ViT has blocks 0..{depth - 1} (or -{depth}..-1)")
        return [layer % depth]

    def embed(self, batch: list[np.ndarray]) -> np.ndarray:
        """Vectors (n, dim) float32 of mono waveforms (samples,) at ``sample_rate``: mean over each clip's pictures."""
        torch = import_torch()
        pictures = spectrogram_images(batch, config=self.image_config)
        vectors = np.empty((len(pictures.images), self.dim), dtype=np.float32)
        step = self.options.batch_size
        with torch.inference_mode():
            for start in range(0, len(vectors), step):
                images = torch.from_numpy(pictures.images[start : start + step]).to(self.device)
                vectors[start : start + step] = self.picture_vectors(images).float().cpu().numpy()
        return pictures.pool(vectors)

    def picture_vectors(self, images: Any) -> Any:
        """Vectors (B, dim) of normalised pictures (B, 3, size, size), a torch tensor on :attr:`device`;
        float32 even inside a caller's autocast region."""
        torch = import_torch()
        with torch.autocast(self.device.type, enabled=False):
            states = self._model(images.float(), upto=max(self._blocks))
            chosen = [self._tokens(self._model.norm(states[block])) for block in self._blocks]
            return chosen[0] if len(chosen) == 1 else sum(chosen) / len(chosen)

    def _tokens(self, tokens: Any) -> Any:  # (B, 1 + n_patches, C) -> (B, dim)
        torch = import_torch()
        if self.options.tokens == "cls":
            return tokens[:, 0]
        if self.options.tokens == "patch_mean":
            return tokens[:, 1:].mean(dim=1)
        return torch.cat([tokens[:, 0], tokens[:, 1:].mean(dim=1)], dim=1)

    def describe(self) -> dict[str, Any]:
        """Manifest entry: model, checkpoint (name, format, sha256), architecture, layer, tokens, pictures."""
        config = self.image_config
        control = {"weights": "random (a control, not the published DINO)"} if self.random_weights else {}
        return {
            "model": self.name,
            **control,
            "checkpoint": {
                "name": self.checkpoint_name,
                "file": self._checkpoint.path.name,
                "format": self._checkpoint.format,
                "sha256": self.weights_sha256(),
                "revision": self._source.revision if self._source is not None else None,
                **({"files": self._source.describe()["files"]} if self._source is not None else {}),
            },
            "precision": "float32",
            "architecture": asdict(self._checkpoint.shape),
            "layer": self.options.layer,
            "blocks": self._blocks,
            "tokens": self.options.tokens,
            "sample_rate": self.sample_rate,
            "image": {
                **asdict(config),
                "fit": config.fit,
                "tile_frames": config.n_mels if config.fit == "tiles" else None,
                "tile_hop_frames": config.tile_hop if config.fit == "tiles" else None,
            },
            "pooling": "mean over tiles" if config.fit == "tiles" else "one resized picture per clip",
            "device": str(self.device),
        }

    def weights_sha256(self) -> str:
        """SHA-256 of the weights file (computed once)."""
        if self._sha256 is None:
            self._sha256 = _sha256(self._checkpoint.path)
        return self._sha256

    def __repr__(self) -> str:
        return f"DinoEmbedder({self.name!r}, {self.options})"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def from_name(name: str, **options: Any) -> DinoEmbedder:
    """The registry's factory: ``dino_vits16`` etc. with :class:`DinoOptions` as keywords."""
    return DinoEmbedder.from_name(name, **options)
