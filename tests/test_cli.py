"""The command line as a user meets it: help, the package's names, `sonic study` and `sonic demo`."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from sonic.demo import CatalogueConfig, generate_catalogue

COMMANDS = ("demo", "study", "data-split", "convert", "find-corrupt", "visualize", "embed", "run-model", "evaluate",
            "compare")


def sonic(*arguments: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sonic", *arguments], capture_output=True, text=True, cwd=cwd)


def test_help_lists_every_command():
    result = sonic("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout
    for command in COMMANDS:
        assert sonic(command, "--help").returncode == 0


def test_import_sonic_loads_no_heavy_module():
    code = "import sys, sonic; print(sorted({'numpy', 'pandas', 'soundfile', 'faiss'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_parts_are_reachable_under_the_project_names():
    import sonic

    assert sonic.CREAM is sonic.cream and sonic.TAILS is sonic.tails and sonic.ROUGE is sonic.rouge
    assert callable(sonic.CREAM.load_events) and callable(sonic.TAILS.embed_folder) and callable(sonic.ROUGE.run_model)


def test_unknown_command_is_a_usage_error_without_traceback():
    result = sonic("embedd")
    assert result.returncode == 2
    assert "No such command 'embedd'" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    config = CatalogueConfig(tracks_per_style=6, n_users=120, clip_seconds=4.0, seed=1)
    return generate_catalogue(tmp_path_factory.mktemp("data"), config, num_workers=2)


def test_study_command_runs_the_whole_study(catalogue, tmp_path):
    result = sonic("study", "--interactions", str(catalogue.events_path), "--audio-dir", str(catalogue.audio_dir),
                   "--out", str(tmp_path), "--model", "pop", "--model", "knn", "--k", "5", "--num-workers", "2")
    assert result.returncode == 0, result.stderr
    assert "knn / mfcc_104" in result.stdout
    results = pd.read_csv(tmp_path / "results.csv")
    assert set(results["model"]) == {"pop", "knn"} and set(results["k"]) == {5}
    for folder in ("split", "embeddings", "runs/knn-mfcc_104-test", "runs/pop---val"):
        assert (tmp_path / folder).is_dir(), folder


def test_study_command_with_a_bad_model_name_says_so_in_one_line(catalogue, tmp_path):
    result = sonic("study", "--interactions", str(catalogue.events_path), "--audio-dir", str(catalogue.audio_dir),
                   "--out", str(tmp_path), "--model", "knnn")
    assert result.returncode == 2
    assert result.stderr.strip() == "sonic: error: unknown recommender 'knnn'; known: bert4rec, ease, elsa, knn, pop, random, snn"
    assert not (tmp_path / "split").exists()


@pytest.mark.slow
def test_demo_command_as_in_the_readme(tmp_path):
    result = sonic("demo", "--out", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    assert "knn / mfcc_104" in result.stdout and "results:" in result.stdout
    results = pd.read_csv(tmp_path / "demo" / "results.csv")
    hit50 = results[(results.metric == "HitRate") & (results.k == 50) & (results.split == "test")].set_index("model")
    assert hit50.at["knn", "mean"] > 1.5 * hit50.at["random", "mean"]
    assert hit50.at["knn", "ci_low"] > hit50.at["random", "ci_high"]
