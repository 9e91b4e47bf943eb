"""Audio decoding (libsndfile, or FFmpeg for .m4a/.aac) in constant memory, and resampling with soxr.

:func:`open_audio` opens one file and gives its :class:`AudioInfo` and its audio as a stream of
float32 blocks over any window, mixed to mono block by block if asked: a long file is never held
whole. :func:`decode` reads one window into one array (mono: the mean of the channels), resampled
(soxr, high quality) to any rate; :func:`decode_many` does that for many files in worker processes.
Any number of channels at any sample rate. :func:`check_waveform` rejects what holds nothing to
embed (too short, silent). Every problem is an :class:`AudioError` that names the file and the
reason (a :class:`BrokenAudioError`, with its ``problem``, for a file that is empty, not audio,
damaged or truncated).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import soxr

from sonic.cream.audio.decoded import AudioInfo
from sonic.cream.audio.decoders import FFMPEG_EXTENSIONS, SNDFILE_EXTENSIONS, load_decoders, open_decoder
from sonic.errors import AudioError, BrokenAudioError
from sonic.parallel import FileResult, map_files

#: File extensions treated as audio (compared case-insensitively).
AUDIO_EXTENSIONS = tuple(sorted(SNDFILE_EXTENSIONS + FFMPEG_EXTENSIONS))

#: soxr quality for every resampling ("HQ": 20-bit precision, as librosa's default ``soxr_hq``).
RESAMPLE_QUALITY = "HQ"
#: Shortest audio worth embedding, in seconds.
MIN_SECONDS = 1.0
#: Audio whose peak lies below this level (dB relative to full scale) counts as silent.
SILENCE_DBFS = -60.0
#: Frames per block read from a decoder (1.5 s at 44.1 kHz: 2 MiB for 8 channels of float32).
BLOCK_FRAMES = 65536
#: A declared length is not always exact: an MP3's may be an estimate from its bit rate, an Ogg stream's
#: comes from its last page's granule position, which some encoders overstate. Decoding that stops this
#: short of it (the larger of the two, but never more than a second) is not called truncation.
_LENGTH_SLACK_FRAMES = 2 * 1152
_LENGTH_SLACK_FRACTION = 0.01


def find_audio_files(root: str | os.PathLike) -> list[Path]:
    """Every audio file under ``root`` (recursively), sorted; hidden files and folders are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise AudioError(f"audio folder '{root}' does not exist or is not a folder")
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        found.extend(
            Path(folder, name)
            for name in files
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS
        )
    return sorted(found)


def track_id(path: str | os.PathLike, audio_dir: str | os.PathLike) -> str:
    """The track id of the file ``path`` under ``audio_dir``: its relative path without extension.

    Folders are separated by ``/``: ``audios/abc123.mp3`` under ``audios`` is ``abc123``;
    ``album/track.ogg`` is ``album/track``.
    """
    return os.path.splitext(Path(path).relative_to(audio_dir).as_posix())[0]


def open_audio(path: str | os.PathLike) -> AudioFile:
    """Open ``path`` for streaming (a context manager); raises :class:`AudioError` if it cannot be opened."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file '{path}' does not exist")
    if path.stat().st_size == 0:
        raise BrokenAudioError(f"audio file '{path}' is empty (0 bytes)", "empty")
    return AudioFile(path, open_decoder(path))


class AudioFile:
    """An open audio file: ``info`` (:class:`AudioInfo`) and :meth:`blocks` of its audio."""

    def __init__(self, path: Path, decoder) -> None:
        self.path = path
        self.info: AudioInfo = decoder.info
        self._decoder = decoder

    def __enter__(self) -> AudioFile:
        return self

    def __exit__(self, *exc_info) -> None:
        self._decoder.__exit__(*exc_info)

    def window(self, offset_seconds: float = 0.0, duration_seconds: float | None = None) -> tuple[int, int | None]:
        """First and end frame of the window (end None: to the end of a file of unknown length)."""
        rate, total = self.info.sample_rate, self.info.frames
        if total is not None and total <= 0:
            raise BrokenAudioError(f"audio file '{self.path}' holds no audio frames", "empty")
        start = round(offset_seconds * rate)
        if total is not None and start >= total:
            length = f"{total / rate:.2f} s long"
            raise AudioError(f"offset {offset_seconds:g} s is beyond the end of '{self.path}' ({length})")
        stop = total if duration_seconds is None else start + round(duration_seconds * rate)
        if total is not None:
            stop = min(stop, total)
        if stop is not None and stop <= start:
            raise AudioError(
                f"no audio frames in the window of {duration_seconds:g} s at {offset_seconds:g} s of '{self.path}'"
            )
        return start, stop

    def blocks(
        self,
        *,
        offset_seconds: float = 0.0,
        duration_seconds: float | None = None,
        mono: bool = True,
        block_frames: int = BLOCK_FRAMES,
    ) -> Iterator[np.ndarray]:
        """The window's audio at the file's rate, block by block: float32 (n,) if ``mono``, else (n, channels).

        Raises a :class:`BrokenAudioError` if decoding fails, or ends well before the declared
        length (truncated), or gives no frames.
        """
        for block in self._frames(offset_seconds, duration_seconds, block_frames):
            yield mix_down(block) if mono else np.ascontiguousarray(block)

    def _frames(self, offset_seconds: float, duration_seconds: float | None, block_frames: int) -> Iterator[np.ndarray]:
        """The decoder's blocks (n, channels) of the window, checked as :meth:`blocks` says."""
        start, stop = self.window(offset_seconds, duration_seconds)
        position = start
        for block in self._decoder.read(start, stop, block_frames):
            position += len(block)
            yield block
        total = self.info.frames
        if total is not None and position < stop - length_slack(total, self.info.sample_rate):
            raise BrokenAudioError(
                f"audio file '{self.path}' is truncated: its header declares {total} frames, "
                f"but decoding stopped at frame {position}",
                "truncated",
            )
        if position == start:
            where = "the file" if start == 0 else f"the window at {offset_seconds:g} s"
            raise BrokenAudioError(f"no audio frames in {where} of '{self.path}'", "empty")


def decode(
    path: str | os.PathLike,
    *,
    sample_rate: int | None = None,
    mono: bool = True,
    offset_seconds: float = 0.0,
    duration_seconds: float | None = None,
) -> tuple[np.ndarray, int]:
    """Read ``path`` (or the window ``offset_seconds`` .. ``+duration_seconds`` of it).

    Only the window is decoded, block by block, into one array. Returns ``(waveform, sample_rate)``:
    float32 of shape (samples,) when ``mono`` (mean of the channels), else (channels, samples);
    ``sample_rate`` is the requested one (soxr, quality :data:`RESAMPLE_QUALITY`; the output
    holds ``ceil(samples * new_rate / old_rate)`` samples) or the file's own when None.
    Raises :class:`AudioError` if the file does not exist, is empty, cannot be decoded,
    is truncated, or holds no frames in the window.
    """
    path = Path(path)
    _check_window(path, offset_seconds, duration_seconds, sample_rate)
    with open_audio(path) as audio:
        native_rate = audio.info.sample_rate
        start, stop = audio.window(offset_seconds, duration_seconds)
        frames = audio._frames(offset_seconds, duration_seconds, BLOCK_FRAMES)
        waveform = _gather(frames, None if stop is None else stop - start, mono=mono, channels=audio.info.channels)
    if sample_rate is not None and sample_rate != native_rate:
        waveform = resample(waveform, native_rate, sample_rate)
    return waveform, sample_rate or native_rate


def decode_many(
    paths: Sequence[str | os.PathLike],
    *,
    sample_rate: int | None = None,
    offset_seconds: float = 0.0,
    duration_seconds: float | None = None,
    num_workers: int | None = None,
    progress: bool = False,
) -> list[FileResult]:
    """:func:`decode` (mono) of each of ``paths`` in ``num_workers`` processes (None: one per CPU).

    Returns a :class:`sonic.parallel.FileResult` per path, in the order of ``paths``: ``value`` is
    the waveform (samples,) float32, or ``reason`` says why the file could not be decoded.
    """
    function = functools.partial(
        _decoded_waveform, sample_rate=sample_rate, offset_seconds=offset_seconds, duration_seconds=duration_seconds
    )
    items = [str(path) for path in paths]
    load_decoders(items)
    results = map_files(function, items, num_workers=num_workers, progress=progress, description="decoding")
    by_path = {result.item: result for result in results}
    return [by_path[item] for item in items]


def _decoded_waveform(path: str, **window) -> np.ndarray:
    return decode(path, **window)[0]


def _gather(frames: Iterator[np.ndarray], length: int | None, *, mono: bool, channels: int) -> np.ndarray:
    """Blocks of frames (n, channels) in one array: (samples,) mixed down if ``mono``, else (channels, samples).

    ``length`` (at most), if known: each block is then mixed or copied straight into place.
    """
    if length is None:
        if mono:
            return np.concatenate([mix_down(block) for block in frames])
        return np.ascontiguousarray(np.concatenate(list(frames)).T)
    out = np.empty(length if mono else (channels, length), dtype=np.float32)
    filled = 0
    for block in frames:
        if mono:
            mix_down(block, out=out[filled : filled + len(block)])
        else:
            out[:, filled : filled + len(block)] = block.T
        filled += len(block)
    return out if filled == length else np.ascontiguousarray(out[..., :filled])


def resample(waveform: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample float32 ``waveform`` (samples,) or (channels, samples) with soxr.

    The result holds ``ceil(samples * to_rate / from_rate)`` samples (zero-padded by the
    odd sample soxr may leave out), as librosa's ``resample`` does.
    """
    samples = waveform.shape[-1]
    target = math.ceil(samples * to_rate / from_rate)
    out = soxr.resample(waveform.T, from_rate, to_rate, quality=RESAMPLE_QUALITY).T
    if out.shape[-1] < target:
        out = np.pad(out, [(0, 0)] * (out.ndim - 1) + [(0, target - out.shape[-1])])
    return np.ascontiguousarray(out[..., :target], dtype=np.float32)


def mix_down(frames: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Mean of the channels of ``frames`` (n, channels) float32 -> (n,) float32, in ``out`` if given.

    Adds whole columns rather than reducing along the short channel axis, which numpy does an
    order of magnitude more slowly; the result is the same.
    """
    channels = frames.shape[1]
    if channels == 1:
        if out is None:
            return np.ascontiguousarray(frames[:, 0], dtype=np.float32)
        out[...] = frames[:, 0]
        return out
    mono = np.add(frames[:, 0], frames[:, 1], out=out, dtype=np.float32)
    for channel in range(2, channels):
        mono += frames[:, channel]
    mono /= np.float32(channels)
    return mono


def check_waveform(
    waveform: np.ndarray,
    sample_rate: int,
    *,
    min_seconds: float = MIN_SECONDS,
    silence_dbfs: float = SILENCE_DBFS,
) -> str | None:
    """Why ``waveform`` (samples,) holds nothing to embed, or None if it is usable.

    Too short: fewer than ``min_seconds`` of audio. Silent: peak amplitude below
    ``silence_dbfs`` dB relative to full scale (1.0).
    """
    seconds = waveform.shape[-1] / sample_rate
    if seconds < min_seconds:
        return f"too short: {seconds:.2f} s of audio, need at least {min_seconds:g} s"
    peak = float(np.max(np.abs(waveform))) if waveform.size else 0.0
    peak_dbfs = 20.0 * math.log10(peak) if peak > 0 else -math.inf
    if peak_dbfs < silence_dbfs:
        return f"silent: peak level {peak_dbfs:.1f} dBFS is below {silence_dbfs:g} dBFS"
    return None


def length_slack(total: int, rate: int) -> int:
    """Frames a decoder may fall short of the declared ``total`` without the file counting as truncated."""
    return max(_LENGTH_SLACK_FRAMES, min(round(_LENGTH_SLACK_FRACTION * total), rate))


def _check_window(path: Path, offset_seconds: float, duration_seconds: float | None, sample_rate: int | None) -> None:
    if not offset_seconds >= 0:
        raise AudioError(f"offset_seconds must be >= 0, got {offset_seconds} (for '{path}')")
    if duration_seconds is not None and not duration_seconds > 0:
        raise AudioError(f"duration_seconds must be > 0 or None, got {duration_seconds} (for '{path}')")
    if sample_rate is not None and not (isinstance(sample_rate, int) and sample_rate > 0):
        raise AudioError(f"sample_rate must be a positive integer or None, got {sample_rate!r} (for '{path}')")
