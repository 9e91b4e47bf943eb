"""A folder with every format users have, broken files and a two-hour file: `sonic find-corrupt` and `sonic convert`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile
from audio_fixtures import FORMATS, noise, tone, truncate, write, write_with_ffmpeg
from cli_runner import sonic

RATE = 44100
TWO_HOURS = 2 * 3600
LONG_RATE = 8000
BROKEN = {  # relative path -> problem
    "broken/empty.mp3": "empty",
    "broken/cut.wav": "truncated",
    "broken/text.mp3": "undecodable",
    "broken/silent.flac": "silent",
    "broken/short.ogg": "too_short",
}
UNCONVERTIBLE = {"broken/empty.mp3", "broken/cut.wav", "broken/text.mp3"}


def _stereo(seconds: float, rate: int, seed: int) -> np.ndarray:
    return np.stack([tone(110.0 * (seed + 2), seconds, rate, amplitude=0.3), noise(seconds, rate, seed=seed)], axis=1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("everything")
    for seed, kind in enumerate(sorted(FORMATS)):  # wav 16/24/32-bit and float, flac, vorbis, opus, mp3, aiff, m4a
        rate = 48000 if kind == "ogg_opus" else RATE
        write(root / "formats" / kind, _stereo(2.0, rate, seed), rate, kind)
    write_with_ffmpeg(root / "formats" / "raw_aac.aac", _stereo(2.0, RATE, 99), RATE, container="adts")
    (root / "broken").mkdir()
    (root / "broken/empty.mp3").write_bytes(b"")
    truncate(write(root / "broken/cut", _stereo(2.0, RATE, 7), RATE, "wav_pcm16"))
    (root / "broken/text.mp3").write_text("ID3 this is a text file named as an mp3\n")
    write(root / "broken/silent", np.zeros((2 * RATE, 2), np.float32), RATE, "flac")
    write(root / "broken/short", tone(440.0, 0.2, RATE), RATE, "ogg_vorbis")
    eight = np.stack([tone(100.0 * (c + 1), 2.0, 96000, amplitude=0.1) for c in range(8)], axis=1)
    write(root / "big/eight_channels_96k", eight, 96000, "wav_pcm24")
    minute = tone(250.0, 60.0, LONG_RATE, amplitude=0.3)  # whole periods: the minutes join without a click
    with soundfile.SoundFile(root / "big/two_hours.flac", "w", LONG_RATE, 1, "PCM_16", format="FLAC") as out:
        for _ in range(TWO_HOURS // 60):
            out.write(minute)
    return root




def _sources(folder) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*.*")}


@pytest.mark.slow
def test_find_corrupt_names_exactly_the_broken_and_silent_files(folder, tmp_path):
    result = sonic("find-corrupt", "--audio-dir", folder, "--out", tmp_path / "exclude.parquet", "--num-workers", 2)

    assert result.returncode == 0, result.stderr
    table = pd.read_parquet(tmp_path / "exclude.parquet")
    assert dict(zip(table["path"], table["problem"])) == BROKEN
    assert all(path.rsplit("/", 1)[-1] in reason for path, reason in zip(table["path"], table["reason"]))
    assert f"scanned {len(_sources(folder))} files: 5 with problems" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_convert_converts_all_the_others_and_a_second_run_does_no_work(folder, tmp_path):
    out = tmp_path / "out"
    convertible = _sources(folder) - UNCONVERTIBLE

    first = sonic("convert", "--audio-dir", folder, "--out-dir", out, "--sample-rate", LONG_RATE, "--format", "flac",
                  "--num-workers", 2)  # fmt: skip

    assert first.returncode == 0, first.stderr
    assert f"converted {len(convertible)}, skipped 0 already done, failed 3" in first.stdout
    written = {path.relative_to(out).as_posix() for path in out.rglob("*.flac")}
    assert written == {name.rsplit(".", 1)[0] + ".flac" for name in convertible}
    failures = pd.read_csv(out / "convert.failures.csv")
    assert set(failures["path"]) == UNCONVERTIBLE
    long_info = soundfile.info(out / "big/two_hours.flac")
    eight_info = soundfile.info(out / "big/eight_channels_96k.flac")
    assert (long_info.frames, long_info.samplerate) == (TWO_HOURS * LONG_RATE, LONG_RATE)
    assert (eight_info.channels, eight_info.samplerate, eight_info.frames) == (8, LONG_RATE, 2 * LONG_RATE)
    for name in written:
        info = soundfile.info(out / name)
        assert info.samplerate == LONG_RATE and info.frames > 0, name
    mtimes = {name: (out / name).stat().st_mtime_ns for name in written}

    second = sonic("convert", "--audio-dir", folder, "--out-dir", out, "--sample-rate", LONG_RATE, "--format", "flac",
                   "--num-workers", 2)  # fmt: skip

    assert second.returncode == 0, second.stderr
    assert f"converted 0, skipped {len(convertible)} already done, failed 3" in second.stdout
    assert {name: (out / name).stat().st_mtime_ns for name in written} == mtimes
    assert not list(out.rglob("*.tmp"))
