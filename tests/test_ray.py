"""The Ray engine (sonic.tails.ray_engine, sonic.study.on_ray) on a local Ray cluster started here:
the table equals the local runner's, a killed driver's rerun resumes, a study's runs on Ray give the
local results; and without Ray, one sentence on how to install it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from audio_fixtures import noise, tone, write
from ray_helpers import ActorMFCC, SlowActorMFCC

from sonic.cli import main
from sonic.errors import SonicError
from sonic.tails.runner import embed_folder
from sonic.tails.table import read_embeddings

ray = pytest.importorskip("ray")

RATE = 22050
TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


@pytest.fixture(scope="module")
def cluster():
    """A local Ray of 2 CPUs for this module; its workers import sonic and these tests' helpers."""
    path = os.pathsep.join([str(SRC), str(TESTS), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": path}})  # fmt: skip
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """13 wav files of distinct lengths, one broken file among them."""
    root = tmp_path_factory.mktemp("tracks")
    for i in range(13):
        seconds = 1.0 + i / 10
        write(root / f"t{i:02d}", tone(200.0 + 40 * i, seconds, RATE) + noise(seconds, RATE, seed=i), RATE)
    (root / "t05b.wav").write_bytes(b"")
    return root


def _table(path):
    table = read_embeddings(path)
    return dict(zip(table.track_ids.tolist(), table.vectors)), table.manifest


def _same_vectors(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for track in a:
        np.testing.assert_array_equal(a[track], b[track], err_msg=track)


@pytest.mark.parametrize("embedder", ["mfcc_20", "actor"])
def test_ray_gives_the_local_runners_table(cluster, folder, tmp_path, embedder):
    make = (lambda: "mfcc_20") if embedder == "mfcc_20" else ActorMFCC  # in loading tasks / in an actor
    local = embed_folder(folder, make(), tmp_path / "local", shard_size=4, batch_size=3, num_workers=2,
                         progress=False)
    on_ray = embed_folder(folder, make(), tmp_path / "ray", shard_size=4, batch_size=3, progress=False,
                          engine="ray")
    (vectors_local, manifest_local), (vectors_ray, manifest_ray) = _table(local.table_path), _table(on_ray.table_path)
    _same_vectors(vectors_local, vectors_ray)
    assert len(vectors_ray) == 13 and on_ray.n_failed == 1
    assert on_ray.failures == local.failures
    assert manifest_ray["engine"] == "ray" and manifest_local["engine"] == "local"
    ignored = {"created", "engine"}
    assert {k: v for k, v in manifest_ray.items() if k not in ignored} == {
        k: v for k, v in manifest_local.items() if k not in ignored
    }
    assert not (tmp_path / "ray" / "mfcc_20.shards").exists()


def test_a_ray_run_reuses_the_local_runners_shards(cluster, folder, tmp_path):
    """Shards are the same files whichever engine writes them: a ray rerun skips the local ones."""
    from sonic.tails.shard_work import ShardPlan  # noqa: F401  (the one plan both engines use)

    first = embed_folder(folder, "mfcc_20", tmp_path, shard_size=4, num_workers=0, progress=False)
    shards = tmp_path / "mfcc_20.shards"
    assert not shards.exists()
    again = embed_folder(folder, "mfcc_20", tmp_path, shard_size=4, progress=False, engine="ray")
    assert again.n_reused == 0 and again.n_embedded == first.n_embedded


DRIVER = """
import sys
sys.path[:0] = [{src!r}, {tests!r}]
import ray
ray.init(address={address!r}, logging_level="ERROR", runtime_env={{"env_vars": {{"PYTHONPATH": {path!r}}}}})
from ray_helpers import SlowActorMFCC
from sonic.tails.ray_engine import RayOptions
from sonic.tails.runner import embed_folder
embed_folder({folder!r}, SlowActorMFCC(), {out!r}, shard_size=2, batch_size=2, progress=False,
             engine="ray")
"""


@pytest.mark.slow
def test_a_killed_driver_leaves_finished_shards_and_a_rerun_resumes(cluster, folder, tmp_path):
    out = tmp_path / "out"
    script = DRIVER.format(src=str(SRC), tests=str(TESTS), folder=str(folder), out=str(out), address=cluster,
                           path=os.pathsep.join([str(SRC), str(TESTS)]))
    driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    shards = out / "mfcc_20.shards"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(shards.glob("0*.parquet"))) < 2 and driver.poll() is None:
        time.sleep(0.05)
    assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    driver.stderr.close()
    written = len(list(shards.glob("0*.parquet")))
    assert 2 <= written < 7 and not (out / "mfcc_20.parquet").exists()

    rerun = embed_folder(folder, SlowActorMFCC(seconds=0.0), out, shard_size=2, batch_size=2, progress=False,
                         engine="ray")
    assert rerun.n_reused >= 2 * written - 1  # every finished shard (one may hold the broken file)
    local = embed_folder(folder, "mfcc_20", tmp_path / "local", shard_size=2, batch_size=2, num_workers=0,
                         progress=False)
    _same_vectors(_table(rerun.table_path)[0], _table(local.table_path)[0])


def test_gpus_the_cluster_lacks_are_one_sentence(cluster, folder, tmp_path):
    from sonic.tails.ray_engine import RayOptions

    with pytest.raises(SonicError, match=r"asks for 1 GPU but the Ray cluster has 0; give fewer GPUs per actor"):
        embed_folder(folder, ActorMFCC(), tmp_path, progress=False, engine="ray", ray=RayOptions(gpus_per_actor=1))
    with pytest.raises(SonicError, match="2 model actors of 1 CPU leave no CPU for loading on a Ray cluster of 2"):
        embed_folder(folder, ActorMFCC(), tmp_path, progress=False, engine="ray", ray=RayOptions(actors=2))
    with pytest.raises(SonicError, match="ray actors must be a positive integer"):
        RayOptions(actors=0)


def test_unknown_engine_lists_the_known_ones(folder, tmp_path):
    with pytest.raises(SonicError, match="unknown engine 'dask'; known: local, ray"):
        embed_folder(folder, "mfcc_20", tmp_path, engine="dask")


def test_without_ray_the_cli_says_how_to_install_it(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if it were not installed
    with pytest.raises(SystemExit) as exit_status:
        main(["embed", "--model-type", "mfcc_20", "--audio-dir", str(folder), "--out", str(tmp_path),
              "--engine", "ray"])
    assert exit_status.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "sonic: error: the ray engine needs Ray, which is not installed; pip install 'sonic[ray]'"
    ]
    assert not list(tmp_path.iterdir())


def _sonic(*args: str) -> None:
    """Run a sonic command here; it must end with exit status 0."""
    try:
        main(list(args))
    except SystemExit as exit_status:
        assert exit_status.code in (0, None)


@pytest.mark.slow
def test_a_study_with_four_runs_on_ray_gives_the_local_results(cluster, tmp_path, capsys):
    """The study file says engine = "ray"; `sonic experiment --engine local` overrides it for the baseline."""
    from study_fixtures import study_file, tiny_catalogue

    from sonic.study import store

    catalogue = tiny_catalogue(tmp_path / "catalogue")
    path = study_file(tmp_path / "study.toml", catalogue, models=("pop", "knn"), modes=("test",), seeds=(1, 2))
    path.write_text(path.read_text().replace("[embeddings]\n", '[embeddings]\nengine = "ray"\n'))
    _sonic("experiment", str(path), "--out", str(tmp_path / "local"), "--engine", "local", "--num-workers", "2")
    assert "on ray" not in capsys.readouterr().out
    _sonic("experiment", str(path), "--out", str(tmp_path / "ray"))
    lines = capsys.readouterr().out.splitlines()
    assert sum("done on ray" in line for line in lines) == 4
    local, on_ray = (pd.read_csv(tmp_path / side / "results.csv") for side in ("local", "ray"))
    assert len(on_ray) > 0 and set(on_ray["model"]) == {"pop", "knn"} and set(on_ray["seed"]) == {1, 2}
    pd.testing.assert_frame_equal(on_ray, local, check_exact=False, rtol=1e-6)
    manifest = read_embeddings(tmp_path / "ray" / "embeddings" / "mfcc_104.parquet").manifest
    assert manifest["engine"] == "ray"
    assert len(store.runs(tmp_path / "ray" / store.STORE_DIR)) == 4
    _sonic("experiment", str(path), "--out", str(tmp_path / "ray"))
    assert all("done earlier, skipped" in line for line in capsys.readouterr().out.splitlines() if "] run " in line)


def test_an_unknown_engine_in_a_study_file_is_one_sentence(tmp_path):
    from sonic.study import run_experiment

    path = tmp_path / "study.toml"
    path.write_text('[data]\nevents = "events.tsv"\naudio = "audio"\n[embeddings]\nnames = ["mfcc_104"]\n'
                    'engine = "dask"\n[[recommenders]]\nname = "pop"\n')
    with pytest.raises(SonicError, match="unknown engine 'dask'; known: local, ray"):
        run_experiment(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_embed_engine_ray(cluster, folder, tmp_path, capsys):
    _sonic("embed", "--model-type", "mfcc_20", "--audio-dir", str(folder), "--out", str(tmp_path), "--engine", "ray",
           "--shard-size", "5")
    assert "embedded 13 tracks" in capsys.readouterr().out
    assert read_embeddings(tmp_path / "mfcc_20.parquet").manifest["engine"] == "ray"


def test_a_fitted_tabular_embedder_gives_the_local_table_on_ray(cluster, tmp_path):
    """The metadata embedder's scaling is fitted on the whole table by the driver; Ray embeds with that fit."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"track_id": [f"m{i}" for i in range(9)], "danceability": rng.uniform(size=9),
                          "energy": rng.uniform(size=9), "valence": rng.uniform(size=9),
                          "tempo": rng.uniform(60, 180, size=9), "popularity": rng.integers(0, 100, size=9)})
    frame.to_csv(tmp_path / "meta.csv", index=False)
    runs = {engine: embed_folder(None, "metadata", tmp_path / engine, metadata_file=tmp_path / "meta.csv",
                                 batch_size=2, shard_size=4, progress=False, engine=engine)
            for engine in ("local", "ray")}  # fmt: skip
    local, on_ray = (_table(runs[engine].table_path)[0] for engine in ("local", "ray"))
    _same_vectors(local, on_ray)
    assert len(on_ray) == 9
