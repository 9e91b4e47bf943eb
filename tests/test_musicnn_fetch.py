"""Getting MusiCNN's weights: the pinned wheel's sha256, the cache layout, ``sonic fetch``."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from sonic.errors import SonicError
from sonic.tails.models import musicnn_weights
from sonic.tails.models.fetch import fetch_weights
from sonic.tails.models.musicnn_weights import MODELS, cached_model, extract_checkpoints


def fake_wheel(path):
    with zipfile.ZipFile(path, "w") as archive:
        for model in MODELS:
            archive.writestr(f"musicnn/{model}/.index", f"index of {model}")
            archive.writestr(f"musicnn/{model}/.data-00000-of-00001", f"data of {model}")
            archive.writestr(f"musicnn/{model}/config.json", "{}")
            archive.writestr(f"musicnn/{model}/.meta", "graph, not kept")
    return path


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(musicnn_weights.CACHE_ENV, str(tmp_path / "c"))
    assert musicnn_weights.cache_dir() == tmp_path / "c" / "0.1.0"
    monkeypatch.delenv(musicnn_weights.CACHE_ENV)
    assert musicnn_weights.cache_dir().parts[-4:] == (".cache", "sonic", "musicnn", "0.1.0")


def test_extract_keeps_the_checkpoint_files_only(tmp_path):
    extract_checkpoints(fake_wheel(tmp_path / "w.whl"), tmp_path / "cache")
    for model in MODELS:
        folder = cached_model(model, tmp_path / "cache")
        assert folder == tmp_path / "cache" / model
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.data-00000-of-00001", "model.index"]
        assert (folder / "model.index").read_text() == f"index of {model}"
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")] == []  # no staging left


def test_a_wheel_with_another_sha256_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(musicnn_weights.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(SonicError, match="not the pinned musicnn-0.1.0-py3-none-any.whl's f38a4890"):
        fetch_weights("musicnn", wheel=fake_wheel(tmp_path / "w.whl"))
    assert cached_model("MSD_musicnn") is None
    with pytest.raises(SonicError, match="nothing to fetch for .vggish.; fetchable: musicnn, MSD_musicnn.*mert-v1-95m"):
        fetch_weights("vggish")


def test_sonic_fetch_command_reports_mistakes_in_one_line(tmp_path):
    env = {**os.environ, musicnn_weights.CACHE_ENV: str(tmp_path / "cache")}
    command = [sys.executable, "-m", "sonic", "fetch", "musicnn", "--wheel", str(fake_wheel(tmp_path / "w.whl"))]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("sonic: error: ") and "sha256" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = subprocess.run([sys.executable, "-m", "sonic", "fetch", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "musicnn" in result.stdout
