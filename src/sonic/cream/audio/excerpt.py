"""Short excerpts of a track for listening: a window of it, mono, encoded as Ogg Opus in memory.

:func:`cut_excerpt` decodes only the window it needs (:meth:`sonic.cream.audio.AudioFile.blocks`),
from the middle of the file by default (:func:`middle_offset`), mixes it to mono, resamples it to
48 kHz (soxr, the rate Opus encodes at), fades its ends in and out over :data:`FADE_SECONDS` (no
click where the cut falls mid-note) and encodes it with libopus through PyAV at ``bit_rate`` (48
kbps by default: 10 s take about 60 kB). The bytes come back, for the caller to write atomically.
PyAV is imported only here.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sonic.errors import AudioError

#: Opus encodes at 48 kHz (it also takes 24, 16, 12 and 8 kHz; 48 keeps the whole band).
OPUS_SAMPLE_RATE = 48_000
#: The excerpts' file extension (RFC 7845's for Ogg Opus; browsers read it as audio/ogg).
EXCERPT_SUFFIX = ".opus"
FADE_SECONDS = 0.02


@dataclass(frozen=True)
class ExcerptSettings:
    """How excerpts are cut: ``duration_seconds`` of mono audio at ``bit_rate`` bits per second,
    libopus ``complexity`` 0 (fastest) to 10 (default of libopus; 5 encodes twice as fast, for a
    difference that 48 kbps does not let one hear on music)."""

    duration_seconds: float = 10.0
    bit_rate: int = 48_000
    complexity: int = 5

    def describe(self) -> str:
        return (f"{self.duration_seconds:g} s from the middle of each clip (from its start when it is shorter), "
                f"mono Ogg Opus at {self.bit_rate // 1000} kbps")


def middle_offset(length_seconds: float | None, duration_seconds: float) -> float:
    """Where a window of ``duration_seconds`` starts to sit in the middle of ``length_seconds`` (0 when the
    file is shorter than the window, or its length is unknown)."""
    if length_seconds is None or length_seconds <= duration_seconds:
        return 0.0
    return (length_seconds - duration_seconds) / 2


def cut_excerpt(path: str | os.PathLike, settings: ExcerptSettings = ExcerptSettings()) -> bytes:
    """The Ogg Opus bytes of ``settings.duration_seconds`` from the middle of the audio file ``path``.

    Raises :class:`~sonic.errors.AudioError` (one sentence naming the file) when it cannot be decoded
    or encoded.
    """
    from sonic.cream.audio.load import open_audio, resample

    path = Path(path)
    with open_audio(path) as audio:
        info = audio.info
        length = None if info.frames is None else info.frames / info.sample_rate
        offset = middle_offset(length, settings.duration_seconds)
        blocks = list(audio.blocks(offset_seconds=offset, duration_seconds=settings.duration_seconds, mono=True))
    waveform = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    if info.sample_rate != OPUS_SAMPLE_RATE:
        waveform = resample(waveform, info.sample_rate, OPUS_SAMPLE_RATE)
    return encode_opus(faded(waveform, OPUS_SAMPLE_RATE), bit_rate=settings.bit_rate,
                       complexity=settings.complexity, source=path)


def faded(waveform: np.ndarray, sample_rate: int, *, fade_seconds: float = FADE_SECONDS) -> np.ndarray:
    """``waveform`` (samples,) float32 with linear fades over its first and last ``fade_seconds``."""
    n = min(int(round(fade_seconds * sample_rate)), len(waveform) // 2)
    out = np.array(waveform, dtype=np.float32)
    if n:
        ramp = np.linspace(0.0, 1.0, n, endpoint=False, dtype=np.float32)
        out[:n] *= ramp
        out[len(out) - n :] *= ramp[::-1]
    return out


def encode_opus(waveform: np.ndarray, *, bit_rate: int, complexity: int = 5, source: Path | None = None) -> bytes:
    """Mono float32 ``waveform`` (samples,) at 48 kHz as Ogg Opus bytes (libopus, constrained VBR)."""
    try:
        import av
    except ImportError:
        raise AudioError("cutting audio excerpts needs PyAV (FFmpeg): pip install 'av>=13,<19'") from None
    if len(waveform) == 0:
        raise AudioError(f"no audio to cut an excerpt from in '{source}'")
    buffer = io.BytesIO()
    try:
        with av.open(buffer, mode="w", format="ogg") as container:
            stream = container.add_stream("libopus", rate=OPUS_SAMPLE_RATE, layout="mono",
                                          options={"vbr": "constrained", "compression_level": str(complexity)})
            stream.bit_rate = bit_rate
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(waveform, np.float32)[None, :], format="flt",
                                               layout="mono")  # fmt: skip
            frame.sample_rate = OPUS_SAMPLE_RATE
            for packet in (*stream.encode(frame), *stream.encode(None)):
                container.mux(packet)
    except (av.FFmpegError, ValueError) as error:
        raise AudioError(f"the excerpt of '{source}' could not be encoded as Opus ({error})") from None
    return buffer.getvalue()
