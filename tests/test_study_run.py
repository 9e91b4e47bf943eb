"""A study run: steps in order, finished steps skipped, failures reported while the rest go on, warnings kept."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from study_fixtures import study_file, tiny_catalogue

from sonic.errors import SonicError
from sonic.study import run_experiment
from sonic.study.store import query, runs

pytestmark = pytest.mark.slow  # each test runs whole studies (seconds each on 2 cores)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    return tiny_catalogue(tmp_path_factory.mktemp("catalogue"))


@pytest.fixture(scope="module")
def finished(catalogue, tmp_path_factory):
    """The tiny study run once (embedder written 'mfcc_0104', as a user might), with its step lines."""
    root = tmp_path_factory.mktemp("study")
    lines = []
    path = study_file(root / "study.toml", catalogue, embedders=("mfcc_0104",))
    result = run_experiment(path, root / "out", num_workers=0, progress=False, echo=lines.append)
    return root, path, result, lines


def test_every_step_runs_once_in_order(finished):
    root, _, result, lines = finished
    kinds = [outcome.key.split("/")[0] for outcome in result.outcomes]
    assert kinds == ["split", "split", "embed"] + ["run"] * (2 * 3)
    assert [outcome.status for outcome in result.outcomes] == ["done"] * len(kinds)
    assert lines[0] == "[1/9] split seed-1: done (" + lines[0].split("(")[1]
    assert (root / "out" / "split" / "seed-1" / "train.parquet").is_file()
    assert (root / "out" / "split" / "seed-2" / "split.json").is_file()
    assert (root / "out" / "runs" / "knn-mfcc_104-seed2" / "per_user.parquet").is_file()
    assert len(list((root / "out" / "steps").glob("*.json"))) == 9


def test_embedder_tables_are_named_by_the_resolved_name(finished):
    root, _, result, _ = finished
    assert (root / "out" / "embeddings" / "mfcc_104.parquet").is_file()
    assert not (root / "out" / "embeddings" / "mfcc_0104.parquet").exists()
    assert set(result.results["embedding"]) == {"-", "mfcc_104"}
    assert 'names = [\n    "mfcc_0104",\n]' in (root / "out" / "study.resolved.toml").read_text()


def test_the_results_table_and_store_agree(finished):
    root, _, result, _ = finished
    table = pd.read_csv(result.results_path)
    assert list(table.columns) == ["model", "embedding", "split", "seed", "metric", "k", "mean", "ci_low", "ci_high",
                                   "n_users", "status"]
    assert set(table["status"]) == {"scored"}  # sonic's split has no cold test: nothing is unable
    assert {"HitRate", "Precision", "Recall", "MRR", "NDCG", "Coverage", "Novelty"} <= set(table["metric"])
    assert set(table["seed"]) == {1, 2} and set(table["k"]) == {5, 10, 20}
    stored = query(root / "out" / "results", "metric = 'NDCG' AND k = 10 AND model = 'knn' AND split = 'test'")
    expected = table.query("metric == 'NDCG' and k == 10 and model == 'knn' and split == 'test'")
    assert sorted(stored["mean"]) == pytest.approx(sorted(expected["mean"]), abs=1e-12)
    run_rows = runs(root / "out" / "results")
    assert len(run_rows) == 6 and set(run_rows["split_seed"]) == {1, 2}
    assert run_rows["embedding_manifest"].str.endswith("mfcc_104.manifest.json").sum() == 2
    with pytest.raises(SonicError, match="is not a valid condition on columns model, recommender"):
        query(root / "out" / "results", "no_such_column = 1")


def test_a_rerun_skips_every_finished_step_and_gives_the_same_results(finished):
    root, path, result, _ = finished
    records = {p.name: p.read_bytes() for p in (root / "out" / "steps").glob("*.json")}
    again = run_experiment(path, root / "out", num_workers=0, progress=False)
    assert {outcome.status for outcome in again.outcomes} == {"skipped"}
    assert records == {p.name: p.read_bytes() for p in (root / "out" / "steps").glob("*.json")}
    pd.testing.assert_frame_equal(again.results, result.results)


def test_a_changed_setting_redoes_only_the_steps_it_reaches(finished, catalogue, tmp_path):
    root, _, result, _ = finished
    out = tmp_path / "out"
    shutil.copytree(root / "out", out)
    changed = study_file(tmp_path / "study.toml", catalogue, embedders=("mfcc_104",), ks=(5, 10, 20, 30))
    again = run_experiment(changed, out, num_workers=0, progress=False)
    status = {outcome.key: outcome.status for outcome in again.outcomes}
    assert status["split/seed-1"] == status["embed/mfcc_104"] == "skipped"
    assert {s for key, s in status.items() if key.startswith("run/")} == {"done"}
    assert set(again.results["k"]) == {5, 10, 20, 30}
    before = result.results.set_index(["model", "embedding", "split", "seed", "metric", "k"])["mean"]
    after = again.results.set_index(["model", "embedding", "split", "seed", "metric", "k"])["mean"]
    accuracy = before.index.get_level_values("metric").isin(["HitRate", "Precision", "Recall", "MRR", "NDCG"])
    pd.testing.assert_series_equal(after.loc[before.index[accuracy]], before[accuracy])


def test_one_seed_and_a_fixed_split_seed_share_one_split(catalogue, tmp_path):
    path = study_file(tmp_path / "study.toml", catalogue, models=("random", "pop"), modes=("test",), seeds=(3, 4),
                      embedders=(), extra="")
    text = path.read_text().replace('protocol = "sonic"', 'protocol = "sonic"\nseed = 42')
    path.write_text(text)
    result = run_experiment(path, tmp_path / "out", num_workers=0, progress=False)
    assert [o.key for o in result.outcomes if o.key.startswith("split")] == ["split/seed-42"]
    assert set(runs(tmp_path / "out" / "results")["split_seed"]) == {42}


def test_a_failed_step_is_reported_and_the_rest_go_on(catalogue, tmp_path):
    strangers = tmp_path / "strangers"
    strangers.mkdir()
    for number, source in enumerate(sorted(catalogue.audio_dir.glob("*.mp3"))[:3]):
        shutil.copy(source, strangers / f"stranger{number}.mp3")  # tracks nobody listened to
    path = study_file(tmp_path / "study.toml", catalogue, models=("pop", "knn"), modes=("test",), seeds=(1,),
                      audio=strangers)
    command = [sys.executable, "-m", "sonic", "experiment", str(path), "--out", str(tmp_path / "out"),
               "--num-workers", "0"]
    first = subprocess.run(command, capture_output=True, text=True)
    assert first.returncode == 1, first.stderr
    assert "run knn-mfcc_104-seed1: FAILED: none of the" in first.stdout
    assert "sonic: failed: run/knn-mfcc_104-seed1: none of the" in first.stderr
    assert "1 of 4 steps did not finish" in first.stderr and "Traceback" not in first.stderr
    assert "pop / -" in first.stdout
    record = json.loads((tmp_path / "out" / "steps" / "run.knn-mfcc_104-seed1.json").read_text())
    assert record["status"] == "failed" and "has a vector" in record["error"]
    second = subprocess.run(command, capture_output=True, text=True)
    assert "run pop---seed1: done earlier, skipped" in second.stdout
    assert "run knn-mfcc_104-seed1: FAILED" in second.stdout  # a failed step is tried again


def test_recommender_warnings_are_printed_and_stored_with_the_run(catalogue, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(catalogue.audio_dir, partial)
    for source in sorted(partial.glob("*.mp3"))[::2]:
        source.unlink()  # half the tracks lose their audio, so knn has no vector for them
    path = study_file(tmp_path / "study.toml", catalogue, models=("knn",), modes=("test",), seeds=(1,), audio=partial)
    result = subprocess.run([sys.executable, "-m", "sonic", "experiment", str(path), "--out", str(tmp_path / "out"),
                             "--num-workers", "0"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if line.startswith("sonic: warning: knn-mfcc_104-seed1")]
    assert warning and "train tracks have no vector in the embedding table" in warning[0]
    kept = (tmp_path / "out" / "runs" / "knn-mfcc_104-seed1" / "warnings.txt").read_text()
    assert "train tracks have no vector" in kept
    stored = json.loads(runs(tmp_path / "out" / "results")["warnings"].iat[0])
    assert stored == kept.splitlines()
