"""Audio decoding through libsndfile (``soundfile``) and resampling with soxr.

:func:`decode` reads one file, or only a window of it, mixes it down to mono by the
mean of its channels and resamples it (soxr, high quality) to any rate. It takes any
number of channels at any sample rate. :func:`check_waveform` rejects what holds
nothing to embed (too short, silent). Every problem is an :class:`AudioError` that
names the file and the reason.
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import numpy as np
import soundfile
import soxr

from sonic.errors import AudioError

#: File extensions treated as audio (compared case-insensitively).
AUDIO_EXTENSIONS = (".flac", ".mp3", ".oga", ".ogg", ".opus", ".wav")

#: soxr quality for every resampling ("HQ": 20-bit precision, as librosa's default ``soxr_hq``).
RESAMPLE_QUALITY = "HQ"
#: Shortest audio worth embedding, in seconds.
MIN_SECONDS = 1.0
#: Audio whose peak lies below this level (dB relative to full scale) counts as silent.
SILENCE_DBFS = -60.0
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


def decode(
    path: str | os.PathLike,
    *,
    sample_rate: int | None = None,
    mono: bool = True,
    offset_seconds: float = 0.0,
    duration_seconds: float | None = None,
) -> tuple[np.ndarray, int]:
    """Read ``path`` (or the window ``offset_seconds`` .. ``+duration_seconds`` of it).

    Only the window is read from disk. Returns ``(waveform, sample_rate)``: float32 of
    shape (samples,) when ``mono`` (mean of the channels), else (channels, samples);
    ``sample_rate`` is the requested one (soxr, quality :data:`RESAMPLE_QUALITY`; the output
    holds ``ceil(samples * new_rate / old_rate)`` samples) or the file's own when None.
    Raises :class:`AudioError` if the file does not exist, is empty, cannot be decoded,
    is truncated, or holds no frames in the window.
    """
    path = Path(path)
    _check_window(path, offset_seconds, duration_seconds, sample_rate)
    if not path.is_file():
        raise AudioError(f"audio file '{path}' does not exist")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file '{path}' is empty (0 bytes)")
    try:
        with soundfile.SoundFile(path) as sound:
            frames, native_rate = _read_window(sound, path, offset_seconds, duration_seconds)
    except soundfile.LibsndfileError as error:
        reason = _first_line(error.error_string)
        raise AudioError(f"cannot decode '{path}' as audio; libsndfile says: {reason}") from None
    except soundfile.SoundFileRuntimeError as error:
        raise AudioError(f"cannot decode '{path}' as audio: {_first_line(str(error))}") from None
    waveform = mix_down(frames) if mono else np.ascontiguousarray(frames.T)
    if sample_rate is not None and sample_rate != native_rate:
        waveform = resample(waveform, native_rate, sample_rate)
    return waveform, sample_rate or native_rate


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


def mix_down(frames: np.ndarray) -> np.ndarray:
    """Mean of the channels of ``frames`` (n, channels) float32 -> (n,) float32.

    Adds whole columns into a new array rather than reducing along the short channel
    axis, which numpy does an order of magnitude more slowly; the result is the same.
    """
    channels = frames.shape[1]
    if channels == 1:
        return np.ascontiguousarray(frames[:, 0], dtype=np.float32)
    mono = np.add(frames[:, 0], frames[:, 1], dtype=np.float32)
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


def _check_window(path: Path, offset_seconds: float, duration_seconds: float | None, sample_rate: int | None) -> None:
    if not offset_seconds >= 0:
        raise AudioError(f"offset_seconds must be >= 0, got {offset_seconds} (for '{path}')")
    if duration_seconds is not None and not duration_seconds > 0:
        raise AudioError(f"duration_seconds must be > 0 or None, got {duration_seconds} (for '{path}')")
    if sample_rate is not None and not (isinstance(sample_rate, int) and sample_rate > 0):
        raise AudioError(f"sample_rate must be a positive integer or None, got {sample_rate!r} (for '{path}')")


def _read_window(sound, path: Path, offset_seconds: float, duration_seconds: float | None) -> tuple[np.ndarray, int]:
    """Frames (n, channels) float32 of the window, and the file's sample rate."""
    rate = sound.samplerate
    total = _checked_frame_count(sound, path)
    if total <= 0:
        raise AudioError(f"audio file '{path}' holds no audio frames")
    start = round(offset_seconds * rate)
    if start >= total:
        length = total / rate
        raise AudioError(f"offset {offset_seconds:g} s is beyond the end of '{path}' ({length:.2f} s long)")
    wanted = total - start if duration_seconds is None else min(round(duration_seconds * rate), total - start)
    if wanted <= 0:
        raise AudioError(f"no audio frames in the window of {duration_seconds:g} s at {offset_seconds:g} s of '{path}'")
    if start:
        sound.seek(start)
    frames = sound.read(wanted, dtype="float32", always_2d=True)
    if len(frames) < wanted - _length_slack(total, rate):
        raise AudioError(
            f"audio file '{path}' is truncated: its header declares {total} frames, "
            f"but decoding stopped at frame {start + len(frames)}"
        )
    if len(frames) == 0:
        raise AudioError(f"no audio frames in the requested window of '{path}'")
    return frames, rate


def _length_slack(total: int, rate: int) -> int:
    """Frames a decoder may fall short of the declared ``total`` without the file counting as truncated."""
    return max(_LENGTH_SLACK_FRAMES, min(round(_LENGTH_SLACK_FRACTION * total), rate))


def _checked_frame_count(sound, path: Path) -> int:
    """The file's frame count; a WAV whose header declares more data than it holds is truncated.

    (libsndfile silently clips a WAV's count to the data present, so the header is read here.)
    """
    if sound.format in ("WAV", "WAVEX"):
        data_bytes = _wav_data_chunk_bytes(path)
        bytes_per_frame = _wav_bytes_per_frame(sound)
        if data_bytes is not None and bytes_per_frame and data_bytes // bytes_per_frame > sound.frames:
            raise AudioError(
                f"audio file '{path}' is truncated: its header declares {data_bytes // bytes_per_frame} "
                f"frames, but only {sound.frames} are present"
            )
    return sound.frames


_WAV_SAMPLE_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
_UNKNOWN_CHUNK_SIZES = (0, 0xFFFFFFFF)  # written by streaming encoders that never went back to fill it in


def _wav_bytes_per_frame(sound) -> int | None:
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


def _first_line(message: str) -> str:
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"
