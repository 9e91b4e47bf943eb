"""The step graph on content-free recommenders: fast, no audio (the study tests with audio are slow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonic.study import check_study, parse_study, run_experiment
from sonic.study.steps import plan_steps, step_hash


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    """40 users, 30 tracks, plays over the sonic protocol's year; users prefer tracks near their own number."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(40):
        tracks = (user % 30 + rng.integers(-4, 5, size=25)) % 30
        times = pd.Timestamp("2018-03-01") + pd.to_timedelta(rng.uniform(0, 350, size=25), unit="D")
        rows += [(f"u{user}", f"t{track}", time) for track, time in zip(tracks, times)]
    path = tmp_path_factory.mktemp("events") / "events.csv"
    pd.DataFrame(rows, columns=["user_id", "track_id", "timestamp"]).to_csv(path, index=False)
    return path


def study(events, **evaluation):
    return parse_study({
        "data": {"events": str(events)},
        "recommenders": [{"name": "random"}, {"name": "pop"}],
        "evaluation": {"modes": ["val", "test"], "ks": [3, 5], "seeds": [7, 8], **evaluation},
        "report": {"k": 3},
    })  # fmt: skip


def test_steps_come_in_dependency_order_with_readable_names(events):
    steps = plan_steps(check_study(study(events)))
    assert [step.key for step in steps] == [
        "split/seed-7", "split/seed-8",
        "run/random---seed7", "run/pop---seed7", "run/random---seed8", "run/pop---seed8",
    ]  # fmt: skip
    assert steps[2].needs == ("split/seed-7",) and steps[-1].needs == ("split/seed-8",)
    assert steps[2].settings["modes"] == ["val", "test"]


def test_a_step_hash_follows_its_settings_inputs_and_upstream(events, tmp_path):
    steps = plan_steps(check_study(study(events)))
    split, run = steps[0], steps[2]
    upstream = {split.key: step_hash(split, {})}
    assert step_hash(run, upstream) == step_hash(run, dict(upstream))
    assert step_hash(run, {split.key: "other"}) != step_hash(run, upstream)
    other_ks = plan_steps(check_study(study(events, ks=[3, 6])))[2]
    assert step_hash(other_ks, upstream) != step_hash(run, upstream)
    copy = tmp_path / "events.csv"
    copy.write_bytes(events.read_bytes() + b"u0,t1,2018-05-01 00:00:00\n")
    moved = plan_steps(check_study(study(copy)))[0]
    assert step_hash(moved, {}) != step_hash(split, {})


def test_a_study_runs_and_a_rerun_skips_everything(events, tmp_path):
    first = run_experiment(study(events), tmp_path, num_workers=0, progress=False)
    assert [outcome.status for outcome in first.outcomes] == ["done"] * 6
    assert set(first.results["split"]) == {"val", "test"}
    assert set(first.results["model"]) == {"random", "pop"} and set(first.results["seed"]) == {7, 8}
    again = run_experiment(study(events), tmp_path, num_workers=0, progress=False)
    assert {outcome.status for outcome in again.outcomes} == {"skipped"}
    pd.testing.assert_frame_equal(again.results, first.results)
    fewer = run_experiment(study(events, seeds=[7]), tmp_path, num_workers=0, progress=False)
    assert {outcome.status for outcome in fewer.outcomes} == {"skipped"}
    assert set(fewer.results["seed"]) == {7}  # the store keeps the runs of the study as it now is
    assert len(list((tmp_path / "results" / "runs").glob("*.parquet"))) == 2
