"""Ogg pages (sonic.cream.audio.ogg) and the FFmpeg Vorbis path (sonic.cream.audio.vorbis), against libsndfile."""

from __future__ import annotations

import mmap

import numpy as np
import pytest
from audio_fixtures import noise, shift_ogg_granule, tone, truncate, write

from sonic.cream.audio import ogg
from sonic.cream.audio.decoders import SndfileDecoder, open_decoder
from sonic.cream.audio.load import decode
from sonic.cream.audio.vorbis import VorbisDecoder
from sonic.errors import BrokenAudioError

pytest.importorskip("av")


def _vorbis(tmp_path, *, seconds=20.0, rate=44100, channels=2, name="clip"):
    left = tone(330.0, seconds, rate, amplitude=0.3) + noise(seconds, rate, amplitude=0.05, seed=1)
    if channels == 1:
        return write(tmp_path / name, left, rate, "ogg_vorbis")
    right = tone(523.0, seconds, rate, amplitude=0.3) + noise(seconds, rate, amplitude=0.05, seed=2)
    return write(tmp_path / name, np.stack([left, right][:channels], axis=1), rate, "ogg_vorbis")


def _read(decoder, start, stop):
    blocks = list(decoder.read(start, stop, 4096))
    return np.concatenate(blocks) if blocks else np.zeros((0, decoder.info.channels), np.float32)


def _libsndfile_whole(path):
    with SndfileDecoder(path) as decoder:
        return _read(decoder, 0, None)


def _mapped(path):
    with open(path, "rb") as stream:
        return mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)


def test_pages_carry_the_three_vorbis_headers_then_granule_positions_up_to_the_length(tmp_path):
    path = _vorbis(tmp_path, seconds=5.0)
    data = _mapped(path)

    pages = list(ogg.page_packets(data, 0))
    packets = [packet for _, packet_list in pages for packet in packet_list]
    granules = [page.granule for page, _ in pages if page.granule != ogg.NO_GRANULE]

    assert [packet[:7] for packet in packets[:3]] == [b"\x01vorbis", b"\x03vorbis", b"\x05vorbis"]
    assert pages[0][0].flags & ogg.FIRST and pages[-1][0].flags & ogg.LAST
    assert granules == sorted(granules)
    assert granules[-1] == len(_libsndfile_whole(path)) == 5 * 44100
    assert pages[-1][0].end == len(data)


def test_page_before_is_the_last_page_at_or_before_a_sample(tmp_path):
    path = _vorbis(tmp_path, seconds=30.0)
    data = _mapped(path)
    pages = [page for page, _ in ogg.page_packets(data, 0) if page.granule != ogg.NO_GRANULE]

    for sample in [0, 1, 5000, 123_457, 600_000, 30 * 44100 - 1, 10**9]:
        expected = [page for page in pages if 0 <= page.granule <= sample][-1]
        assert ogg.page_before(data, sample) == expected


@pytest.mark.parametrize(("channels", "rate"), [(2, 44100), (1, 22050)])
def test_windows_equal_libsndfiles_samples_and_stay_on_the_ffmpeg_path(tmp_path, channels, rate):
    path = _vorbis(tmp_path, seconds=20.0, rate=rate, channels=channels)
    whole = _libsndfile_whole(path)
    rng = np.random.default_rng(0)
    windows = [(0, None), (0, 1), (len(whole) - 1, None), (len(whole) - 5000, len(whole))]
    windows += [(int(start), int(start) + int(length)) for start, length in zip(
        rng.integers(0, len(whole) - 1, 12), rng.choice([1, 100, 4096, 44100, 10**9], 12))]  # fmt: skip

    with open_decoder(path) as decoder:
        assert isinstance(decoder, VorbisDecoder)
        for start, stop in windows:
            window = _read(decoder, start, None if stop is None else min(stop, len(whole)))

            expected = whole[start:stop]
            assert window.shape == expected.shape, (start, stop)
            np.testing.assert_allclose(window, expected, atol=1e-6)
            assert decoder.handed_over is None


def test_decode_of_a_window_matches_libsndfile_through_the_public_api(tmp_path):
    path = _vorbis(tmp_path, seconds=20.0)
    with SndfileDecoder(path) as decoder:
        expected = _read(decoder, 5 * 44100, 15 * 44100).mean(axis=1)

    waveform, rate = decode(path, offset_seconds=5.0, duration_seconds=10.0)

    assert rate == 44100
    np.testing.assert_allclose(waveform, expected, atol=1e-6)


def test_a_page_whose_granule_does_not_add_up_hands_over_to_libsndfile_where_checked_samples_end(tmp_path):
    path = _vorbis(tmp_path, seconds=20.0)
    whole = _libsndfile_whole(path)
    shift_ogg_granule(path, 40, 1000)

    with open_decoder(path) as decoder:
        window = _read(decoder, 0, None)
        handed_over_at, reason = decoder.handed_over

    assert 0 < handed_over_at < len(whole) and "ends at sample" in reason
    np.testing.assert_allclose(window[:handed_over_at], whole[:handed_over_at], atol=1e-6)
    with SndfileDecoder(path) as libsndfile:
        np.testing.assert_array_equal(window[handed_over_at:], _read(libsndfile, handed_over_at, None))


def test_files_the_path_does_not_apply_to_stay_with_libsndfile(tmp_path):
    stereo = _vorbis(tmp_path, seconds=2.0, channels=2, name="stereo")
    waveform = np.tile(noise(2.0, 44100)[:, None], (1, 6))
    surround = write(tmp_path / "surround", waveform, 44100, "ogg_vorbis")
    opus = write(tmp_path / "speech", noise(2.0, 48000), 48000, "ogg_opus")
    starts_early = shift_ogg_granule(_vorbis(tmp_path, seconds=2.0, name="early"), 2, -(10**6))

    assert isinstance(open_decoder(stereo), VorbisDecoder)
    for path in (surround, opus, starts_early):
        with open_decoder(path) as decoder:
            assert isinstance(decoder, SndfileDecoder), path.name


@pytest.mark.parametrize(("kind", "rate"), [("ogg_vorbis", 44100), ("ogg_opus", 48000)])
def test_an_ogg_file_cut_off_before_its_last_page_is_truncated(tmp_path, kind, rate):
    whole = write(tmp_path / "whole", noise(10.0, rate, amplitude=0.3), rate, kind)
    cut = write(tmp_path / "cut", noise(10.0, rate, amplitude=0.3), rate, kind)
    truncate(cut, 0.6)

    assert ogg.ends_its_stream(whole) is True and ogg.ends_its_stream(cut) is False
    assert len(decode(whole)[0]) == 10 * rate
    with pytest.raises(BrokenAudioError, match="truncated: its last Ogg page does not end the stream") as raised:
        decode(cut)
    assert raised.value.problem == "truncated" and "cut" in str(raised.value)
