"""A study killed with SIGKILL during a search resumes with the same trials and makes the same choice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from search_fixtures import search_study, taste_with_cold

from sonic.study import run_experiment, store

SEARCH = "search = { l2 = { low = 0.5, high = 5000.0, log = true }, min_listeners = [1, 2] }\ntrials = 9"


def finished_trials(records) -> dict[str, bytes]:
    finished = {}
    for path in records.glob("trial.*.json"):
        content = path.read_bytes()
        try:
            if json.loads(content)["status"] == "done":
                finished[path.name] = content
        except ValueError:
            pass  # being written
    return finished


@pytest.mark.parametrize("moment", [int(n) for n in np.random.default_rng(2026).integers(1, 8, size=2)])
def test_a_search_killed_mid_way_resumes_to_the_same_choice(tmp_path, moment):
    events = taste_with_cold(tmp_path / "events.csv")
    path = search_study(tmp_path / "study.toml", events, search=SEARCH)
    whole = run_experiment(path, tmp_path / "whole")

    out = tmp_path / "killed"
    command = [sys.executable, "-m", "sonic", "experiment", str(path), "--out", str(out), "--num-workers", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                               start_new_session=True)
    deadline = time.monotonic() + 300
    while len(finished_trials(out / "steps")) < moment:  # the seeded moment: after this many trials
        assert process.poll() is None and time.monotonic() < deadline, "the study ended before it could be killed"
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    done = finished_trials(out / "steps")
    assert moment <= len(done) < 9

    lines = []
    resumed = run_experiment(path, out, echo=lines.append)
    assert not resumed.failures
    assert sum(line.endswith("(done earlier)") for line in lines) == len(done)
    for name, content in done.items():
        assert (out / "steps" / name).read_bytes() == content, f"{name} was redone"
    columns = ["trial", "number", "params", "value", "ci_low", "ci_high", "n_users", "hash"]
    pd.testing.assert_frame_equal(store.trials(resumed.store_dir)[columns], store.trials(whole.store_dir)[columns])
    chosen = [store.runs(result.store_dir).set_index("run").loc["ease---seed7", ["options", "chosen_by"]].tolist()
              for result in (whole, resumed)]
    assert chosen[0] == chosen[1]
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), pd.read_csv(tmp_path / "whole" / "results.csv"))
    assert not list(out.rglob(".*.tmp"))
