"""Killed anywhere, resumed to the same results: a small study and a small `sonic embed`, each killed with
SIGKILL at moments drawn (with a fixed seed) across the measured length of an uninterrupted run, then
rerun to completion. The resumed outputs must equal the uninterrupted run's: embedding tables bit for bit
(ids and vectors), results.csv equal, per-user values equal.

Kill moments are counted from the moment the command's output folder appears (before it, a kill leaves
nothing to resume: Python is still importing, and how long that takes varies more under load than the
whole run lasts). Their window is the shorter working time of two uninterrupted runs, whose outputs must
agree too: from the output folder to the command's last output (results.csv, the table); one moment is
drawn uniformly in each of :data:`KILLS` equal slices of it. The kill points, what each kill left on disk, and the test's time are printed (``pytest -s``
shows them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from study_fixtures import study_file

from sonic.demo import CatalogueConfig, generate_catalogue
from sonic.study import store
from sonic.tails.table import read_embeddings

pytestmark = pytest.mark.slow

#: How many kills per command, and the seed of their moments.
KILLS = 12
SEED = 2024
#: 4 clips of 2 s per style: 32 tracks.
CATALOGUE = CatalogueConfig(tracks_per_style=4, n_users=60, clip_seconds=2.0, seed=5)
SRC = Path(__file__).resolve().parents[1] / "src"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
       "PYTHONUNBUFFERED": "1"}  # fmt: skip


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    return generate_catalogue(tmp_path_factory.mktemp("catalogue"), CATALOGUE, num_workers=2)


def sonic(*args: object) -> list[str]:
    return [sys.executable, "-m", "sonic", *map(str, args)]


def timed(command: list[str]) -> float:
    """Run ``command`` to the end (it must succeed); its wall time in seconds."""
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return time.perf_counter() - started


def watched(command: list[str], out: Path, last: Path) -> tuple[float, float]:
    """Run ``command`` to the end (it must succeed): (seconds until ``out`` exists, until ``last`` does)."""
    started = time.perf_counter()
    errors = out.with_name(f"{out.name}.stderr")
    with open(errors, "w") as stream:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stream, env=ENV)
    first = end = None
    while process.poll() is None:
        if first is None and out.exists():
            first = time.perf_counter() - started
        if end is None and last.exists():
            end = time.perf_counter() - started
        time.sleep(0.002)
    stop = time.perf_counter() - started
    assert process.returncode == 0, errors.read_text()[-3000:]
    return (first if first is not None else stop), (end if end is not None else stop)


def kill_after(command: list[str], out: Path, seconds: float) -> bool:
    """Start ``command``; SIGKILL its whole process group ``seconds`` after ``out`` appears; whether it was
    still running then."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
                               start_new_session=True)
    while not out.exists() and process.poll() is None:
        time.sleep(0.002)
    try:
        process.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True


def moments(runs: list[tuple[float, float]]) -> list[float]:
    """:data:`KILLS` delays after the output folder appears, spread over the shorter working time of ``runs``:
    one drawn uniformly in each of KILLS equal slices."""
    window = min(end - first for first, end in runs)
    rng = np.random.default_rng(SEED)
    return [float((slot + rng.uniform()) * window / KILLS) for slot in range(KILLS)]


def same_table(path: Path, reference: Path) -> None:
    table, expected = read_embeddings(path), read_embeddings(reference)
    assert table.track_ids.tolist() == expected.track_ids.tolist()
    assert table.vectors.dtype == expected.vectors.dtype and np.array_equal(table.vectors, expected.vectors)
    assert table.vectors.tobytes() == expected.vectors.tobytes()


def per_user(out: Path) -> pd.DataFrame:
    frame = store.per_user(out / "results")
    keys = ["model", "embedding", "split", "seed", "metric", "k", "user_id"]
    return frame.sort_values(keys).reset_index(drop=True)


def leftovers(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.name.endswith((".tmp", ".partial")) or ".work-" in path.name]


def study_state(out: Path) -> str:
    """What a killed study left: its finished steps, the step it was in, the embedder's shards."""
    import json

    done, running = 0, []
    for path in sorted((out / "steps").glob("*.json")) if (out / "steps").is_dir() else []:
        status = json.loads(path.read_text())["status"]
        done += status == "done"
        running += [path.stem] if status == "running" else []
    shards = len(list((out / "embeddings").glob("*.shards/*.parquet"))) if (out / "embeddings").is_dir() else 0
    if not out.exists():
        return "nothing written yet"
    if not (out / "steps").is_dir():
        return "folder claimed, no step started"
    return f"{done} of 9 steps done" + (f", in {running[0]}" if running else "") + (f", {shards} shards" if shards else "")


def embed_state(out: Path) -> str:
    shards = len(list(out.glob("*.shards/*.parquet"))) if out.is_dir() else 0
    table = (out / "mfcc_104.parquet").exists()
    return "table written" if table else f"{shards} of 32 shards" if out.is_dir() else "nothing written yet"


def report(what: str, runs: list[tuple[float, float]], points: list[tuple[float, bool, str]], started: float) -> None:
    spans = ", ".join(f"output folder at {first:.2f} s, last output at {end:.2f} s" for first, end in runs)
    print(f"\n{what}: uninterrupted runs: {spans}; SIGKILL this long after the output folder appeared:")
    for seconds, killed, state in points:
        print(f"  {seconds:5.2f} s: {state if killed else 'the run had ended'}")
    print(f"  whole test {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.2f}")


def test_a_study_killed_anywhere_resumes_to_the_uninterrupted_results(catalogue, tmp_path):
    started = time.perf_counter()
    path = study_file(tmp_path / "study.toml", catalogue, models=("random", "pop", "knn"), ks=(5, 10), seeds=(1, 2))
    whole, again = tmp_path / "whole", tmp_path / "again"
    runs = [watched(sonic("experiment", path, "--out", out, "--num-workers", "2"), out, out / "results.csv")
            for out in (whole, again)]
    expected_results, expected_users = pd.read_csv(whole / "results.csv"), per_user(whole)
    pd.testing.assert_frame_equal(pd.read_csv(again / "results.csv"), expected_results, check_exact=True)
    points = []
    for number, seconds in enumerate(moments(runs)):
        out = tmp_path / f"killed-{number}"
        killed = kill_after(sonic("experiment", path, "--out", out, "--num-workers", "2"), out, seconds)
        points.append((seconds, killed, study_state(out)))
        timed(sonic("experiment", path, "--out", out, "--num-workers", "2"))
        where = f"killed after {seconds:.2f} s"
        pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), expected_results, check_exact=True, obj=where)
        pd.testing.assert_frame_equal(per_user(out), expected_users, check_exact=True, obj=where)
        same_table(out / "embeddings" / "mfcc_104.parquet", whole / "embeddings" / "mfcc_104.parquet")
        assert len(list((out / "steps").glob("*.json"))) == 9
        assert not leftovers(out), where
    report("study", runs, points, started)
    assert sum(killed for _, killed, _ in points) >= KILLS - 2  # a late slice may end with a faster run


def test_sonic_embed_killed_anywhere_resumes_to_the_same_table(catalogue, tmp_path):
    started = time.perf_counter()
    command = ["embed", "--model-type", "mfcc_104", "--audio-dir", catalogue.audio_dir, "--num-workers", "2",
               "--shard-size", "1", "--batch-size", "1"]
    whole, again = tmp_path / "whole", tmp_path / "again"
    runs = [watched(sonic(*command, "--out", out), out, out / "mfcc_104.parquet") for out in (whole, again)]
    same_table(again / "mfcc_104.parquet", whole / "mfcc_104.parquet")
    points = []
    for number, seconds in enumerate(moments(runs)):
        out = tmp_path / f"killed-{number}"
        killed = kill_after(sonic(*command, "--out", out), out, seconds)
        points.append((seconds, killed, embed_state(out)))
        timed(sonic(*command, "--out", out))
        same_table(out / "mfcc_104.parquet", whole / "mfcc_104.parquet")
        assert (out / "mfcc_104.failures.csv").read_bytes() == (whole / "mfcc_104.failures.csv").read_bytes()
        assert not leftovers(out), f"killed after {seconds:.2f} s"
    report("sonic embed", runs, points, started)
    assert sum(killed for _, killed, _ in points) >= KILLS - 2
