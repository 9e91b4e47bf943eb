"""Decoders behind :func:`sonic.cream.audio.open_audio`: libsndfile first, FFmpeg (PyAV) for the rest.

A decoder is a context manager with ``info`` (an :class:`AudioInfo`) and ``read(start, stop,
block_frames)``: float32 blocks (frames, channels), possibly non-contiguous views, of at most
``block_frames`` frames, from frame ``start`` up to frame ``stop`` (None: to wherever decoding
ends). Every failure is a :class:`BrokenAudioError` naming the file and the reason.

libsndfile (:class:`SndfileDecoder`) reads wav, aiff, flac, Ogg Vorbis and Opus, and mp3; FFmpeg
(:class:`sonic.cream.audio.ffmpeg.FFmpegDecoder`, imported only when a file needs it) reads AAC and ALAC
in MP4 containers (.m4a) and raw AAC streams (.aac), which libsndfile cannot.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile

from sonic.cream.audio import ogg
from sonic.cream.audio.decoded import AudioInfo, first_line
from sonic.errors import BrokenAudioError

#: Extensions (lower case) that libsndfile decodes.
SNDFILE_EXTENSIONS = (".aif", ".aiff", ".flac", ".mp3", ".oga", ".ogg", ".opus", ".wav")
#: Extensions (lower case) that FFmpeg decodes.
FFMPEG_EXTENSIONS = (".aac", ".m4a")


def open_decoder(path: Path):
    """The decoder for ``path``, chosen by its extension and codec (see the module docstring)."""
    if path.suffix.lower() in FFMPEG_EXTENSIONS:
        from sonic.cream.audio.ffmpeg import FFmpegDecoder

        return FFmpegDecoder(path)
    return SndfileDecoder(path)


def load_decoders(paths: Iterable[str | os.PathLike]) -> None:
    """Import here the decoders that ``paths`` need (chosen by extension), which are otherwise imported lazily.

    Worker processes forked afterwards start with them loaded, rather than each importing them anew.
    """
    suffixes = {Path(path).suffix.lower() for path in paths}
    if suffixes & set(FFMPEG_EXTENSIONS):
        with contextlib.suppress(ImportError):
            import av  # noqa: F401

            import sonic.cream.audio.ffmpeg  # noqa: F401


class SndfileDecoder:
    """Reads a file with libsndfile (see the module docstring for the interface)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with _native_stderr_silenced():  # libmpg123 prints "Note: Illegal Audio-MPEG-Header" for non-mp3 data
                self._sound = soundfile.SoundFile(path)
        except (soundfile.LibsndfileError, soundfile.SoundFileRuntimeError) as error:
            raise _undecodable(path, error) from None
        try:
            frames = _checked_frame_count(self._sound, path)
        except BrokenAudioError:
            self._sound.close()
            raise
        self.info = AudioInfo(self._sound.samplerate, self._sound.channels, frames, self._codec())

    def __enter__(self) -> SndfileDecoder:
        return self

    def __exit__(self, *exc_info) -> None:
        self._sound.close()

    def read(self, start: int, stop: int | None, block_frames: int) -> Iterator[np.ndarray]:
        """Blocks of the window; libmpg123's notes on stderr (a bit reservoir cut by a seek) are silenced."""
        position = start
        try:
            with _native_stderr_silenced():
                self._sound.seek(start)
            while stop is None or position < stop:
                wanted = block_frames if stop is None else min(block_frames, stop - position)
                with _native_stderr_silenced():
                    block = self._sound.read(wanted, dtype="float32", always_2d=True)
                if len(block) == 0:
                    return
                position += len(block)
                yield block
        except (soundfile.LibsndfileError, soundfile.SoundFileRuntimeError) as error:
            raise _undecodable(self.path, error) from None

    def _codec(self) -> str:
        return f"{self._sound.format} {self._sound.subtype}"


#: What libsndfile answers for some files that exist but are not audio at all (a text file named .mp3).
_MISLEADING_MESSAGE = "File does not exist or is not a regular file"


def _undecodable(path: Path, error: Exception) -> BrokenAudioError:
    if isinstance(error, soundfile.LibsndfileError):
        said = first_line(error.error_string)
        if said.startswith(_MISLEADING_MESSAGE) and path.is_file():
            said = "not a recognised audio format, or damaged"
        reason = f"; libsndfile says: {said}"
    else:
        reason = f": {first_line(str(error))}"
    return BrokenAudioError(f"cannot decode '{path}' as audio{reason}", "undecodable")


def _checked_frame_count(sound: soundfile.SoundFile, path: Path) -> int:
    """The file's frame count; a WAV whose header declares more data than it holds is truncated.

    (libsndfile silently clips a WAV's count to the data present, so the header is read here.) An Ogg
    file declares no length; one whose last page does not end its stream was cut off: truncated.
    """
    if sound.format == "OGG" and ogg.ends_its_stream(path) is False:
        raise BrokenAudioError(
            f"audio file '{path}' is truncated: its last Ogg page does not end the stream "
            f"(the file stops after {path.stat().st_size} bytes)",
            "truncated",
        )
    if sound.format in ("WAV", "WAVEX"):
        data_bytes = _wav_data_chunk_bytes(path)
        bytes_per_frame = _wav_bytes_per_frame(sound)
        if data_bytes is not None and bytes_per_frame and data_bytes // bytes_per_frame > sound.frames:
            raise BrokenAudioError(
                f"audio file '{path}' is truncated: its header declares {data_bytes // bytes_per_frame} "
                f"frames, but only {sound.frames} are present",
                "truncated",
            )
    return sound.frames


_WAV_SAMPLE_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
_UNKNOWN_CHUNK_SIZES = (0, 0xFFFFFFFF)  # written by streaming encoders that never went back to fill it in


def _wav_bytes_per_frame(sound: soundfile.SoundFile) -> int | None:
    sample_bytes = _WAV_SAMPLE_BYTES.get(sound.subtype)
    return sample_bytes * sound.channels if sample_bytes else None


def _wav_data_chunk_bytes(path: Path) -> int | None:
    """Size the RIFF header gives the ``data`` chunk, or None if absent or unknown."""
    with open(path, "rb") as stream:
        if stream.read(12)[:4] != b"RIFF":
            return None
        while header := stream.read(8):
            if len(header) < 8:
                return None
            chunk_id, size = header[:4], struct.unpack("<I", header[4:])[0]
            if chunk_id == b"data":
                return None if size in _UNKNOWN_CHUNK_SIZES else size
            stream.seek(size + (size & 1), os.SEEK_CUR)
    return None


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send what C libraries write to file descriptor 2 to /dev/null meanwhile (Python's own stderr is kept)."""
    try:
        descriptor = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (captured or closed): nothing to silence
        yield
        return
    sys.stderr.flush()
    saved = os.dup(descriptor)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), descriptor)
        yield
    finally:
        os.dup2(saved, descriptor)
        os.close(saved)
