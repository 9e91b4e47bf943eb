"""A study killed with SIGKILL halfway resumes without redoing finished steps and ends as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from study_fixtures import study_file, tiny_catalogue

pytestmark = pytest.mark.slow


def done(records) -> dict[str, bytes]:
    """The records of finished steps (a step in progress has a record saying running)."""
    finished = {}
    for path in records.glob("*.json"):
        content = path.read_bytes()
        if json.loads(content)["status"] == "done":
            finished[path.name] = content
    return finished


def experiment(path, out) -> list[str]:
    return [sys.executable, "-m", "sonic", "experiment", str(path), "--out", str(out), "--num-workers", "2"]


def test_a_killed_study_resumes_and_ends_with_the_same_results(tmp_path):
    catalogue = tiny_catalogue(tmp_path / "catalogue")
    path = study_file(tmp_path / "study.toml", catalogue)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    whole = subprocess.run(experiment(path, tmp_path / "whole"), capture_output=True, text=True, env=env)
    assert whole.returncode == 0, whole.stderr

    out = tmp_path / "killed"
    process = subprocess.Popen(experiment(path, out), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env=env, start_new_session=True)
    records = out / "steps"
    deadline = time.monotonic() + 300
    while sum(name.startswith("run.") for name in done(records)) < 2:  # splits, embedding and two of six runs
        assert process.poll() is None and time.monotonic() < deadline, "the study ended before it could be killed"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    process.stdout.close()
    finished = done(records)
    assert 5 <= len(finished) < 9

    resumed = subprocess.run(experiment(path, out), capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr
    skipped = [line for line in resumed.stdout.splitlines() if line.endswith("done earlier, skipped")]
    assert len(skipped) == len(finished)
    assert "embed mfcc_104: done earlier, skipped" in resumed.stdout
    for name, content in finished.items():
        assert (records / name).read_bytes() == content, f"{name} was redone"
    assert len(list(records.glob("*.json"))) == 9
    assert not list(out.rglob(".*.tmp"))
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), pd.read_csv(tmp_path / "whole" / "results.csv"))
