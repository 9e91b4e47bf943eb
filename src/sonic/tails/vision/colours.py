"""Colour for spectrogram pictures: colour-map lookup tables and the per-channel normalisation of vision models.

A colour map is sampled once into a table of :data:`COLOUR_TABLE_SIZE` RGB entries; ``"gray"`` is built
here, any other name comes from ``matplotlib.colormaps`` (imported on first use). Normalisation applies to
values in [0, 1], as ImageNet's mean and standard deviation are stated for (never 0..255).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Sequence

import numpy as np

from sonic.errors import SonicError

#: ImageNet's per-channel (R, G, B) mean and standard deviation, for values in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Entries of a colour map's lookup table.
COLOUR_TABLE_SIZE = 256
#: The colour map computed without matplotlib: the value repeated on all three channels.
GRAY = "gray"


def colour_images(squares: np.ndarray, *, colormap: str) -> np.ndarray:
    """Values (n, height, width) in [0, 1] -> RGB (n, 3, height, width) float32 in [0, 1].

    Each value takes the nearest of the :data:`COLOUR_TABLE_SIZE` entries of :func:`colour_table`.
    """
    table = colour_table(colormap)
    index = np.rint(np.clip(squares, 0.0, 1.0) * (COLOUR_TABLE_SIZE - 1)).astype(np.intp)
    return np.ascontiguousarray(np.moveaxis(table[index], -1, 1))


@functools.lru_cache(maxsize=16)
def colour_table(colormap: str) -> np.ndarray:
    """Colour map ``colormap`` sampled at 256 evenly spaced values: (256, 3) float32 RGB, read-only.

    ``"gray"`` is built here; any other name is looked up in ``matplotlib.colormaps``.
    """
    levels = np.linspace(0.0, 1.0, COLOUR_TABLE_SIZE)
    if colormap == GRAY:
        table = np.repeat(levels[:, None], 3, axis=1).astype(np.float32)
    else:
        try:
            colormaps = importlib.import_module("matplotlib").colormaps
        except ImportError:
            raise SonicError(
                f"colour map {colormap!r} needs matplotlib, which is not installed; "
                f"install it with: pip install 'matplotlib>=3.10.7,<4' (or use colormap 'gray')"
            ) from None
        if colormap not in colormaps:
            known = sorted({GRAY, *(name for name in colormaps if not name.endswith("_r"))}, key=str.lower)
            reversible = "each also reversed with '_r' appended"
            raise SonicError(f"unknown colour map {colormap!r}; known: {', '.join(known)} ({reversible})")
        table = colormaps[colormap](levels)[:, :3].astype(np.float32)  # drop alpha
    table.setflags(write=False)
    return table


def normalise(rgb: np.ndarray, *, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``(rgb - mean) / std`` per channel of ``rgb`` (n, 3, height, width) in [0, 1]; float32, a new array."""
    mean32, std32 = _channel_column(mean), _channel_column(std)
    return ((np.asarray(rgb, dtype=np.float32) - mean32) / std32).astype(np.float32, copy=False)


def denormalise(images: np.ndarray, *, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Inverse of :func:`normalise`: ``images * std + mean`` per channel, back to [0, 1]; float32."""
    return (np.asarray(images, dtype=np.float32) * _channel_column(std) + _channel_column(mean)).astype(np.float32)


def _channel_column(values: Sequence[float]) -> np.ndarray:
    """Per-channel numbers (3,) as (3, 1, 1) float32, to broadcast over (n, 3, height, width)."""
    return np.asarray(values, dtype=np.float32).reshape(3, 1, 1)
