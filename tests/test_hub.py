"""Checkpoints by hub name: downloaded on first use into the Hugging Face cache (exactly the files the
model reads), read from the cache afterwards and offline, pinned by revision, fetched ahead with
``sonic fetch``; a missing one is one sentence. The hub is a local stand-in (hub_server.py) reached
through HF_ENDPOINT; the test session is otherwise offline (conftest.py)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("huggingface_hub")

from audio_fixtures import noise  # noqa: E402
from cli_runner import sonic  # noqa: E402
from hub_server import HubServer, folder_files  # noqa: E402

from sonic.errors import SonicError  # noqa: E402
from sonic.tails.base import EMBEDDERS  # noqa: E402
from sonic.testing.tiny import PUBLISHED_CONVOLUTIONS, tiny_mert, tiny_musicfm  # noqa: E402

COMMIT = "0123456789abcdef0123456789abcdef01234567"
RATE = 24_000


@pytest.fixture
def online(monkeypatch, tmp_path):
    """A fresh Hugging Face cache under tmp_path and huggingface_hub allowed to reach a stand-in hub."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")

    def serve(repos):
        server = HubServer(repos)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        return server

    return serve


@pytest.fixture(scope="module")
def mert_folder(tmp_path_factory):
    folder, _ = tiny_mert(tmp_path_factory.mktemp("mert") / "MERT-v1-95M", **PUBLISHED_CONVOLUTIONS)
    return folder


def mert_repo(folder) -> dict:
    files = folder_files(folder)
    files["MERT-v1-95M_fairseq.pt"] = b"fairseq checkpoint, never downloaded" * 100
    files["README.md"] = b"# MERT"
    return {"m-a-p/MERT-v1-95M": {"commit": COMMIT, "files": files}}


def test_a_hub_name_downloads_exactly_the_files_it_reads_then_runs_from_the_cache(online, mert_folder, monkeypatch):
    clip = noise(0.1, RATE, seed=2)
    local = EMBEDDERS.create("mert-v1-95m", checkpoint=str(mert_folder), device="cpu", window_seconds=0.05)
    with online(mert_repo(mert_folder)) as hub:
        embedder = EMBEDDERS.create("mert-v1-95m", device="cpu", window_seconds=0.05)
        fetched = [path for path in hub.downloaded() if path.startswith("m-a-p/")]

    assert sorted(fetched) == sorted(
        f"m-a-p/MERT-v1-95M/{name}" for name in ("config.json", "preprocessor_config.json", "pytorch_model.bin")
    )
    np.testing.assert_array_equal(embedder.embed([clip]), local.embed([clip]))
    described = embedder.describe()
    assert described["checkpoint"] == "m-a-p/MERT-v1-95M" and described["revision"] == COMMIT
    assert described["files"]["pytorch_model.bin"] == hashlib.sha256(
        (mert_folder / "pytorch_model.bin").read_bytes()).hexdigest()  # fmt: skip
    assert set(described["files"]) == {"config.json", "preprocessor_config.json", "pytorch_model.bin"}

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub is gone: the cache is enough
    again = EMBEDDERS.create("mert-v1-95m", device="cpu", window_seconds=0.05, revision=COMMIT)
    assert again.describe()["revision"] == COMMIT
    np.testing.assert_array_equal(again.embed([clip]), local.embed([clip]))


def test_a_revision_is_pinned_and_an_unknown_one_is_one_sentence(online, mert_folder):
    with online(mert_repo(mert_folder)):
        embedder = EMBEDDERS.create("mert-v1-95m", device="cpu", revision=COMMIT)
        assert embedder.describe()["revision"] == COMMIT
        with pytest.raises(SonicError, match="'m-a-p/MERT-v1-95M' has no revision 'v9'"):
            EMBEDDERS.create("mert-v1-95m", device="cpu", revision="v9")
        with pytest.raises(SonicError, match="hub repository 'nobody/nothing' does not exist"):
            EMBEDDERS.create("mert-v1-95m", checkpoint="nobody/nothing", device="cpu")


def test_musicfm_downloads_the_msd_pair_only(online, tmp_path):
    folder, _ = tiny_musicfm(tmp_path / "MusicFM")
    files = folder_files(folder)
    files["pretrained_fma.pt"], files["fma_stats.json"] = b"not fetched" * 1000, b"{}"
    with online({"minzwon/MusicFM": {"commit": COMMIT, "files": files}}) as hub:
        embedder = EMBEDDERS.create("musicfm", device="cpu")
        fetched = sorted(path for path in hub.downloaded() if path.startswith("minzwon/"))
    assert fetched == ["minzwon/MusicFM/msd_stats.json", "minzwon/MusicFM/pretrained_msd.pt"]
    assert embedder.describe()["revision"] == COMMIT


def test_sonic_fetch_prefetches_and_lists(online, mert_folder, tmp_path, monkeypatch):
    result = sonic("fetch", "--list")
    assert result.returncode == 0
    lines = dict(line.split("\t", 1) for line in result.stdout.strip().splitlines())
    assert lines["mert-v1-95m"].startswith("absent") and "musicnn" in lines and "dino_vits16" in lines
    assert "mfcc_<N>" not in lines and "lyrics" not in lines

    with online(mert_repo(mert_folder)):
        result = sonic("fetch", "mert-v1-95m")
    assert result.returncode == 0, result.stderr
    snapshot = tmp_path / "hf" / "hub" / "models--m-a-p--MERT-v1-95M" / "snapshots" / COMMIT
    assert result.stdout.strip() == f"mert-v1-95m weights in {snapshot}"
    listed = dict(line.split("\t", 1) for line in sonic("fetch", "--list").stdout.strip().splitlines())
    assert listed["mert-v1-95m"] == f"present\t{snapshot}"

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = sonic("fetch", "mfcc_20")
    assert result.returncode == 2 and "nothing to fetch for 'mfcc_20'" in result.stderr


def test_offline_without_the_files_is_one_sentence_naming_fetch_and_checkpoint(tmp_path, monkeypatch):
    from audio_fixtures import write

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    write(tmp_path / "audio" / "a.wav", noise(0.5, RATE), RATE)
    result = sonic("embed", "--model-type", "mert-v1-95m", "--audio-dir", tmp_path / "audio", "--out", tmp_path / "o")

    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "'m-a-p/MERT-v1-95M' is not in the Hugging Face cache" in result.stderr
    assert "HF_HUB_OFFLINE is set" in result.stderr
    assert "sonic fetch mert-v1-95m" in result.stderr and "--checkpoint" in result.stderr


def test_an_unreachable_hub_is_one_sentence_naming_its_error_fetch_and_checkpoint(online, tmp_path):
    from audio_fixtures import write

    write(tmp_path / "audio" / "a.wav", noise(0.5, RATE), RATE)
    server = online({})
    server.__enter__()
    server.__exit__(None, None, None)  # its port is closed now: connections are refused
    result = sonic("embed", "--model-type", "mert-v1-95m", "--audio-dir", tmp_path / "audio", "--out", tmp_path / "o")

    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "the hub could not be reached (ConnectError" in result.stderr
    assert "sonic fetch mert-v1-95m" in result.stderr and "--checkpoint" in result.stderr
    assert "Retrying" not in result.stderr  # one try, no backoff
