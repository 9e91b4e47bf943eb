"""The demo-shaped report opened in headless Chromium: every figure renders, every excerpt plays, no console error,
a real screenshot."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from study_fixtures import study_file, tiny_catalogue

from sonic.study import run_experiment
from sonic.study.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"),
]


def chromium(*arguments: str) -> subprocess.CompletedProcess:
    """Headless Chromium (no sandbox: CI runs as root), its console messages logged to stderr."""
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The demo's shape on a tiny catalogue: two audio-side backends (MFCC and the random DINO control, whose
    full-size ViT-S/16 weights go into a temporary cache), the baselines, knn and the trained shallow net."""
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("browser")
    catalogue = tiny_catalogue(root / "data")
    path = study_file(root / "study.toml", catalogue, embedders=("mfcc_104", "dino_vits16_random"),
                      models=("random", "pop", "knn", "snn"),
                      extra='[embeddings.options]\ndino_vits16_random = { fit = "resize" }\n')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SONIC_DINO_RANDOM_CACHE", str(root / "dino-cache"))
        result = run_experiment(path, root / "out", num_workers=2, progress=False)
    assert not result.failures, result.failures
    return write_report(root / "out", root / "out" / "report", num_workers=2)


def test_every_image_loads_and_the_page_logs_no_error(report):
    page = report.read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) >= 10
    for figure in ("q1-backends", "q2-dino", "training", "q5-k-test"):
        assert f"figures/{figure}.png" in images, figure
    for source in re.findall(r'(?:src|href)="([^"#]+)"', page):
        assert (report.parent / source).is_file(), f"missing file {source}"
    result = chromium("--dump-dom", report.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", result.stdout).group(1)
    assert 'data-checked="yes"' in body, "the page's load check did not run"
    assert f'data-images="{len(images)}"' in body
    assert 'data-broken-images=""' in body, body
    assert 'data-errors="0"' in body, body
    players = page.count("<audio ")  # the listening section: each track's excerpt
    assert players >= 3 * (5 + 10)  # three test users: five played tracks and the best content model's ten
    assert 'data-audio-checked="yes"' in body and f'data-audio-playable="{players}"' in body, body
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line
               or "Failed to load resource" in line or "ERR_FILE_NOT_FOUND" in line]
    assert console == []


def test_a_screenshot_shows_the_report(report, tmp_path):
    from matplotlib.image import imread

    shot = tmp_path / "report.png"
    result = chromium(f"--screenshot={shot}", "--window-size=1280,2200", report.as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = imread(shot)[..., :3]  # (height, width, rgb) floats in [0, 1]
    assert pixels.shape[:2] == (2200, 1280)
    assert pixels.std() > 0.1  # not a blank page
    ink = pixels.min(axis=2) < 0.8  # text, table lines, bars and the title band
    assert ink.mean() > 0.03
    assert ink[:, 640:].mean() > 0.01  # figures and tables reach the right half too
    header = pixels[:40, :, :]  # the dark title band
    assert header.mean() < 0.5
