"""The FFmpeg decoder (through PyAV) for what libsndfile cannot read: .m4a (AAC, ALAC) and raw .aac.

Same interface as :class:`sonic.cream.audio.decoders.SndfileDecoder`. In an MP4 container, whose index
gives the exact length and lets FFmpeg seek, a window is read by seeking to a little before its
start (:data:`PREROLL_FRAMES`, since an AAC frame needs the one before it to decode), then
decoding until the window is full; frames are placed by their timestamps. A raw AAC stream has no
index and only an estimated length: it is decoded from its start, and its length is not declared.
PyAV is imported only when such a file is opened.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from sonic.cream.audio.decoded import AudioInfo, Blocks, first_line
from sonic.errors import AudioError, BrokenAudioError

#: Seek this many frames before a window's start and decode up to it, so that its first frame decodes
#: whole (an AAC frame holds 1024 of them, 2048 in HE-AAC, and needs the one before it).
PREROLL_FRAMES = 4096
#: Demuxers (FFmpeg's names) whose index gives an exact length and exact seeking.
_INDEXED_FORMATS = {"mov", "mp4", "m4a"}


class FFmpegDecoder:
    """Reads the first audio stream of a file with FFmpeg (see :mod:`sonic.cream.audio.decoders`)."""

    def __init__(self, path: Path) -> None:
        try:
            import av
        except ImportError:
            raise AudioError(f"decoding '{path}' needs PyAV (FFmpeg): pip install 'av>=13,<19'") from None
        self.path = path
        self._av = av
        self._open()
        context = self._stream.codec_context
        self._indexed = bool(_INDEXED_FORMATS & set(self._container.format.name.split(",")))
        rate = context.sample_rate
        self.info = AudioInfo(rate, context.channels, self._declared_frames(rate), context.name)

    def __enter__(self) -> FFmpegDecoder:
        return self

    def __exit__(self, *exc_info) -> None:
        self._container.close()

    def read(self, start: int, stop: int | None, block_frames: int) -> Iterator[np.ndarray]:
        if self._used:  # read again: start over from a fresh demuxer and decoder
            self._container.close()
            self._open()
        self._used = True
        blocks = Blocks(block_frames)
        for position, frames in self._placed_frames(start):
            if stop is not None and position >= stop:
                break
            if position + len(frames) > start:
                yield from blocks.add(frames[max(start - position, 0) : None if stop is None else stop - position])
        yield from blocks.flush()

    def _placed_frames(self, start: int) -> Iterator[tuple[int, np.ndarray]]:
        """``(first frame index, frames (n, channels) float32)`` per decoded FFmpeg frame, from about ``start``."""
        stream, rate = self._stream, self.info.sample_rate
        time_base = stream.time_base or Fraction(1, rate)
        origin = stream.start_time or 0
        if self._indexed and start > PREROLL_FRAMES:
            self._seek(int((start - PREROLL_FRAMES) / rate / time_base))
        position = 0
        try:
            for packet in self._container.demux(stream):
                for frame in packet.decode():
                    if frame.pts is not None:
                        position = round((frame.pts - origin) * time_base * rate)
                    frames = self._as_float(frame)
                    yield position, frames
                    position += len(frames)
        except self._av.error.FFmpegError as error:
            raise self._undecodable(error, at_seconds=position / rate) from None

    def _open(self) -> None:
        """Open the container and find its first audio stream."""
        try:
            self._container = self._av.open(str(self.path), metadata_errors="ignore")
        except self._av.error.FFmpegError as error:
            raise self._undecodable(error) from None
        if not self._container.streams.audio:
            self._container.close()
            raise BrokenAudioError(f"cannot decode '{self.path}' as audio: it holds no audio stream", "undecodable")
        self._stream = self._container.streams.audio[0]
        self._used = False

    def _seek(self, timestamp: int) -> None:
        try:
            self._container.seek(timestamp, stream=self._stream, backward=True)
        except self._av.error.FFmpegError as error:
            raise self._undecodable(error) from None

    def _as_float(self, frame) -> np.ndarray:
        """An FFmpeg audio frame as float32 (samples, channels), integers scaled to -1.0 .. 1.0."""
        channels = self.info.channels
        if frame.layout.nb_channels != channels or frame.sample_rate != self.info.sample_rate:
            raise BrokenAudioError(
                f"cannot decode '{self.path}': its audio changes from {channels} channels at "
                f"{self.info.sample_rate} Hz to {frame.layout.nb_channels} at {frame.sample_rate} Hz",
                "undecodable",
            )
        array = frame.to_ndarray()
        array = array.T if frame.format.is_planar else array.reshape(-1, channels)
        if array.dtype.kind == "f":
            return array.astype(np.float32, copy=False)
        info = np.iinfo(array.dtype)
        scale = np.float32(info.max + 1 if info.min < 0 else (info.max + 1) / 2)
        shift = np.float32(0 if info.min < 0 else scale)
        return (array.astype(np.float32) - shift) / scale

    def _declared_frames(self, rate: int) -> int | None:
        """The length the container's index gives (None for a stream without one, such as raw AAC)."""
        if not self._indexed:
            return None
        stream = self._stream
        if stream.duration is not None and stream.time_base is not None:
            return round(stream.duration * stream.time_base * rate)
        if self._container.duration is not None:  # in microseconds
            return round(self._container.duration * rate / 1_000_000)
        return None

    def _undecodable(self, error: Exception, *, at_seconds: float | None = None) -> BrokenAudioError:
        reason = first_line(getattr(error, "strerror", None) or str(error))
        where = "" if at_seconds is None else f" after {at_seconds:.2f} s of audio"
        return BrokenAudioError(f"cannot decode '{self.path}' as audio{where}; FFmpeg says: {reason}", "undecodable")
