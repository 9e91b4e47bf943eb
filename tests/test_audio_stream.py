"""Streaming decode in constant memory, FFmpeg's formats (.m4a, .aac), decode_many (sonic.cream.audio.load)."""

from __future__ import annotations

import pickle
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
import soundfile
from audio_fixtures import noise, peak_frequency, tone, truncate, write, write_with_ffmpeg

from sonic.cream.audio.load import BLOCK_FRAMES, decode, decode_many, open_audio, track_id
from sonic.errors import AudioError, BrokenAudioError


def _long_flac(path, minutes: float, rate: int = 8000):
    """A mono FLAC of a 250 Hz tone, written a minute at a time (the tone repeats every 32 samples at 8 kHz)."""
    minute = tone(250.0, 60.0, rate, amplitude=0.3)
    with soundfile.SoundFile(path, "w", rate, 1, "PCM_16", format="FLAC") as out:
        for _ in range(round(minutes)):
            out.write(minute)
    return path


def test_blocks_mix_each_block_to_mono_and_cover_the_window(tmp_path):
    rate = 22050
    stereo = np.stack([tone(300.0, 5.0, rate), noise(5.0, rate)], axis=1)
    path = write(tmp_path / "clip", stereo, rate, "wav_float")

    with open_audio(path) as audio:
        info = audio.info
        blocks = list(audio.blocks(offset_seconds=1.0, duration_seconds=3.0, block_frames=10000))
        channel_blocks = list(audio.blocks(mono=False, block_frames=10000))

    assert (info.sample_rate, info.channels, info.frames) == (rate, 2, 5 * rate)
    assert [len(block) for block in blocks] == [10000] * 6 + [6150]
    np.testing.assert_allclose(np.concatenate(blocks), stereo[rate : 4 * rate].mean(axis=1), atol=1e-7)
    np.testing.assert_array_equal(np.concatenate(channel_blocks), stereo)


@pytest.mark.parametrize("kind", ["wav_pcm16", "ogg_vorbis", "mp3", "m4a_aac", "m4a_alac"])
def test_every_decoder_gives_blocks_of_the_size_asked_and_a_shorter_last_one(tmp_path, kind):
    rate = 44100
    stereo = np.stack([tone(300.0, 4.0, rate), noise(4.0, rate)], axis=1)
    path = write(tmp_path / "clip", stereo, rate, kind)

    with open_audio(path) as audio:
        sizes = [len(block) for block in audio.blocks(offset_seconds=0.5, duration_seconds=3.0, block_frames=5000)]

    assert sizes[:-1] == [5000] * (len(sizes) - 1) and 0 < sizes[-1] <= 5000
    assert sum(sizes) == 3 * rate


@pytest.mark.parametrize("codec", ["aac", "alac"])
def test_m4a_decodes_any_channel_count_and_rate(tmp_path, codec):
    rate = 32000
    channels = np.stack([tone(220.0 * (c + 1), 2.0, rate, amplitude=0.1) for c in range(6)], axis=1)
    path = write_with_ffmpeg(tmp_path / "surround.m4a", channels, rate, codec=codec)

    everything, native_rate = decode(path, mono=False)
    resampled, _ = decode(path, sample_rate=16000)

    assert native_rate == rate and everything.shape == (6, 2 * rate)
    assert resampled.shape == (32000,)
    for c in (0, 1, 2, 4, 5):  # channel 3 of 5.1 is the LFE, which AAC cuts above 120 Hz
        assert peak_frequency(everything[c], rate) == pytest.approx(220.0 * (c + 1), abs=1.0)
    if codec == "alac":  # lossless: 16-bit samples come back exactly
        np.testing.assert_allclose(everything, channels.T, atol=1 / 2**15)


@pytest.mark.parametrize("kind", ["m4a_aac", "mp3"])
def test_an_open_file_reads_the_same_window_again(tmp_path, kind):
    path = write(tmp_path / "clip", tone(330.0, 3.0, 44100) + noise(3.0, 44100, amplitude=0.05), 44100, kind)

    with open_audio(path) as audio:
        later = np.concatenate(list(audio.blocks(offset_seconds=1.5, duration_seconds=1.0)))
        whole = np.concatenate(list(audio.blocks()))
        again = np.concatenate(list(audio.blocks(offset_seconds=1.5, duration_seconds=1.0)))

    np.testing.assert_allclose(later, again, atol=1e-6)  # mpg123 after a seek back: within rounding
    np.testing.assert_allclose(later, whole[66150 : 66150 + 44100], atol=1e-4)


def test_raw_aac_stream_decodes_from_its_start(tmp_path):
    rate = 44100
    path = write_with_ffmpeg(tmp_path / "clip.aac", tone(440.0, 3.0, rate), rate, container="adts")

    with open_audio(path) as audio:
        assert audio.info.frames is None  # a raw stream does not declare its length
    waveform, _ = decode(path)
    window, _ = decode(path, offset_seconds=1.0, duration_seconds=1.0)

    assert 3 * rate <= len(waveform) <= 3 * rate + 2048  # the encoder's priming frames come first
    assert peak_frequency(waveform, rate) == pytest.approx(440.0, abs=1.0)
    np.testing.assert_array_equal(window, waveform[rate : 2 * rate])


UNREADABLE_M4A = {
    "text": (lambda d: _bytes(d / "text.m4a", b"this is not audio"), "undecodable", "cannot decode"),
    "empty": (lambda d: _bytes(d / "empty.m4a", b""), "empty", "empty"),
    "cut-index-last": (lambda d: truncate(write(d / "cut", noise(3.0, 22050), 22050, "m4a_aac")), "undecodable",
                       "FFmpeg says"),
}  # fmt: skip


def _bytes(path, content: bytes):
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(("make", "problem", "message"), UNREADABLE_M4A.values(), ids=UNREADABLE_M4A.keys())
def test_unreadable_m4a_is_one_audio_error_naming_the_file(tmp_path, make, problem, message):
    path = make(tmp_path)

    with pytest.raises(BrokenAudioError, match=message) as raised:
        decode(path)

    assert raised.value.problem == problem
    assert path.name in str(raised.value) and "\n" not in str(raised.value)


def test_m4a_cut_short_with_its_index_first_is_caught(tmp_path):
    path = write_with_ffmpeg(tmp_path / "cut.m4a", noise(4.0, 22050), 22050, movflags="faststart")
    truncate(path)

    with pytest.raises(BrokenAudioError, match="cut.m4a") as raised:
        decode(path)

    assert raised.value.problem in ("truncated", "undecodable")


def test_broken_audio_error_keeps_its_problem_across_processes():
    error = pickle.loads(pickle.dumps(BrokenAudioError("audio file 'x.wav' is truncated", "truncated")))

    assert isinstance(error, AudioError) and error.problem == "truncated" and str(error).endswith("truncated")


def test_a_window_of_a_two_hour_flac_takes_memory_for_the_window_only(tmp_path):
    path = _long_flac(tmp_path / "long.flac", minutes=120)
    full_mono_bytes = 120 * 60 * 8000 * 4

    tracemalloc.start()
    try:
        waveform, _ = decode(path, offset_seconds=3600.0, duration_seconds=30.0, sample_rate=16000)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert waveform.shape == (30 * 16000,)
    assert peak_grows_with_the_window_only(peak_bytes, window_bytes=30 * 8000 * 4 + 30 * 16000 * 4)
    assert peak_bytes < full_mono_bytes / 50


def test_a_window_of_a_long_m4a_is_sought_not_decoded_from_the_start(tmp_path):
    rate = 8000
    path = write(tmp_path / "long", np.tile(tone(250.0, 60.0, rate, amplitude=0.3), 3), rate, "m4a_aac")
    full, _ = decode(path)

    tracemalloc.start()
    try:
        window, _ = decode(path, offset_seconds=150.0, duration_seconds=10.0)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    np.testing.assert_allclose(window, full[150 * rate : 160 * rate], atol=1e-4)
    assert peak_grows_with_the_window_only(peak_bytes, window_bytes=10 * rate * 4)
    assert peak_bytes < full.nbytes / 4


def peak_grows_with_the_window_only(peak_bytes: int, *, window_bytes: int) -> bool:
    """The window's arrays plus a few blocks of 8 channels, nothing in proportion to the file."""
    return peak_bytes < 2 * window_bytes + 4 * BLOCK_FRAMES * 8 * 4


def test_decode_many_keeps_the_order_and_gives_reasons(tmp_path):
    rate = 16000
    paths = [write(tmp_path / f"t{i}", tone(200.0 * (i + 1), 1.0, rate), rate, "flac") for i in range(5)]
    paths.insert(2, _bytes(tmp_path / "bad.mp3", b"not audio"))

    results = decode_many(paths, sample_rate=8000, num_workers=2)

    assert [result.item for result in results] == [str(path) for path in paths]
    assert [result.ok for result in results] == [True, True, False, True, True, True]
    assert "bad.mp3" in results[2].reason
    good = [result.value for result in results if result.ok]
    for waveform, path in zip(good, [p for p in paths if p.suffix == ".flac"]):
        np.testing.assert_array_equal(waveform, decode(path, sample_rate=8000)[0])


def test_track_id_is_the_relative_path_without_extension(tmp_path):
    assert track_id(tmp_path / "album" / "disc 1" / "a.b.m4a", tmp_path) == "album/disc 1/a.b"
    assert track_id(tmp_path / "abc123.mp3", tmp_path) == "abc123"


def test_pyav_loads_only_for_a_file_that_needs_it(tmp_path):
    rate = 8000
    wav = write(tmp_path / "a", tone(440.0, 0.5, rate), rate, "wav_pcm16")
    m4a = write(tmp_path / "b", tone(440.0, 0.5, rate), rate, "m4a_aac")
    code = (
        "import sys\nfrom sonic.cream.audio.load import decode\n"
        f"decode({str(wav)!r})\nprint('av' in sys.modules)\n"
        f"decode({str(m4a)!r})\nprint('av' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]
