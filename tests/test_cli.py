"""The command line as a user meets it: help, the package's names, `sonic study` and `sonic demo`."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from cli_runner import sonic

from sonic.demo import CatalogueConfig, generate_catalogue

COMMANDS = ("demo", "experiment", "study", "results", "report", "data-split", "convert", "find-corrupt", "visualize",
            "embed", "run-model", "evaluate", "compare", "recommend", "similar")


def entry_point(*arguments: str) -> subprocess.CompletedProcess:
    """The installed command itself, in a fresh interpreter (the other tests call it in process)."""
    return subprocess.run([sys.executable, "-m", "sonic", *arguments], capture_output=True, text=True)


def test_help_lists_every_command():
    result = entry_point("--help")
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
    result = entry_point("embedd")
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
    for folder in ("split/seed-42", "embeddings", "runs/knn-mfcc_104-seed42", "runs/pop---seed42", "results"):
        assert (tmp_path / folder).is_dir(), folder
    assert 'name = "knn"' in (tmp_path / "study.resolved.toml").read_text()  # the study as a file, to rerun
    board = sonic("results", str(tmp_path), "--where", "metric = 'NDCG' AND split = 'test'")
    assert board.returncode == 0, board.stderr
    assert board.stdout.splitlines()[0].split() == ["test", "@5", "NDCG"]
    assert "knn / mfcc_104" in board.stdout and "95% t-interval over users (one seed)" in board.stdout
    bad = sonic("results", str(tmp_path), "--where", "nonsense = 1")
    assert bad.returncode == 2 and bad.stderr.startswith("sonic: error: --where 'nonsense = 1' is not a valid")


def test_study_command_with_a_bad_model_name_says_so_in_one_line(catalogue, tmp_path):
    result = sonic("study", "--interactions", str(catalogue.events_path), "--audio-dir", str(catalogue.audio_dir),
                   "--out", str(tmp_path), "--model", "knnn")
    assert result.returncode == 2
    from sonic.rouge.base import RECOMMENDERS

    known = ", ".join(RECOMMENDERS.names())
    aliases = "aliases: bert = bert4rec"
    assert result.stderr.strip() == f"sonic: error: unknown recommender 'knnn'; known: {known}; {aliases}"
    assert not (tmp_path / "split").exists()


def test_study_command_checks_embedder_names_before_splitting(catalogue, tmp_path):
    result = sonic("study", "--interactions", str(catalogue.events_path), "--audio-dir", str(catalogue.audio_dir),
                   "--out", str(tmp_path / "out"), "--embedder", "mfcc_200")
    assert result.returncode == 2
    assert result.stderr.startswith("sonic: error: unknown embedder 'mfcc_200'; known MFCC names are mfcc_1 ..")
    assert not (tmp_path / "out").exists()


def test_experiment_with_a_typo_in_a_key_says_so_and_runs_nothing(catalogue, tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(f'[data]\nevents = "{catalogue.events_path}"\n[embeddings]\nembedders = ["mfcc_104"]\n')
    result = sonic("experiment", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"sonic: error: study file '{path}': unknown key 'embedders' in [embeddings]; "
        "known: names, fusions, offset_seconds, duration_seconds, batch_size, engine, ray_address, gpus_per_actor, "
        "options"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_demo_command_as_in_the_readme(tmp_path):
    result = entry_point("demo", "--out", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    assert "knn / mfcc_104" in result.stdout and "results:" in result.stdout
    assert f"report: {tmp_path / 'demo' / 'report' / 'index.html'}" in result.stdout
    assert "95% t-interval over the means of 2 seeds" in result.stdout
    assert (tmp_path / "demo" / "report" / "figures" / "q5-k-test.png").is_file()
    results = pd.read_csv(tmp_path / "demo" / "results.csv")
    assert set(results["seed"]) == {42, 43}
    assert {"mfcc_104", "lyrics", "metadata", "mfcc_104+lyrics", "mfcc_104+metadata"} <= set(results["embedding"])
    results = results[(results.seed == 42) & results.embedding.isin(["mfcc_104", "-"])]
    hit50 = results[(results.metric == "HitRate") & (results.k == 50) & (results.split == "test")].set_index("model")
    assert hit50.at["knn", "mean"] > 1.5 * hit50.at["random", "mean"]
    assert hit50.at["knn", "ci_low"] > hit50.at["random", "ci_high"]
