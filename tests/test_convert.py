"""`sonic convert`: folder structure, resampling, channels, resuming, atomic writes, failures (sonic.cream.audio.convert)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from audio_fixtures import noise, tone, truncate, write
from cli_runner import sonic

from sonic.cream.audio.convert import FAILURES_FILE, MANIFEST_FILE, convert_file, convert_folder
from sonic.cream.audio.load import decode
from sonic.errors import SonicError


def _stereo(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    return np.stack([tone(330.0, seconds, rate, amplitude=0.3), noise(seconds, rate, seed=seed)], axis=1)


@pytest.fixture
def music(tmp_path):
    audio = tmp_path / "audio"
    write(audio / "top", _stereo(1.5, 44100), 44100, "mp3")
    write(audio / "album/a", _stereo(1.2, 48000, seed=1), 48000, "ogg_opus")
    write(audio / "album/disc 1/b", _stereo(1.0, 22050, seed=2), 22050, "m4a_aac")
    write(audio / "c", tone(440.0, 1.0, 16000), 16000, "wav_pcm16")
    (audio / "broken.mp3").write_bytes(b"not audio")
    return audio


def _mtimes(folder):
    return {path.relative_to(folder).as_posix(): path.stat().st_mtime_ns for path in folder.rglob("*.*")}


@pytest.mark.parametrize(("file_format", "subtype"), [("wav", "FLOAT"), ("flac", "PCM_24")])
def test_convert_keeps_the_structure_and_equals_decode(music, tmp_path, file_format, subtype):
    out = tmp_path / "out"

    result = convert_folder(music, out, sample_rate=16000, file_format=file_format, num_workers=2, progress=False)

    assert (result.n_converted, result.n_skipped, result.n_failed) == (4, 0, 1)
    assert result.summary() == "converted 4, skipped 0 already done, failed 1"
    written = sorted(path.relative_to(out).as_posix() for path in out.rglob(f"*.{file_format}"))
    assert written == sorted(f"{name}.{file_format}" for name in ("top", "album/a", "album/disc 1/b", "c"))
    tolerance = 0.0 if file_format == "wav" else 2**-23
    for source in [p for p in music.rglob("*.*") if p.name != "broken.mp3"]:
        target = out / source.relative_to(music).with_suffix(f".{file_format}")
        info = soundfile.info(target)
        assert (info.samplerate, info.subtype) == (16000, subtype)
        converted, _ = soundfile.read(target, dtype="float32", always_2d=True)
        expected, _ = decode(source, sample_rate=16000, mono=False)
        np.testing.assert_allclose(converted.T, expected, atol=tolerance)
    assert result.failures == (("broken.mp3", result.failures[0][1]),) and "broken.mp3" in result.failures[0][1]
    with open(out / FAILURES_FILE) as stream:
        assert stream.read().splitlines()[1].startswith("broken.mp3,")
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["sample_rate"] == 16000 and manifest["format"] == file_format and manifest["n_converted"] == 4


def test_mono_mixes_the_channels(music, tmp_path):
    convert_folder(music, tmp_path / "out", sample_rate=22050, mono=True, num_workers=0, progress=False)

    converted, rate = soundfile.read(tmp_path / "out" / "top.wav", dtype="float32")
    expected, _ = decode(music / "top.mp3", sample_rate=22050)
    assert rate == 22050 and converted.ndim == 1
    np.testing.assert_array_equal(converted, expected)


def test_a_second_run_does_no_work_and_rewrites_nothing(music, tmp_path):
    out = tmp_path / "out"
    convert_folder(music, out, sample_rate=16000, num_workers=2, progress=False)
    before = _mtimes(out)

    again = convert_folder(music, out, sample_rate=16000, num_workers=2, progress=False)

    assert (again.n_converted, again.n_skipped, again.n_failed) == (0, 4, 1)
    after = _mtimes(out)
    for name, mtime in before.items():
        if name.endswith(".wav"):
            assert after[name] == mtime, name


def test_a_changed_source_or_a_bad_target_is_converted_again(music, tmp_path):
    out = tmp_path / "out"
    convert_folder(music, out, sample_rate=16000, num_workers=0, progress=False)
    write(music / "c", tone(440.0, 3.0, 16000), 16000, "wav_pcm16")  # longer, and newer than its target
    (out / "top.wav").write_bytes(b"garbage")
    with soundfile.SoundFile(out / "album/a.wav", "r+") as target:  # right rate and channels, wrong length
        target.truncate(100)

    again = convert_folder(music, out, sample_rate=16000, num_workers=0, progress=False)

    assert (again.n_converted, again.n_skipped) == (3, 1)
    assert soundfile.info(out / "c.wav").frames == 3 * 16000
    assert soundfile.info(out / "top.wav").samplerate == 16000
    changed_rate = convert_folder(music, out, sample_rate=8000, num_workers=0, progress=False)
    assert changed_rate.n_converted == 4


def test_a_failure_mid_file_leaves_no_target_and_no_temp_file(tmp_path):
    source = truncate(write(tmp_path / "cut", noise(3.0, 44100), 44100, "mp3"))
    target = tmp_path / "out" / "cut.wav"

    with pytest.raises(SonicError, match="truncated"):
        convert_file(source, target, sample_rate=16000)

    assert not target.exists() and list((tmp_path / "out").iterdir()) == []


def test_stale_temp_files_of_an_interrupted_run_are_removed(music, tmp_path):
    out = tmp_path / "out"
    convert_folder(music, out, sample_rate=16000, num_workers=0, progress=False)
    (out / "album").mkdir(exist_ok=True)
    (out / "album" / ".a.wav.tmp").write_bytes(b"half a file")  # an older sonic's fixed temporary name
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / "album" / f".b.wav.{int(dead.stdout)}-0123abcd.tmp").write_bytes(b"half a file")  # a killed writer's
    (out / ".notes.txt.tmp").write_bytes(b"not ours")

    convert_folder(music, out, sample_rate=16000, num_workers=0, progress=False)

    assert not (out / "album" / ".a.wav.tmp").exists() and (out / ".notes.txt.tmp").exists()
    assert [p.name for p in out.rglob(".*.tmp")] == [".notes.txt.tmp"]


def test_a_folder_sonic_did_not_write_is_refused_before_anything_is_converted(music, tmp_path):
    out = tmp_path / "out"
    (out / "album").mkdir(parents=True)
    (out / "album" / "mine.wav").write_bytes(b"a user's file")

    with pytest.raises(SonicError, match="holds 'album', which sonic did not write"):
        convert_folder(music, out, sample_rate=16000, num_workers=0, progress=False)

    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["album", "album/mine.wav"]


def test_two_sources_with_one_target_convert_the_first(tmp_path):
    audio = tmp_path / "audio"
    write(audio / "a", tone(440.0, 1.0, 8000), 8000, "flac")
    write(audio / "a", tone(880.0, 1.0, 8000), 8000, "mp3")

    result = convert_folder(audio, tmp_path / "out", sample_rate=8000, num_workers=0, progress=False)

    assert result.n_converted == 1
    assert result.failures == (("a.mp3", f"'a.flac' is converted to the same file '{tmp_path / 'out' / 'a.wav'}'"),)


def test_an_out_folder_inside_the_audio_folder_is_not_read_as_sources(music, tmp_path):
    inside = music / "converted"
    convert_folder(music, inside, sample_rate=16000, num_workers=0, progress=False)

    again = convert_folder(music, inside, sample_rate=16000, num_workers=0, progress=False)

    assert (again.n_converted, again.n_skipped, again.n_failed) == (0, 4, 1)
    with pytest.raises(SonicError, match="must differ from the audio folder"):
        convert_folder(music, music, sample_rate=16000, progress=False)




def test_convert_command_prints_the_summary(music, tmp_path):
    result = sonic("convert", "--audio-dir", music, "--out-dir", tmp_path / "out", "--sample-rate", 16000,
                   "--format", "flac", "--mono", "--num-workers", 2)  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "converted 4, skipped 0 already done, failed 1" in result.stdout
    assert "failed: broken.mp3" in result.stdout
    assert soundfile.info(tmp_path / "out" / "album" / "a.flac").channels == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--audio-dir", "{tmp}/missing"], "does not exist"),
        (["--audio-dir", "{tmp}/empty"], "no audio files"),
        (["--audio-dir", "{music}", "--format", "mp4"], "unknown output format 'mp4'; known: flac, wav"),
        (["--audio-dir", "{music}", "--sample-rate", "0"], "sample rate must be"),
        (["--audio-dir", "{music}", "--sample-rate", "-8000"], "sample rate must be"),
        (["--audio-dir", "{music}", "--num-workers", "-1"], "number of workers"),
    ],
)
def test_convert_command_bad_input_is_one_line(music, tmp_path, arguments, message):
    (tmp_path / "empty").mkdir()
    arguments = [a.format(tmp=tmp_path, music=music) for a in arguments]
    options = {"--out-dir": str(tmp_path / "out"), "--sample-rate": "16000"}
    for index in range(0, len(arguments), 2):
        options[arguments[index]] = arguments[index + 1]

    result = sonic("convert", *[item for pair in options.items() for item in pair])

    assert result.returncode == 2
    assert result.stderr.startswith("sonic: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
