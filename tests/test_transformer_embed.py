"""Each transformer model through the embedding runner: the manifest records the rate the audio was
resampled to (24 kHz for MERT, EncodecMAE, MusicFM and MuQ; 16 kHz for Music2Vec), and the table's
vectors are the model's vectors of the decoded, resampled files. Tiny checkpoints in the published
formats; the files are 44.1 kHz, so every model resamples."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from audio_fixtures import noise, tone, write  # noqa: E402

from sonic.cli import main  # noqa: E402
from sonic.cream.audio import decode  # noqa: E402
from sonic.tails.base import EMBEDDERS  # noqa: E402
from sonic.testing import tiny  # noqa: E402
from sonic.testing.tiny import PUBLISHED_CONVOLUTIONS  # noqa: E402
from sonic.tails.runner import embed_folder  # noqa: E402
from sonic.tails.table import read_embeddings  # noqa: E402

FILE_RATE = 44_100
#: The weights files of the published formats; each tiny checkpoint folder holds exactly one.
WEIGHTS_SUFFIXES = (".bin", ".safetensors", ".pt")


def sonic(*args: str) -> int:
    """Run the ``sonic`` command; its exit status."""
    try:
        main(list(args))
    except SystemExit as exit_status:
        return int(exit_status.code or 0)
    return 0


def _checkpoint(name: str, root):
    if name.startswith("mert"):
        return tiny.tiny_mert(root / name, **PUBLISHED_CONVOLUTIONS)[0]
    if name == "music2vec-v1":
        return tiny.tiny_music2vec(root / name, **PUBLISHED_CONVOLUTIONS)[0]
    if name == "musicfm":
        return tiny.tiny_musicfm(root / name)[0]
    if name == "encodecmae-base":
        return tiny.tiny_encodecmae(root / name)[0]
    backbone, state = tiny.tiny_muq(root / "muq")
    return backbone if name == "muq" else tiny.tiny_muq_mulan(root / name, backbone, state)[0]


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    write(root / "a", tone(440.0, 1.3, FILE_RATE) + noise(1.3, FILE_RATE, seed=1), FILE_RATE)
    write(root / "b", tone(220.0, 1.1, FILE_RATE), FILE_RATE, "flac")
    return root


@pytest.mark.slow  # seven models through the runner: 30-100 s on two shared CPUs
@pytest.mark.parametrize(
    ("name", "rate"),
    [("mert-v1-95m", 24_000), ("mert-v1-330m", 24_000), ("music2vec-v1", 16_000), ("muq", 24_000),
     ("muq-mulan", 24_000), ("musicfm", 24_000), ("encodecmae-base", 24_000)],
)
def test_the_manifest_records_the_models_own_rate(name, rate, audio_dir, tmp_path):
    folder = _checkpoint(name, tmp_path)
    embedder = EMBEDDERS.create(name, checkpoint=str(folder), device="cpu")
    result = embed_folder(audio_dir, embedder, tmp_path / "out", num_workers=0, progress=False)

    table = read_embeddings(result.table_path)
    manifest = json.loads(result.manifest_path.read_text())
    expected = embedder.embed([decode(audio_dir / f, sample_rate=rate)[0] for f in ("a.wav", "b.flac")])

    assert embedder.sample_rate == rate and manifest["sample_rate"] == rate
    weights = [path for path in folder.iterdir() if path.suffix in WEIGHTS_SUFFIXES]
    assert len(weights) == 1, weights
    assert manifest["weights_sha256"] == hashlib.sha256(weights[0].read_bytes()).hexdigest()
    assert list(table.track_ids) == ["a", "b"]
    np.testing.assert_allclose(table.vectors, expected, rtol=1e-4, atol=1e-5)


def test_sonic_embed_passes_checkpoint_layer_and_window(audio_dir, tmp_path, capsys):
    folder = _checkpoint("mert-v1-95m", tmp_path)
    code = sonic("embed", "--model-type", "mert-v1-95m", "--audio-dir", str(audio_dir), "--out", str(tmp_path / "o"),
                 "--checkpoint", str(folder), "--layer", "mean", "--window-seconds", "0.25", "--device", "cpu",
                 "--num-workers", "0")

    manifest = json.loads((tmp_path / "o" / "mert-v1-95m.manifest.json").read_text())
    assert code == 0, capsys.readouterr()
    assert (manifest["sample_rate"], manifest["layer"], manifest["window_seconds"]) == (24_000, "mean", 0.25)
    assert manifest["checkpoint"] == str(folder)


def test_sonic_embed_with_an_uncached_hub_name_is_one_sentence(audio_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = sonic("embed", "--model-type", "muq", "--audio-dir", str(audio_dir), "--out", str(tmp_path / "o"))

    err = capsys.readouterr().err
    assert code == 2
    assert "'OpenMuQ/MuQ-large-msd-iter' is not in the Hugging Face cache" in err and "sonic fetch muq" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    code = sonic("embed", "--model-type", "mfcc_20", "--audio-dir", str(audio_dir), "--out", str(tmp_path / "m"),
                 "--layer", "3")
    assert code == 2 and "unknown option 'layer' for embedder 'mfcc_20'" in capsys.readouterr().err
