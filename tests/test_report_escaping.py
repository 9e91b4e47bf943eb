"""A report whose labels, file names, title and notes hold HTML, opened in headless Chromium: no script of theirs
runs, their text shows as text, and pictures whose names hold ``#``, ``?`` or ``%`` still load."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from test_report import fake_run

from sonic.study.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"),
]

SCRIPT = "<script>window.__pwned=1</script>"
IMAGE = '<img src=x onerror="window.__pwned=1">'
#: Set on <body> after load by a probe the test adds: whether any injected script ran.
PROBE = ("<script>window.addEventListener('load', function () { document.body.setAttribute('data-pwned', "
         "typeof window.__pwned === 'undefined' ? 'no' : 'yes'); });</script>")


def chromium_dom(page, profile) -> str:
    """The DOM of ``page`` after loading (scripts run, images fetched), from headless Chromium."""
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}", "--virtual-time-budget=10000",
               "--dump-dom", page.as_uri()]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import soundfile

    root = tmp_path_factory.mktemp("escaping") / "study"
    audio = root / "audio"
    (audio / "<script>window.__pwned=1<").mkdir(parents=True)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(22050 * 3) / 22050)).astype(np.float32)
    for name in ("<script>window.__pwned=1</script>.wav", f"{IMAGE}.wav", "a #1?%.wav"):
        soundfile.write(audio / name, tone, 22050)
    (root / "study.toml").write_text(
        f"title = '{SCRIPT} study {IMAGE}'\n[data]\nevents = \"events.tsv\"\naudio = \"audio\"\n"
        "[split]\nprotocol = \"tamm2025\"\n[embeddings]\nnames = [\"mfcc_104\"]\n"
        f"[[recommenders]]\nname = \"pop\"\n[[recommenders]]\nname = \"knn\"\nlabel = '{IMAGE}'\n"
        "[evaluation]\nmodes = [\"test\"]\nks = [5, 10]\nseeds = [1, 2]\n"
        f"[report]\nk = 10\ngallery_tracks = 3\nnotes = ['{SCRIPT}', '{IMAGE}']\n"
    )
    for seed in (1, 2):
        fake_run(root / "results", root / "runs", "pop", "-", "test", seed)
        fake_run(root / "results", root / "runs", "knn", "mfcc_104", "test", seed, label=IMAGE)
        fake_run(root / "results", root / "runs", "snn", "mfcc_104", "test", seed, label=f"snn{SCRIPT}")
    return write_report(root, root / "report", num_workers=0)


def test_no_injected_script_runs_and_the_text_shows_as_text(report, tmp_path):
    page = report.read_text()
    probe = report.with_name("probe.html")
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    dom = chromium_dom(probe, tmp_path / "profile")
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert 'data-checked="yes"' in body, "the page's load check did not run"
    assert 'data-pwned="no"' in body, body
    assert 'data-errors="0"' in body, body
    assert 'data-broken-images=""' in body, body  # gallery pictures named with #, ? and % load
    assert len(re.findall(r"<script", dom)) == 2  # the page's own check and the test's probe, nothing else
    assert not re.search(r'<img[^>]+src="x"', dom)
    escaped_script = "&lt;script&gt;window.__pwned=1&lt;/script&gt;"
    escaped_image = '&lt;img src=x onerror="window.__pwned=1"&gt;'
    title = re.search(r"<h1>(.*?)</h1>", dom).group(1)
    assert title == f"{escaped_script} study {escaped_image}"
    assert dom.count(escaped_script) >= 3  # title, note, gallery heading (and the store-only label)
    assert f"snn{escaped_script}" in dom  # a recommender label straight from the results store
    assert dom.count(escaped_image) >= 4  # title, note, recommender label, gallery heading
    assert "<h3>a #1?%</h3>" in dom


def test_file_links_are_quoted(report):
    page = report.read_text()
    links = re.findall(r'<img src="(gallery/[^"]+)"', page)
    assert len(links) == 12  # four pictures of three tracks
    assert "gallery/a%20%231%3F%25.mel.png" in links
    assert "gallery/%3Cscript%3Ewindow.__pwned%3D1%3C/script%3E.mel.png" in links
    for link in links:
        assert not set(link) & set('<>"# ?'), link
