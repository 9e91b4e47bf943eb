"""A study's run on Ray whose worker dies is that step's failure: the others finish, results.csv is
written, and the command exits 1 naming the step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from study_fixtures import content_free_study, taste_events

pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # a local Ray starts in a subprocess (about 10 s)

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"

DRIVER = """
import sys
sys.path[:0] = [{src!r}, {tests!r}]
import ray
ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR",
         runtime_env={{"env_vars": {{"PYTHONPATH": {path!r}}},
                      "worker_process_setup_hook": "study_fixtures.register_test_recommenders"}})
from study_fixtures import register_test_recommenders
register_test_recommenders()
from sonic.cli import main
main(["experiment", {study!r}, "--out", {out!r}, "--engine", "ray"])
"""


def test_a_ray_task_that_kills_its_worker_fails_its_step_and_the_study_goes_on(tmp_path):
    events = taste_events(tmp_path / "events.csv")
    study = content_free_study(tmp_path / "study.toml", events, recommenders=("random", "crash", "pop"), seeds=(7,))
    out = tmp_path / "out"
    path = os.pathsep.join([str(SRC), str(TESTS)])
    script = DRIVER.format(src=str(SRC), tests=str(TESTS), path=path, study=str(study), out=str(out))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                            timeout=400, env={**os.environ, "PYTHONPATH": path})
    assert result.returncode == 1, result.stderr[-3000:]
    assert "run pop---seed7: done on ray" in result.stdout and "run random---seed7: done on ray" in result.stdout
    assert "[3/4] run crash---seed7: FAILED on ray: its Ray task died (" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("sonic: ")]
    assert errors[0].startswith("sonic: failed: run/crash---seed7: its Ray task died (")
    assert errors[1] == ("sonic: 1 of 4 steps did not finish; fix the cause and run again: finished steps are kept")
    table = pd.read_csv(out / "results.csv")
    assert set(table["model"]) == {"random", "pop"} and len(table) > 0
    record = json.loads((out / "steps" / "run.crash---seed7.json").read_text())
    assert record["status"] == "failed" and record["error"].startswith("its Ray task died (")
    assert record["identity"]["settings"]["recommender"] == "crash"
