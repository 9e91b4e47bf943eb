"""Model-ready mel-spectrogram pictures for vision embedders (a DINO ViT): (n_images, 3, 224, 224) float32.

The recipe, each step a function below, avoids the three bugs of the published images (REFERENCE.md §3):

1. :func:`mel_power`: mel power spectrogram (n_mels, n_frames) from the shared spectral core, with the
   filterbank built for the audio's own sample rate (the published one was built for 955 Hz);
2. :func:`unit_spectrogram`: decibels relative to the clip's loudest value (0 dB), floored ``top_db``
   below it, scaled to ``(db + top_db) / top_db`` in [0, 1]; rows flipped so the lowest band is the
   bottom row. Silence (no power above ``AMIN_POWER``) is the floor, 0, everywhere;
3. :func:`square_images`: square pictures, as a ViT's position embeddings expect (the published
   224 x ~938 image was not; DINO issue #8), by one of :data:`FITS`:

   - ``"tiles"``: square tiles ``n_mels`` frames wide (128 frames, ~3 s at 22050 Hz and hop 512),
     starting every ``tile_hop = max(1, round(n_mels * (1 - tile_overlap)))`` frames, so adjacent tiles
     share ``tile_overlap`` of their columns; the last tile is moved back to end on the clip's last frame
     (sharing more with the one before). A clip of ``n_frames`` frames gives
     ``1 + ceil(max(0, n_frames - n_mels) / tile_hop)`` tiles; one shorter than a tile is padded at its
     end with the floor. Each tile is resized to ``image_size`` (bilinear);
   - ``"resize"``: the whole clip squeezed to one ``image_size`` square (bilinear, box-averaged first
     along an axis that shrinks, so frames are averaged rather than skipped);

4. :func:`colour_images`: a colour map sampled into a 256-entry table (``"gray"``: one channel three
   times), applied to the square values, giving RGB in [0, 1], channels first (:mod:`.image_colours`);
5. :func:`normalise`: ``(rgb - mean) / std`` per channel on those [0, 1] values (ImageNet's by default;
   the published images fed it 0..255).

Resizing before colouring keeps every pixel a colour of the map and costs a third of resizing RGB.
:func:`spectrogram_images` runs the recipe over a batch and says which clip each picture belongs to.
matplotlib (colour maps) and torch (:meth:`ImageBatch.to_tensor`) load only when needed.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.ndimage

from sonic.cream import spectra
from sonic.cream.spectra import AMIN_POWER, checked_waveform, power_to_db
from sonic.errors import AudioError, SonicError
from sonic.tails.vision.colours import IMAGENET_MEAN, IMAGENET_STD, colour_images, colour_table, normalise

#: Ways to make a spectrogram square (see the module docstring).
FITS = ("tiles", "resize")


@dataclass(frozen=True)
class ImageConfig:
    """Parameters of :func:`spectrogram_images`; waveforms must be mono at ``sample_rate`` Hz.

    ``fmax_hz`` None is the Nyquist frequency. ``tile_overlap`` is the fraction of a tile's columns
    shared with the next tile (``"tiles"`` only). ``mean`` and ``std`` are per channel (R, G, B).
    """

    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    fmin_hz: float = 0.0
    fmax_hz: float | None = None
    top_db: float = 80.0
    colormap: str = "magma"
    image_size: int = 224
    fit: str = "tiles"
    tile_overlap: float = 0.5
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "hop_length", "n_mels", "image_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise SonicError(f"ImageConfig {name} must be a positive integer, got {value!r}")
        nyquist = self.sample_rate / 2
        fmax_hz = nyquist if self.fmax_hz is None else self.fmax_hz
        if not (_is_number(self.fmin_hz) and _is_number(fmax_hz) and 0 <= self.fmin_hz < fmax_hz <= nyquist):
            raise SonicError(
                f"ImageConfig fmin_hz {self.fmin_hz!r} and fmax_hz {self.fmax_hz!r} must satisfy "
                f"0 <= fmin_hz < fmax_hz <= {nyquist:g} (the Nyquist frequency at {self.sample_rate} Hz)"
            )
        if not (_is_number(self.top_db) and self.top_db > 0):
            raise SonicError(f"ImageConfig top_db must be a positive number of decibels, got {self.top_db!r}")
        if self.fit not in FITS:
            raise SonicError(f"unknown image fit {self.fit!r}; known: {', '.join(FITS)}")
        if not (_is_number(self.tile_overlap) and 0 <= self.tile_overlap < 1):
            raise SonicError(f"ImageConfig tile_overlap must be a fraction in [0, 1), got {self.tile_overlap!r}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if not (isinstance(value, Sequence) and len(value) == 3 and all(_is_number(v) for v in value)):
                raise SonicError(f"ImageConfig {name} must be three numbers (R, G, B), got {value!r}")
            object.__setattr__(self, name, tuple(float(v) for v in value))
        if min(self.std) <= 0:
            raise SonicError(f"ImageConfig std must be positive on every channel, got {self.std!r}")
        if not isinstance(self.colormap, str):
            raise SonicError(f"ImageConfig colormap must be a colour map's name, got {self.colormap!r}")
        colour_table(self.colormap)  # an unknown name fails here, with the known ones

    @property
    def tile_hop(self) -> int:
        """Frames from one tile's start to the next: ``max(1, round(n_mels * (1 - tile_overlap)))``."""
        return max(1, round(self.n_mels * (1 - self.tile_overlap)))


@dataclass(frozen=True)
class ImageBatch:
    """Pictures of a batch of clips: ``images`` (n_images, 3, size, size) float32, normalised.

    ``owners`` (n_images,) int64 gives the clip (its index in the batch) each picture shows; every clip
    has at least one, in order, and with ``fit="resize"`` exactly one.
    """

    images: np.ndarray
    owners: np.ndarray
    n_clips: int
    config: ImageConfig

    def pool(self, embeddings: np.ndarray) -> np.ndarray:
        """Mean of each clip's picture embeddings (n_images, dim) -> (n_clips, dim) float32."""
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2 or len(embeddings) != len(self.owners):
            raise SonicError(
                f"embeddings of shape {embeddings.shape} do not match a batch of {len(self.owners)} pictures; "
                f"need ({len(self.owners)}, dim)"
            )
        sums = np.zeros((self.n_clips, embeddings.shape[1]), dtype=np.float64)
        np.add.at(sums, self.owners, embeddings)
        counts = np.bincount(self.owners, minlength=self.n_clips)
        return (sums / counts[:, None]).astype(np.float32)

    def to_tensor(self) -> Any:
        """``images`` as a torch tensor sharing their memory (``torch.from_numpy``); needs PyTorch."""
        try:
            torch = importlib.import_module("torch")
        except ImportError:
            raise SonicError(
                "turning spectrogram images into a tensor needs PyTorch, which is not installed; "
                "install it with: pip install 'sonic[models]' (or pip install 'torch>=2.4,<3')"
            ) from None
        return torch.from_numpy(self.images)


def spectrogram_images(
    waveforms: Sequence[np.ndarray], *, config: ImageConfig | None = None, sample_rate: int | None = None
) -> ImageBatch:
    """Model-ready pictures of mono float32 ``waveforms`` (samples,), each at ``config.sample_rate`` Hz.

    ``sample_rate``, when given, is the waveforms' rate, checked against the config's (the filterbank
    is built for it). Returns an :class:`ImageBatch` of (n_images, 3, image_size, image_size) float32;
    at the defaults a 30 s clip gives 20 tiles (12 MB), so batch a few clips at a time.
    """
    config = ImageConfig() if config is None else config
    if sample_rate is not None and sample_rate != config.sample_rate:
        raise AudioError(
            f"waveforms at {sample_rate} Hz do not match the image config's {config.sample_rate} Hz; "
            f"decode them at {config.sample_rate} Hz or set ImageConfig(sample_rate={sample_rate})"
        )
    pictures, owners = [], []
    for clip, waveform in enumerate(waveforms):
        pictures.append(clip_images(checked_waveform(waveform, f"waveform {clip} of the batch"), config=config))
        owners.append(np.full(len(pictures[-1]), clip, dtype=np.int64))
    if not pictures:
        empty = np.empty((0, 3, config.image_size, config.image_size), dtype=np.float32)
        return ImageBatch(empty, np.empty(0, dtype=np.int64), 0, config)
    return ImageBatch(np.concatenate(pictures), np.concatenate(owners), len(pictures), config)


def clip_images(waveform: np.ndarray, *, config: ImageConfig) -> np.ndarray:
    """The recipe for one clip (samples,) float32: normalised pictures (n_images, 3, size, size) float32."""
    unit = unit_spectrogram(mel_power(waveform, config=config), top_db=config.top_db)
    rgb = colour_images(square_images(unit, config=config), colormap=config.colormap)
    return normalise(rgb, mean=config.mean, std=config.std)


def mel_power(waveform: np.ndarray, *, config: ImageConfig) -> np.ndarray:
    """Mel power spectrogram (n_mels, n_frames) float32 of ``waveform`` (samples,) at ``config.sample_rate``."""
    return spectra.mel_power(
        waveform,
        config.sample_rate,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        n_mels=config.n_mels,
        fmin_hz=config.fmin_hz,
        fmax_hz=config.fmax_hz,
    )


def unit_spectrogram(power: np.ndarray, *, top_db: float) -> np.ndarray:
    """Mel power (n_mels, n_frames) -> float32 in [0, 1]: ``(db + top_db) / top_db``, 0 dB the loudest value.

    Row 0 is the highest band, the last row the lowest (low frequencies at the bottom of the picture).
    """
    peak = float(power.max(initial=0.0))
    if peak <= AMIN_POWER:  # silence: nothing to measure decibels against
        return np.zeros(power.shape, dtype=np.float32)
    db = power_to_db(power, ref=peak, amin=AMIN_POWER, top_db=top_db)
    unit = (db + np.float32(top_db)) / np.float32(top_db)
    return np.clip(unit, 0.0, 1.0, out=unit)[::-1].copy()


def tile_starts(n_frames: int, *, tile_frames: int, tile_hop: int) -> np.ndarray:
    """First frame of each tile (n_tiles,) int64: every ``tile_hop``, the last ending on the last frame.

    ``n_tiles = 1 + ceil(max(0, n_frames - tile_frames) / tile_hop)``.
    """
    last = max(0, n_frames - tile_frames)
    starts = np.arange(0, last, tile_hop, dtype=np.int64)
    return np.append(starts, last)


def cut_tiles(unit: np.ndarray, *, tile_hop: int) -> np.ndarray:
    """Square tiles (n_tiles, n_mels, n_mels) of ``unit`` (n_mels, n_frames), the short end padded with 0."""
    height, width = unit.shape
    if width < height:
        unit = np.pad(unit, ((0, 0), (0, height - width)))
    starts = tile_starts(width, tile_frames=height, tile_hop=tile_hop)
    return np.stack([unit[:, start : start + height] for start in starts])


def resize_bilinear(image: np.ndarray, *, size: int) -> np.ndarray:
    """(height, width) -> (size, size) float32, bilinear with corner pixels aligned.

    Along an axis that shrinks by a factor ``f`` > 1, a running mean over ``round(f)`` pixels comes
    first, so every input pixel counts (plain bilinear would sample one pixel in ``f``).
    """
    image = np.asarray(image, dtype=np.float32)
    for axis, length in enumerate(image.shape):
        window = round(length / size)
        if window > 1:
            image = scipy.ndimage.uniform_filter1d(image, window, axis=axis, mode="nearest")
    rows = np.linspace(0.0, image.shape[0] - 1, size)
    columns = np.linspace(0.0, image.shape[1] - 1, size)
    grid = np.meshgrid(rows, columns, indexing="ij")  # 2 x (size, size) input coordinates
    return scipy.ndimage.map_coordinates(image, grid, order=1, mode="nearest", output=np.float32)


def square_images(unit: np.ndarray, *, config: ImageConfig) -> np.ndarray:
    """``unit`` (n_mels, n_frames) -> (n_images, image_size, image_size) float32 by ``config.fit``."""
    if config.fit == "resize":
        return resize_bilinear(unit, size=config.image_size)[None]
    tiles = cut_tiles(unit, tile_hop=config.tile_hop)
    return np.stack([resize_bilinear(tile, size=config.image_size) for tile in tiles])


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
