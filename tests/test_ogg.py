"""Ogg files: decoded by libsndfile, and a file cut off before its last page is truncated."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from audio_fixtures import noise, truncate, write

from sonic.cream.audio import ogg
from sonic.cream.audio.decoders import SndfileDecoder, open_decoder
from sonic.cream.audio.load import decode
from sonic.errors import BrokenAudioError


def test_ogg_vorbis_and_opus_are_read_by_libsndfile_and_a_window_equals_the_whole_files_samples(tmp_path):
    vorbis = write(tmp_path / "v", noise(6.0, 44100, amplitude=0.3, seed=1), 44100, "ogg_vorbis")
    opus = write(tmp_path / "o", noise(3.0, 48000, amplitude=0.3, seed=2), 48000, "ogg_opus")

    for path in (vorbis, opus):
        with open_decoder(path) as decoder:
            assert isinstance(decoder, SndfileDecoder), path.name
    whole = soundfile.read(vorbis, dtype="float32", always_2d=True)[0].mean(axis=1)
    window, rate = decode(vorbis, offset_seconds=2.0, duration_seconds=1.5)
    assert rate == 44100 and len(window) == int(1.5 * 44100)
    np.testing.assert_allclose(window, whole[2 * 44100 : 2 * 44100 + len(window)], atol=1e-6)


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


def test_a_tail_without_a_whole_page_tells_nothing(tmp_path):
    junk = tmp_path / "junk.ogg"
    junk.write_bytes(b"no page here OggS" + bytes(5))

    assert ogg.ends_its_stream(junk) is None
