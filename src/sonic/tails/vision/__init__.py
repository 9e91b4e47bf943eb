"""Model-ready spectrogram images for vision embedders: mel images, colour maps, tiles, ImageNet normalisation."""

from __future__ import annotations

from sonic._lazy import lazy_getattr

_EXPORTS = {
    "ImageConfig": "sonic.tails.vision.images",
    "spectrogram_images": "sonic.tails.vision.images",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, globals(), _EXPORTS)
