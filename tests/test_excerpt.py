"""Listening excerpts: the middle window of a file, mono Ogg Opus at 48 kHz and the asked bit rate, read back
with libsndfile (another decoder than the PyAV encoder that wrote it)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile
from audio_fixtures import tone, write

from sonic.cream.audio import ExcerptSettings, cut_excerpt
from sonic.cream.audio.excerpt import middle_offset
from sonic.errors import AudioError


def dominant_hz(waveform: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return float(np.fft.rfftfreq(len(waveform), 1 / sample_rate)[np.argmax(spectrum)])


def read_back(data: bytes) -> tuple[np.ndarray, int, soundfile._SoundFileInfo]:
    info = soundfile.info(io.BytesIO(data))
    waveform, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    return waveform, rate, info


def test_the_excerpt_is_the_middle_of_the_clip_as_mono_opus(tmp_path):
    # 30 s: 10 s at 330 Hz, 10 s at 660 Hz, 10 s at 990 Hz, in stereo at 22.05 kHz; the middle 10 s are 660 Hz
    rate = 22050
    left = np.concatenate([tone(hz, 10.0, rate) for hz in (330, 660, 990)])
    path = tmp_path / "clip.flac"
    soundfile.write(path, np.stack([left, 0.5 * left], axis=1), rate)
    data = cut_excerpt(path)
    waveform, sample_rate, info = read_back(data)
    assert info.format == "OGG" and info.subtype == "OPUS"
    assert sample_rate == 48000 and waveform.ndim == 1  # mono
    assert info.duration == pytest.approx(10.0, abs=0.03)
    assert dominant_hz(waveform[4800:-4800], sample_rate) == pytest.approx(660, abs=2)
    assert abs(waveform[:10]).max() < 0.05  # faded in: no click at the cut
    # 48 kbps over 10 s is 60 kB (constrained VBR and the Ogg pages around it)
    assert 0.7 * 60_000 < len(data) < 1.3 * 60_000


def test_a_clip_shorter_than_the_window_is_cut_whole(tmp_path):
    path = write(tmp_path / "short.mp3", tone(440, 3.0, 44100), 44100, "mp3")
    waveform, sample_rate, info = read_back(cut_excerpt(path, ExcerptSettings(duration_seconds=10.0, bit_rate=64_000)))
    assert info.duration == pytest.approx(3.0, abs=0.1)  # MP3's encoder delay adds a few ms
    assert dominant_hz(waveform, sample_rate) == pytest.approx(440, abs=2)


def test_the_window_sits_in_the_middle():
    assert middle_offset(30.0, 10.0) == 10.0
    assert middle_offset(31.0, 10.0) == 10.5
    assert middle_offset(8.0, 10.0) == 0.0
    assert middle_offset(None, 10.0) == 0.0


def test_a_file_that_is_not_audio_is_one_sentence_naming_it(tmp_path):
    path = tmp_path / "notes.mp3"
    path.write_text("not audio at all")
    with pytest.raises(AudioError, match="notes.mp3"):
        cut_excerpt(path)
