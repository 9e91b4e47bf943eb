"""Generated audio for the tests: tones, noise and files in every format soundfile writes, and m4a (PyAV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

#: name -> (extension, soundfile format, subtype), or (".m4a", "MP4", FFmpeg codec) written with PyAV;
#: Opus only takes 8, 12, 16, 24 or 48 kHz.
FORMATS = {
    "wav_pcm16": (".wav", "WAV", "PCM_16"),
    "wav_pcm24": (".wav", "WAV", "PCM_24"),
    "wav_pcm32": (".wav", "WAV", "PCM_32"),
    "wav_float": (".wav", "WAV", "FLOAT"),
    "flac": (".flac", "FLAC", "PCM_16"),
    "ogg_vorbis": (".ogg", "OGG", "VORBIS"),
    "ogg_opus": (".opus", "OGG", "OPUS"),
    "mp3": (".mp3", "MP3", "MPEG_LAYER_III"),
    "aiff": (".aiff", "AIFF", "PCM_16"),
    "m4a_aac": (".m4a", "MP4", "aac"),
    "m4a_alac": (".m4a", "MP4", "alac"),
}
LOSSY = {"ogg_vorbis", "ogg_opus", "mp3", "m4a_aac"}


def tone(frequency_hz: float, seconds: float, sample_rate: int, *, amplitude: float = 0.5) -> np.ndarray:
    """A sine (samples,) float32."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


def noise(seconds: float, sample_rate: int, *, amplitude: float = 0.1, seed: int = 0) -> np.ndarray:
    """White noise (samples,) float32."""
    rng = np.random.default_rng(seed)
    return (amplitude * rng.standard_normal(round(seconds * sample_rate))).astype(np.float32)


def write(path: Path, waveform: np.ndarray, sample_rate: int, kind: str = "wav_pcm16") -> Path:
    """Write ``waveform`` (samples,) or (samples, channels) as ``kind`` (a key of FORMATS) to ``path``.

    The extension of ``kind`` replaces the one of ``path``.
    """
    extension, file_format, subtype = FORMATS[kind]
    path = Path(path).with_suffix(extension)
    path.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "MP4":
        return write_with_ffmpeg(path, waveform, sample_rate, codec=subtype)
    soundfile.write(path, waveform, sample_rate, format=file_format, subtype=subtype)
    return path


def write_with_ffmpeg(
    path: Path, waveform: np.ndarray, sample_rate: int, *, codec: str = "aac", container: str = "mp4", **options: str
) -> Path:
    """Write ``waveform`` (samples,) or (samples, channels) with PyAV's encoder ``codec`` ("aac", "alac").

    ``container`` is FFmpeg's muxer ("mp4" for .m4a, "adts" for raw .aac); ``options`` go to the
    muxer (``movflags="faststart"`` puts the MP4 index before the audio). Written a block at a time.
    AAC is written without perceptual noise substitution, whose decoder draws random noise: the
    same window decoded twice would differ in its noisy bands.
    """
    import av

    frames = waveform.reshape(len(waveform), -1)
    layout = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}[frames.shape[1]]
    sample_format = "fltp" if codec == "aac" else "s16p"
    with av.open(str(path), "w", format=container, options=options) as output:
        codec_options = {"aac_pns": "0"} if codec == "aac" else {}
        stream = output.add_stream(codec, rate=sample_rate, layout=layout, options=codec_options)
        for start in range(0, len(frames), 8192):
            block = np.ascontiguousarray(frames[start : start + 8192].T)
            if sample_format == "s16p":
                block = np.clip(np.round(block * 32768), -32768, 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(block, format=sample_format, layout=layout)
            frame.sample_rate, frame.pts = sample_rate, start
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return path


def overstate_ogg_length(path: Path, extra_frames: int) -> Path:
    """Raise the granule position of ``path``'s last Ogg page by ``extra_frames``, as some encoders do.

    The stream's audio is unchanged, but its declared length (read from that granule) is longer.
    """
    data = bytearray(Path(path).read_bytes())
    last = data.rfind(b"OggS")
    granule = int.from_bytes(data[last + 6 : last + 14], "little") + extra_frames
    data[last + 6 : last + 14] = granule.to_bytes(8, "little")
    data[last + 22 : last + 26] = bytes(4)
    data[last + 22 : last + 26] = _ogg_crc(bytes(data[last:])).to_bytes(4, "little")
    Path(path).write_bytes(bytes(data))
    return Path(path)


def _ogg_crc(page: bytes) -> int:
    """Ogg's page checksum: CRC-32, polynomial 0x04C11DB7, no reflection, initial value 0."""
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def peak_frequency(waveform: np.ndarray, sample_rate: int) -> float:
    """Frequency (Hz) of the largest FFT magnitude of ``waveform`` (samples,)."""
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return float(np.argmax(spectrum) * sample_rate / len(waveform))


def truncate(path: Path, keep_fraction: float = 0.5) -> Path:
    """Cut ``path`` to the first ``keep_fraction`` of its bytes (its header still declares the whole)."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep_fraction)])
    return Path(path)


