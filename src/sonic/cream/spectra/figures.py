"""Labelled PNG figures of the four spectral pictures of :mod:`sonic.cream.spectra.pictures`.

:func:`draw` makes a matplotlib :class:`~matplotlib.figure.Figure` (no pyplot, so no global state and no
window; PNGs are rendered by Agg); :func:`save_figure` writes one atomically. Low frequencies and slow
tempi are at the bottom, time runs left to right in seconds, and each colour bar names its unit:

- mel spectrogram: y in Hz on mel-spaced ticks, colour in dB (the clip's top 80 dB);
- chromagram: y the pitch classes C .. B, colour the energy relative to each frame's strongest class;
- FFT spectrum: x in Hz on a log scale, y the mean power in dB;
- tempogram: y in BPM on a log scale (30 .. 480 BPM shown), colour the autocorrelation; a dashed line
  marks the estimated tempo.

matplotlib loads on first use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sonic.cream.spectra.core import hz_to_mel
from sonic.cream.spectra.pictures import Chromagram, FftSpectrum, MelSpectrogram, Tempogram
from sonic.errors import SonicError
from sonic.files import atomic_open

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Picture = MelSpectrogram | Chromagram | FftSpectrum | Tempogram

#: Figure size in inches, and resolution: PNGs are 800 x 400 pixels.
FIGURE_INCHES = (8.0, 4.0)
DPI = 100
#: Colour range of the dB pictures, below their maximum.
DB_RANGE = 80.0
#: Tempi shown on the tempogram's axis.
TEMPO_AXIS_BPM = (30.0, 480.0)
COLOUR_MAP = "magma"
_HZ_TICKS = (0, 250, 500, 1000, 2000, 4000, 8000, 16000, 32000)
_LOG_HZ_TICKS = (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)
_BPM_TICKS = (30, 45, 60, 90, 120, 180, 240, 360, 480)


def draw(picture: Picture, *, title: str) -> Figure:
    """A labelled figure of ``picture``, titled with the picture's name and ``title`` (e.g. the file's name)."""
    from matplotlib.figure import Figure

    drawers = {MelSpectrogram: _draw_mel, Chromagram: _draw_chroma, FftSpectrum: _draw_fft, Tempogram: _draw_tempo}
    drawer = drawers.get(type(picture))
    if drawer is None:
        known = ", ".join(kind.__name__ for kind in drawers)
        raise SonicError(f"cannot draw a {type(picture).__name__}; known pictures: {known}")
    figure = Figure(figsize=FIGURE_INCHES, dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    name = drawer(figure, axes, picture)
    axes.set_title(f"{name} of {title}")
    return figure


def save_figure(picture: Picture, path: str | os.PathLike, *, title: str) -> Path:
    """Write :func:`draw`'s figure of ``picture`` as a PNG to ``path``; creates the folder, returns ``path``.

    Rendered by Agg, then reduced to a 256-colour palette (the colour maps have 256 colours; a
    mel spectrogram's PNG shrinks about fourfold, to ~60 KB). Written atomically
    (:func:`sonic.files.atomic_open`: a temporary file in the same folder, renamed over ``path``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    path = Path(path)
    canvas = FigureCanvasAgg(draw(picture, title=title))
    canvas.draw()
    rgb = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")
    image = rgb.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    with atomic_open(path, "xb") as stream:
        image.save(stream, format="PNG", optimize=True)
    return path


def _draw_mel(figure: Figure, axes: Axes, picture: MelSpectrogram) -> str:
    """Bands are evenly spaced in mel: draw in mel units, label the ticks in Hz."""
    mels = hz_to_mel(picture.frequencies_hz)
    half_band = (mels[1] - mels[0]) / 2 if len(mels) > 1 else 0.5
    extent = (*_time_extent(picture.times_s), mels[0] - half_band, mels[-1] + half_band)
    image = axes.imshow(picture.values, origin="lower", aspect="auto", extent=extent, cmap=COLOUR_MAP)
    image.set_clim(_db_limits(picture.values))
    low, high = picture.frequencies_hz[0], picture.frequencies_hz[-1]
    ticks = [hz for hz in _HZ_TICKS if low <= hz <= high * 1.02] or [round(low), round(high)]
    axes.set_yticks(hz_to_mel(np.asarray(ticks, dtype=float)), [f"{hz:g}" for hz in ticks])
    axes.set_ylabel("Frequency (Hz, mel scale)")
    _label_time(axes, picture.times_s)
    figure.colorbar(image, ax=axes, label=f"Level ({picture.unit})")
    return "Mel spectrogram"


def _draw_chroma(figure: Figure, axes: Axes, picture: Chromagram) -> str:
    extent = (*_time_extent(picture.times_s), -0.5, len(picture.pitch_classes) - 0.5)
    image = axes.imshow(
        picture.values,
        origin="lower",
        aspect="auto",
        extent=extent,
        cmap=COLOUR_MAP,
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
    )
    axes.set_yticks(range(len(picture.pitch_classes)), picture.pitch_classes)
    axes.set_ylabel("Pitch class")
    _label_time(axes, picture.times_s)
    figure.colorbar(image, ax=axes, label="Energy (strongest class = 1)")
    return "Chromagram"


def _draw_fft(figure: Figure, axes: Axes, picture: FftSpectrum) -> str:
    """Power against log frequency; the DC bin has no place on a log axis and is left out."""
    from matplotlib.ticker import NullFormatter

    frequencies, level = picture.frequencies_hz[1:], picture.values[1:]
    axes.plot(frequencies, level, linewidth=0.9, color="tab:blue")
    axes.set_xscale("log")
    axes.set_xlim(frequencies[0], frequencies[-1])
    ticks = [hz for hz in _LOG_HZ_TICKS if frequencies[0] <= hz <= frequencies[-1]]
    axes.set_xticks(ticks, [f"{hz:g}" for hz in ticks])
    axes.xaxis.set_minor_formatter(NullFormatter())
    bottom, top = _db_limits(picture.values)
    axes.set_ylim(bottom - 5.0, top + 5.0)
    axes.grid(True, which="major", alpha=0.3)
    axes.set_xlabel("Frequency (Hz)")
    axes.set_ylabel(f"Mean power ({picture.unit})")
    return "FFT spectrum"


def _draw_tempo(figure: Figure, axes: Axes, picture: Tempogram) -> str:
    """Lags are resampled onto rows evenly spaced in log tempo, drawn in log2(BPM) units, ticks in BPM."""
    low, high = max(TEMPO_AXIS_BPM[0], picture.bpm[-1]), min(TEMPO_AXIS_BPM[1], picture.bpm[0])
    rows = np.geomspace(low, high, 256)  # BPM, slow first
    lag = picture.bpm[0] * picture.lags[0] / rows  # fractional lag of each row
    position = np.clip(lag - picture.lags[0], 0, len(picture.lags) - 1)
    below = np.minimum(np.floor(position).astype(int), len(picture.lags) - 2) if len(picture.lags) > 1 else 0
    above = np.minimum(below + 1, len(picture.lags) - 1)
    weight = (position - below)[:, None]
    values = picture.values[below] * (1 - weight) + picture.values[above] * weight  # (256, n_frames)
    extent = (*_time_extent(picture.times_s), np.log2(low), np.log2(high))
    image = axes.imshow(values, origin="lower", aspect="auto", extent=extent, cmap=COLOUR_MAP, vmin=0.0, vmax=1.0)
    ticks = [bpm for bpm in _BPM_TICKS if low <= bpm <= high]
    axes.set_yticks(np.log2(ticks), [f"{bpm:g}" for bpm in ticks])
    tempo = picture.tempo_bpm()
    if tempo is not None and low <= tempo <= high:
        axes.axhline(np.log2(tempo), color="white", linestyle="--", linewidth=1.0, label=f"tempo ≈ {tempo:.1f} BPM")
        axes.legend(loc="upper right", fontsize="small")
    axes.set_ylabel("Tempo (BPM)")
    _label_time(axes, picture.times_s)
    figure.colorbar(image, ax=axes, label="Autocorrelation (lag 0 = 1)")
    return "Tempogram"


def _db_limits(values: np.ndarray) -> tuple[float, float]:
    """The top :data:`DB_RANGE` dB of ``values``; a flat picture (silence) sits at the bottom of its range."""
    top, bottom = float(values.max()), float(values.min())
    return (top - DB_RANGE, top) if top > bottom else (bottom, bottom + DB_RANGE)


def _label_time(axes: Axes, times_s: np.ndarray) -> None:
    """Time axis in seconds from the start of the clip (the first frame's left half lies before it)."""
    axes.set_xlim(max(0.0, _time_extent(times_s)[0]), _time_extent(times_s)[1])
    axes.set_xlabel("Time (s)")


def _time_extent(times_s: np.ndarray) -> tuple[float, float]:
    """Left and right edges (s) of frames centred at ``times_s``."""
    step = times_s[1] - times_s[0] if len(times_s) > 1 else 1.0
    return float(times_s[0] - step / 2), float(times_s[-1] + step / 2)
