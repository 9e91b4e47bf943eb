"""A project folder: the original SONIC's commands run as written, with the folders left out.

From a folder holding the demo's audio and listening log, ``sonic data-split`` writes ``split/``,
``sonic embed`` writes ``embeddings/`` and ``sonic run-model`` reads both and writes a run folder under
``runs/``. The reference is the same three steps with every folder given explicitly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from cli_runner import sonic
from study_fixtures import tiny_catalogue

from sonic.project import EMBEDDINGS_DIR, RUNS_DIR, SPLIT_DIR
from sonic.rouge.run_names import default_run_dir

#: The commands of the original SONIC's README (its --interactions-file is --interactions here).
SPLIT = ["data-split", "--interactions", "userid_trackid_timestamp.tsv", "--protocol", "sonic"]
EMBED = ["embed", "--audio-dir", "audios", "--model-type", "MFCC", "--batch-size", "32"]
RUN = ["run-model", "--model-name", "knn", "--embedding", "mfcc_104", "--mode", "val", "--k", "50"]


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    return tiny_catalogue(tmp_path_factory.mktemp("catalogue"))


@pytest.fixture
def project(catalogue, tmp_path, monkeypatch) -> Path:
    """A fresh folder holding the audio and the listening log, as the working directory."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copytree(catalogue.audio_dir, folder / "audios")
    shutil.copy(catalogue.events_path, folder / "userid_trackid_timestamp.tsv")
    monkeypatch.chdir(folder)
    return folder


def _ok(*args) -> str:
    result = sonic(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _metrics(run_dir: Path) -> pd.DataFrame:
    return pd.DataFrame(json.loads((run_dir / "metrics.json").read_text())["metrics"])


def test_the_originals_commands_run_as_written_and_equal_the_explicit_run(project):
    printed = [_ok(*SPLIT), _ok(*EMBED, "--num-workers", "0"), _ok(*RUN)]

    run_dir = RUNS_DIR / "knn-mfcc_104-val-k50-seed0"
    assert (SPLIT_DIR / "train.parquet").is_file() and (EMBEDDINGS_DIR / "mfcc_104.parquet").is_file()
    assert (run_dir / "metrics.json").is_file()
    assert "read userid_trackid_timestamp.tsv; wrote train.parquet" in printed[0] and "to split/" in printed[0]
    assert "from audios into embeddings/mfcc_104.parquet" in printed[1]
    assert f"read split/ and embeddings/mfcc_104.parquet; wrote {run_dir}" in printed[2]

    _ok("data-split", "--interactions", "userid_trackid_timestamp.tsv", "--protocol", "sonic",
        "--out", "explicit/split")
    _ok("embed", "--audio-dir", "audios", "--model-type", "mfcc_104", "--batch-size", "32", "--num-workers", "0",
        "--out", "explicit/embeddings")
    _ok("run-model", "--model-name", "knn", "--embedding", "mfcc_104", "--mode", "val", "--k", "50",
        "--split-dir", "explicit/split", "--embeddings-dir", "explicit/embeddings", "--out", "explicit/run")

    pd.testing.assert_frame_equal(_metrics(run_dir), _metrics(Path("explicit/run")))
    ours = pd.read_parquet(run_dir / "recommendations.parquet")
    pd.testing.assert_frame_equal(ours, pd.read_parquet("explicit/run/recommendations.parquet"))
    assert sorted(p.name for p in RUNS_DIR.iterdir()) == ["knn-mfcc_104-val-k50-seed0"]

    again = _ok(*RUN)  # the same request finds its own folder
    assert f"wrote {run_dir}" in again and sorted(p.name for p in RUNS_DIR.iterdir()) == [run_dir.name]


def test_other_requests_get_other_run_folders(project):
    _ok(*SPLIT)
    _ok(*EMBED, "--num-workers", "0")
    _ok(*RUN, "--seed", "1")
    _ok(*RUN, "--seed", "1", "--seed", "2")
    _ok(*RUN, "--option", "catalogue=all")

    names = {path.name for path in RUNS_DIR.iterdir()}
    with_option = [name for name in names if name.startswith("knn-mfcc_104-val-k50-seed0-")]
    assert names == {"knn-mfcc_104-val-k50-seed1", "knn-mfcc_104-val-k50-seed1,2", *with_option}
    assert len(with_option) == 1 and len(names) == 3
    assert (RUNS_DIR / "knn-mfcc_104-val-k50-seed1,2" / "mfcc_104" / "seed-2" / "metrics.json").is_file()


def test_the_run_folder_name_is_unique_for_the_request():
    base = {"embeddings": ["mfcc_104"], "mode": ["val"], "ks": [50], "seeds": [42]}
    assert default_run_dir("knn", **base) == Path("runs/knn-mfcc_104-val-k50-seed42")
    assert default_run_dir("bert", **base) == default_run_dir("BERT4Rec", **base)
    variants = [
        {}, {"mode": ["val", "test"]}, {"mode": ["test"]}, {"ks": [10, 50]}, {"seeds": [42, 43]},
        {"embeddings": ["mfcc_104", "lyrics"]}, {"embeddings": ["mfcc_104+lyrics"]}, {"embeddings": []},
        {"shuffle": True}, {"options": {"catalogue": "all"}}, {"options": {"catalogue": "train"}},
        {"device": "cpu"}, {"diversity_embedding": "lyrics"}, {"split_dir": "other"},
        {"embeddings_dir": "elsewhere"}, {"embeddings": ["tables/mfcc_104.parquet"]}, {"beyond": False},
    ]
    names = [default_run_dir("knn", **{**base, **variant}) for variant in variants]
    assert len(set(names)) == len(names), names
    assert default_run_dir("knn", **base, split_dir="split", embeddings_dir="./embeddings") == names[0]
    at_defaults = {"options": {}, "device": "auto", "diversity_embedding": None, "shuffle": False, "beyond": True}
    assert default_run_dir("knn", **base, **at_defaults) == names[0]
    assert default_run_dir("knn", **{**base, "mode": "val"}) == names[0]
    with pytest.raises(TypeError):
        default_run_dir("knn", **base, out_dir="x")
    assert all(name.parent == RUNS_DIR and "/" not in name.name for name in names)
    long = default_run_dir("knn", **{**base, "seeds": list(range(100))})
    assert len(long.name) <= 120 + 9 and long != default_run_dir("knn", **{**base, "seeds": list(range(101))})


def test_a_default_split_made_otherwise_is_kept_unless_overwrite(project):
    _ok(*SPLIT)
    before = (SPLIT_DIR / "train.parquet").read_bytes()

    refused = sonic(*SPLIT, "--seed", "7")

    assert refused.returncode == 2
    assert refused.stderr.strip() == ("sonic: error: 'split' holds a split made with other settings: seed 42 "
                                      "(asked: 7); pass --overwrite to replace it, or --out for another folder")
    assert (SPLIT_DIR / "train.parquet").read_bytes() == before
    assert json.loads((SPLIT_DIR / "split.json").read_text())["config"]["seed"] == 42

    _ok(*SPLIT)  # the same settings again: rewritten
    _ok(*SPLIT, "--seed", "7", "--overwrite")
    assert json.loads((SPLIT_DIR / "split.json").read_text())["config"]["seed"] == 7


def test_overwrite_never_replaces_a_folder_sonic_did_not_write(project):
    SPLIT_DIR.mkdir()
    (SPLIT_DIR / "notes.txt").write_text("mine")
    (SPLIT_DIR / "train.parquet").write_bytes(b"my own file")

    for extra in ([], ["--overwrite"]):
        refused = sonic(*SPLIT, *extra)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert (SPLIT_DIR / "notes.txt").read_text() == "mine"
    assert (SPLIT_DIR / "train.parquet").read_bytes() == b"my own file"


def test_run_model_without_a_split_or_tables_says_how_to_make_them(project):
    no_split = sonic("run-model", "--model-name", "pop")
    assert no_split.returncode == 2
    assert no_split.stderr == "sonic: error: split folder 'split' does not exist; write one with `sonic data-split`\n"
    _ok(*SPLIT)

    no_tables = sonic(*RUN)

    assert no_tables.returncode == 2
    assert no_tables.stderr == ("sonic: error: embeddings folder 'embeddings' does not exist; write mfcc_104.parquet "
                                "into it with `sonic embed`, or pass --embeddings-dir\n")
