"""Decoding, windowing, mix-down and resampling of every supported format (sonic.cream.audio.load)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from audio_fixtures import FORMATS, LOSSY, noise, overstate_ogg_length, peak_frequency, tone, truncate, write

from sonic.cream.audio.load import (
    AUDIO_EXTENSIONS,
    MIN_SECONDS,
    SILENCE_DBFS,
    check_waveform,
    decode,
    find_audio_files,
)
from sonic.errors import AudioError, SonicError


def _rate(kind: str) -> int:
    return 48000 if kind == "ogg_opus" else 44100


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_decode_each_format_keeps_length_and_pitch(tmp_path, kind):
    rate = _rate(kind)
    original = tone(440.0, 2.0, rate, amplitude=0.4)
    path = write(tmp_path / "clip", original, rate, kind)

    waveform, sample_rate = decode(path)

    assert sample_rate == rate
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert abs(len(waveform) - len(original)) <= 0.01 * len(original)
    assert peak_frequency(waveform, rate) == pytest.approx(440.0, abs=1.0)
    if kind not in LOSSY:
        finer = {"wav_pcm24": 1 / 2**23, "wav_pcm32": 1 / 2**23, "wav_float": 0.0}  # others: 16-bit
        np.testing.assert_allclose(waveform, original, atol=finer.get(kind, 1 / 2**15))


@pytest.mark.parametrize("kind", sorted(FORMATS))
@pytest.mark.parametrize(("offset", "duration"), [(0.5, 1.0), (1.37, 0.8), (2.5, None)])
def test_window_decode_equals_slice_of_full_decode(tmp_path, kind, offset, duration):
    rate = _rate(kind)
    path = write(tmp_path / "clip", tone(330.0, 3.0, rate) + noise(3.0, rate, amplitude=0.05), rate, kind)
    full, _ = decode(path)

    window, sample_rate = decode(path, offset_seconds=offset, duration_seconds=duration)

    start = round(offset * sample_rate)
    expected = full[start:] if duration is None else full[start : start + round(duration * sample_rate)]
    assert len(window) == len(expected)
    np.testing.assert_allclose(window, expected, atol=1e-4 if kind in LOSSY else 0.0)


@pytest.mark.parametrize(("from_rate", "to_rate"), [(44100, 22050), (48000, 16000), (22050, 24000), (8000, 44100)])
def test_resampling_keeps_pitch_and_sets_length(tmp_path, from_rate, to_rate):
    frequency = 1000.0
    path = write(tmp_path / "clip", tone(frequency, 1.5, from_rate), from_rate, "wav_float")

    waveform, sample_rate = decode(path, sample_rate=to_rate)

    assert sample_rate == to_rate and waveform.dtype == np.float32
    assert len(waveform) == math.ceil(round(1.5 * from_rate) * to_rate / from_rate)
    assert peak_frequency(waveform, to_rate) == pytest.approx(frequency, abs=2 * to_rate / len(waveform))
    assert np.max(np.abs(waveform)) == pytest.approx(0.5, abs=0.01)


def test_mono_mix_down_is_the_channel_mean(tmp_path):
    rate = 22050
    left, right = tone(300.0, 1.0, rate), noise(1.0, rate)
    path = write(tmp_path / "stereo", np.stack([left, right], axis=1), rate, "wav_float")

    mono, _ = decode(path)
    both, _ = decode(path, mono=False)

    np.testing.assert_allclose(mono, (left + right) / 2, atol=1e-7)
    assert both.shape == (2, rate)
    np.testing.assert_array_equal(both[0], left)
    np.testing.assert_array_equal(both[1], right)


def test_eight_channels_at_96_khz(tmp_path):
    rate = 96000
    channels = np.stack([tone(200.0 * (c + 1), 1.0, rate, amplitude=0.1) for c in range(8)], axis=1)
    path = write(tmp_path / "surround", channels, rate, "wav_pcm24")

    everything, native_rate = decode(path, mono=False)
    mono, _ = decode(path)
    resampled, sample_rate = decode(path, sample_rate=22050)

    assert native_rate == rate and everything.shape == (8, rate)
    np.testing.assert_allclose(mono, channels.mean(axis=1), atol=1e-6)
    assert sample_rate == 22050 and resampled.shape == (22050,)


def test_find_audio_files_is_recursive_sorted_and_skips_hidden_and_other_files(tmp_path):
    rate = 8000
    for name, kind in [("b/track", "ogg_vorbis"), ("a", "wav_pcm16"), ("b/deeper/c", "flac"), ("Z", "wav_pcm16")]:
        write(tmp_path / name, tone(440.0, 0.1, rate), rate, kind)
    (tmp_path / "Z.wav").rename(tmp_path / "Z.WAV")
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / ".hidden.wav").write_bytes(b"")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.mp3").write_bytes(b"")

    found = [path.relative_to(tmp_path).as_posix() for path in find_audio_files(tmp_path)]

    assert found == ["Z.WAV", "a.wav", "b/deeper/c.flac", "b/track.ogg"]
    assert set(AUDIO_EXTENSIONS) == {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".m4a", ".aac"}


def test_find_audio_files_in_a_missing_folder(tmp_path):
    with pytest.raises(AudioError, match="does not exist"):
        find_audio_files(tmp_path / "missing")


def _file_with(tmp_path, name, content: bytes):
    (tmp_path / name).write_bytes(content)
    return tmp_path / name


UNUSABLE = {
    "missing": (lambda d: d / "missing.wav", "does not exist"),
    "empty": (lambda d: _file_with(d, "empty.wav", b""), "empty"),
    "not-audio": (lambda d: _file_with(d, "text.mp3", b"this is not audio"), "cannot decode"),
    "truncated-wav": (lambda d: truncate(write(d / "cut", noise(2.0, 22050), 22050, "wav_pcm16")), "truncated"),
    "truncated-flac": (lambda d: truncate(write(d / "cut", noise(3.0, 44100), 44100, "flac")), "cannot decode"),
    "truncated-mp3": (lambda d: truncate(write(d / "cut", noise(3.0, 44100), 44100, "mp3")), "truncated"),
}


@pytest.mark.parametrize(("make", "message"), UNUSABLE.values(), ids=UNUSABLE.keys())
def test_unusable_files_raise_audio_error_naming_the_file(tmp_path, make, message):
    path = make(tmp_path)

    with pytest.raises(AudioError, match=message) as raised:
        decode(path)

    assert path.name in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(("kind", "rate"), [("ogg_vorbis", 44100), ("ogg_opus", 48000)])
def test_ogg_whose_last_granule_overstates_its_length_decodes_whole(tmp_path, kind, rate):
    # Real releases do this (an encoder's negative start granule, a lost page): decoders stop a little short.
    path = write(tmp_path / "clip", noise(3.0, rate), rate, kind)
    expected, _ = decode(path)
    overstate_ogg_length(path, 300)

    waveform, _ = decode(path)

    assert len(expected) <= len(waveform) < len(expected) + 300
    np.testing.assert_array_equal(waveform[: len(expected)], expected)


def test_ogg_missing_seconds_of_its_declared_length_is_truncated(tmp_path):
    path = overstate_ogg_length(write(tmp_path / "clip", noise(3.0, 44100), 44100, "ogg_vorbis"), 2 * 44100)

    with pytest.raises(AudioError, match="truncated"):
        decode(path)


def test_window_beyond_the_end_and_bad_window_options(tmp_path):
    path = write(tmp_path / "clip", tone(440.0, 1.0, 8000), 8000)

    with pytest.raises(AudioError, match="beyond the end"):
        decode(path, offset_seconds=1.5)
    with pytest.raises(AudioError, match="offset_seconds must be >= 0"):
        decode(path, offset_seconds=-1.0)
    with pytest.raises(AudioError, match="duration_seconds must be > 0"):
        decode(path, duration_seconds=0.0)
    with pytest.raises(SonicError, match="sample_rate"):
        decode(path, sample_rate=0)


def test_window_past_the_end_is_clipped_to_the_file(tmp_path):
    path = write(tmp_path / "clip", tone(440.0, 1.0, 8000), 8000)

    waveform, _ = decode(path, offset_seconds=0.75, duration_seconds=10.0)

    assert len(waveform) == 2000


def test_check_waveform_names_short_and_silent_audio():
    rate = 22050

    assert check_waveform(tone(440.0, 2.0, rate), rate) is None
    assert "too short" in check_waveform(tone(440.0, 0.2, rate), rate)
    assert "silent" in check_waveform(np.zeros(rate * 2, np.float32), rate)
    quiet = tone(440.0, 2.0, rate, amplitude=10 ** ((SILENCE_DBFS - 1) / 20))
    assert "silent" in check_waveform(quiet, rate)
    assert check_waveform(tone(440.0, 0.5, rate), rate, min_seconds=0.25) is None
    assert MIN_SECONDS == 1.0


def test_text_named_mp3_is_one_clear_sentence_without_decoder_noise(tmp_path):
    path = _file_with(tmp_path, "notes.mp3", b"this is a text file, not an mp3\n" * 20)
    script = f"from sonic.cream.audio.load import decode\ndecode({str(path)!r})"

    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)

    assert "cannot decode" in run.stderr and "not a recognised audio format, or damaged" in run.stderr
    assert "Note:" not in run.stderr  # libmpg123's own messages stay out of the user's terminal
    assert "does not exist" not in run.stderr  # libsndfile's misleading answer for an existing file


def test_mp3_windows_decode_without_libmpg123_notes_on_stderr(tmp_path):
    # libmpg123 prints "part2_3_length ... too large" lines for such 22.05 kHz MPEG-2 files (the demo's),
    # from the start and after a seek, while decoding them whole.
    rate = 22050
    waveform = tone(220.0, 20.0, rate, amplitude=0.3) + tone(1760.0, 20.0, rate, amplitude=0.2) + noise(20.0, rate)
    path = write(tmp_path / "clip", waveform, rate, "mp3")
    offsets = ", ".join(f"{offset:.2f}" for offset in np.linspace(0.0, 15.0, 40))
    script = (
        "from sonic.cream.audio.load import decode\n"
        f"for offset in [{offsets}]:\n"
        f"    decode({str(path)!r}, offset_seconds=offset, duration_seconds=3.0)"
    )

    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)

    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
