"""What every decoder shares: the header's :class:`AudioInfo`, :class:`Blocks` of decoded frames and
:func:`first_line` of a decoder's error text (see :mod:`sonic.cream.audio.decoders`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np


class AudioInfo(NamedTuple):
    """What a file's header says about its audio."""

    sample_rate: int  # Hz
    channels: int
    frames: int | None  # declared length in frames (samples per channel); None if the file does not say
    codec: str  # e.g. "FLAC PCM_16", "aac"


class Blocks:
    """Pieces of decoded audio regrouped into blocks of exactly ``block_frames`` frames (the last one shorter).

    Pieces are (frames, channels) arrays, or (channels, frames) with ``frame_axis=1``; blocks are
    handed out as (frames, channels) either way (transposed views of channel-major pieces).
    """

    def __init__(self, block_frames: int, *, frame_axis: int = 0) -> None:
        self.block_frames = block_frames
        self.frame_axis = frame_axis
        self._pieces: list[np.ndarray] = []
        self._held = 0

    def add(self, piece: np.ndarray) -> Iterator[np.ndarray]:
        """Add ``piece``; yields each block that is full."""
        self._pieces.append(piece)
        self._held += piece.shape[self.frame_axis]
        if self._held >= self.block_frames:
            joined = self._joined()
            whole = self._held - self._held % self.block_frames
            for offset in range(0, whole, self.block_frames):
                yield joined[offset : offset + self.block_frames]
            self._pieces = [joined[whole:].T if self.frame_axis else joined[whole:]]
            self._held -= whole

    def flush(self) -> Iterator[np.ndarray]:
        """The last, shorter block, if any frames are held."""
        if self._held:
            yield self._joined()
        self._pieces, self._held = [], 0

    def _joined(self) -> np.ndarray:
        """The held frames in one array (frames, channels)."""
        joined = np.concatenate(self._pieces, axis=self.frame_axis)
        return joined.T if self.frame_axis else joined


def first_line(message: str) -> str:
    """The first non-blank line of ``message`` (a decoder's error text), stripped."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"
