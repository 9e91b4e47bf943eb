"""Figures of the spectral pictures (sonic.cream.spectra.figures), `visualize` over files and folders, and its command."""

from __future__ import annotations

import numpy as np
import pytest
from audio_fixtures import noise, tone, write
from cli_runner import sonic

from sonic.cream.spectra.figures import DPI, FIGURE_INCHES, draw, save_figure
from sonic.cream.spectra.pictures import chromagram, fft_spectrum, mel_spectrogram, tempogram
from sonic.cream.spectra.render import PICTURES, picture_kinds, visualize
from sonic.errors import AudioError, UnknownNameError

matplotlib_image = pytest.importorskip("matplotlib.image")

SR = 22050
PICTURE_FUNCTIONS = (mel_spectrogram, chromagram, fft_spectrum, tempogram)




def assert_valid_png(path) -> None:
    """A PNG of the figure's size whose pixels are not all one colour."""
    pixels = matplotlib_image.imread(path)
    assert pixels.shape[:2] == (round(FIGURE_INCHES[1] * DPI), round(FIGURE_INCHES[0] * DPI))
    assert pixels[..., :3].std() > 0.05


@pytest.fixture(scope="module")
def music():
    """A C major chord over clicks at 120 BPM, 4 s."""
    beat = np.zeros(4 * SR, dtype=np.float32)
    for start in np.arange(0.0, 3.9, 0.5):
        beat[round(start * SR) : round(start * SR) + 200] += noise(200 / SR, SR, amplitude=0.5)
    return sum(tone(f, 4.0, SR, amplitude=0.15) for f in (261.63, 329.63, 392.0)) + beat


@pytest.mark.parametrize("compute", PICTURE_FUNCTIONS, ids=lambda function: function.__name__)
def test_save_figure_writes_a_labelled_png_atomically(music, compute, tmp_path):
    picture = compute(music, SR)

    figure = draw(picture, title="chord.wav")
    axes = figure.axes[0]
    assert "chord.wav" in axes.get_title()
    assert axes.get_xlabel() in ("Time (s)", "Frequency (Hz)") and axes.get_ylabel()
    path = save_figure(picture, tmp_path / "deep" / "chord.png", title="chord.wav")

    assert path == tmp_path / "deep" / "chord.png"
    assert_valid_png(path)
    assert [p.name for p in path.parent.iterdir()] == ["chord.png"]  # no temporary file left
    (tmp_path / "plain").write_bytes(b"")
    assert path.stat().st_mode == (tmp_path / "plain").stat().st_mode  # permissions as any new file's


@pytest.mark.parametrize("compute", PICTURE_FUNCTIONS, ids=lambda function: function.__name__)
def test_figures_of_silence_draw_without_warnings(compute, tmp_path):
    picture = compute(np.zeros(SR, dtype=np.float32), SR)

    assert save_figure(picture, tmp_path / "silence.png", title="silence").is_file()


def test_picture_kinds_are_a_registry():
    assert picture_kinds("all") == tuple(PICTURES) == ("mel", "chroma", "fft", "tempogram")
    assert picture_kinds("fft") == ("fft",)
    with pytest.raises(UnknownNameError, match="unknown picture kind 'spectrum'; known: all, chroma, fft, mel"):
        picture_kinds("spectrum")


def test_visualize_a_folder_keeps_its_structure_and_lists_failures(music, tmp_path):
    audio = tmp_path / "audio"
    write(audio / "a", music, SR)
    write(audio / "album" / "b", tone(440.0, 2.0, SR), SR, "flac")
    write(audio / "album" / "b", tone(440.0, 2.0, SR), SR, "wav_pcm16")  # same track id as b.flac
    (audio / "broken.wav").write_bytes(b"RIFF not really")

    result = visualize(audio, tmp_path / "out", kind="all", num_workers=0, progress=False)

    expected = sorted(tmp_path / "out" / f"{track}.{kind}.png" for track in ("a", "album/b") for kind in PICTURES)
    assert list(result.written) == expected
    for path in expected:
        assert_valid_png(path)
    assert result.n_files == 4
    assert [name for name, _ in result.failures] == ["album/b.wav", "broken.wav"]
    assert "duplicate track_id 'album/b'" in result.failures[0][1] and "cannot decode" in result.failures[1][1]


def test_visualize_one_file_with_a_window_and_a_sample_rate(music, tmp_path):
    path = write(tmp_path / "chord", music, SR)

    result = visualize(
        path, tmp_path / "out", kind="chroma", offset_seconds=1.0, duration_seconds=2.0, sample_rate=16000
    )

    assert result.written == (tmp_path / "out" / "chord.chroma.png",) and result.failures == ()
    with pytest.raises(AudioError, match="does not exist"):
        visualize(tmp_path / "missing.wav", tmp_path / "out")


def test_visualize_command_on_a_file_and_a_folder(music, tmp_path):
    write(tmp_path / "audio" / "one", music, SR)
    write(tmp_path / "audio" / "sub" / "two", tone(523.25, 2.0, SR), SR, "flac")

    single = sonic(
        "visualize", "--audio", str(tmp_path / "audio" / "one.wav"), "--kind", "mel", "--out", str(tmp_path / "single")
    )
    assert single.returncode == 0, single.stderr
    assert "wrote 1 figure to" in single.stdout
    assert_valid_png(tmp_path / "single" / "one.mel.png")

    folder = sonic(
        "visualize",
        "--audio-dir",
        str(tmp_path / "audio"),
        "--out",
        str(tmp_path / "folder"),
        "--kind",
        "fft",
        "--num-workers",
        "2",
        "--duration-seconds",
        "3",
    )
    assert folder.returncode == 0, folder.stderr
    assert "wrote 2 figures" in folder.stdout
    for track in ("one", "sub/two"):
        assert_valid_png(tmp_path / "folder" / f"{track}.fft.png")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--audio", "{tmp}/missing.wav"], "audio file or folder '{tmp}/missing.wav' does not exist"),
        (
            ["--audio", "{tmp}/one.wav", "--kind", "sonogram"],
            "unknown picture kind 'sonogram'; known: all, chroma, fft, mel, tempogram",
        ),
        ([], "give exactly one of --audio FILE or --audio-dir FOLDER"),
        (["--audio", "{tmp}", "--audio-dir", "{tmp}"], "give exactly one of --audio FILE or --audio-dir FOLDER"),
        (["--audio", "{tmp}"], "--audio takes a file, but '{tmp}' is a folder; use --audio-dir"),
        (["--audio-dir", "{tmp}/empty"], "no audio files"),
    ],
)
def test_visualize_command_bad_input_is_one_line_and_exit_2(arguments, message, tmp_path):
    write(tmp_path / "one", tone(440.0, 1.0, SR), SR)
    (tmp_path / "empty").mkdir()

    result = sonic("visualize", *[a.format(tmp=tmp_path) for a in arguments], "--out", str(tmp_path / "out"))

    assert result.returncode == 2
    assert result.stderr.startswith("sonic: error: ") and result.stderr.count("\n") == 1
    assert message.format(tmp=tmp_path) in result.stderr
    assert not (tmp_path / "out").exists()
