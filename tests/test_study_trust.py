"""Outputs a study can be trusted with: results follow the steps on disk, one writer per output folder,
the study file a person keeps is never written, and --where reads the store and nothing else.

Content-free studies (random, pop) on generated events: fast, no audio.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from study_fixtures import content_free_study, register_test_recommenders, taste_events

from sonic.cli import main
from sonic.errors import SonicError
from sonic.rouge.base import RECOMMENDERS
from sonic.study import run_experiment, store

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    return taste_events(tmp_path_factory.mktemp("events") / "events.csv")


@pytest.fixture
def test_recommenders(monkeypatch):
    """``broken`` and ``crash`` registered for this test only."""
    monkeypatch.setattr(RECOMMENDERS, "_entries", dict(RECOMMENDERS._entries))
    register_test_recommenders()


def run(path, out, **options):
    return run_experiment(path, out, num_workers=0, progress=False, **options)


def sonic(*args, env=None) -> subprocess.CompletedProcess:
    environment = {"PYTHONPATH": f"{SRC}", "PATH": "/usr/bin:/bin"} if env is None else env
    return subprocess.run([sys.executable, "-m", "sonic", *map(str, args)], capture_output=True, text=True,
                          env=environment, timeout=300)


def test_a_recommender_dropped_and_added_back_is_in_the_results_again(events, tmp_path):
    both = content_free_study(tmp_path / "both.toml", events, recommenders=("random", "pop"))
    one = content_free_study(tmp_path / "one.toml", events, recommenders=("random",))
    out = tmp_path / "out"
    first = run(both, out)
    assert set(first.results["model"]) == {"random", "pop"}
    second = run(one, out)
    assert set(second.results["model"]) == {"random"}
    assert not list((out / "steps").glob("run.pop-*.json"))  # pruning took pop's records with its rows
    assert not (out / "runs" / "pop---seed7").exists()
    third = run(both, out)
    status = {outcome.key: outcome.status for outcome in third.outcomes}
    assert status["run/pop---seed7"] == status["run/pop---seed8"] == "done"
    assert status["run/random---seed7"] == "skipped"
    table = pd.read_csv(out / "results.csv")
    assert set(table["model"]) == {"random", "pop"}
    pd.testing.assert_frame_equal(third.results.reset_index(drop=True), first.results.reset_index(drop=True))
    assert set(store.query(out / "results")["model"]) == {"random", "pop"}


def test_a_failed_rerun_with_changed_settings_leaves_no_row_of_the_old_ones(events, tmp_path, test_recommenders):
    out = tmp_path / "out"
    good = content_free_study(tmp_path / "good.toml", events, recommenders=("random", ("pop", "best")))
    first = run(good, out)
    assert set(first.results["model"]) == {"random", "best"}
    changed = content_free_study(tmp_path / "changed.toml", events, recommenders=("random", ("broken", "best")))
    second = run(changed, out)
    assert {outcome.key for outcome in second.failures} == {"run/best---seed7", "run/best---seed8"}
    assert set(second.results["model"]) == {"random"}
    assert set(pd.read_csv(out / "results.csv")["model"]) == {"random"}
    for reader in (store.query, store.per_user, store.runs):
        frame = reader(out / "results")
        assert "best" not in set(frame.get("model", frame.get("label"))), reader.__name__
    for table in store.TABLES:  # not hidden: gone
        assert not list((out / "results" / table).glob("best-*.parquet"))
    assert not (out / "runs" / "best---seed7").exists()
    record = json.loads((out / "steps" / "run.best---seed7.json").read_text())
    assert record["status"] == "failed" and "this recommender always fails" in record["error"]


def test_the_readers_take_only_rows_of_current_finished_steps(events, tmp_path):
    path = content_free_study(tmp_path / "study.toml", events)
    out = tmp_path / "out"
    first = run(path, out)
    record = out / "steps" / "run.pop---seed8.json"
    done = record.read_text()
    record.write_text(done[: len(done) // 2])  # a record cut short by a kill
    assert "pop---seed8" not in set(store.runs(out / "results")["run"])
    assert set(store.query(out / "results")["run"]) == {"random---seed7", "pop---seed7", "random---seed8"}
    lines = []
    again = run(path, out, echo=lines.append)
    assert "[6/6] run pop---seed8: redone, its record steps/run.pop---seed8.json is not valid JSON (cut short?)" \
        in lines
    assert [outcome.status for outcome in again.outcomes].count("done") == 1
    pd.testing.assert_frame_equal(again.results, first.results)

    stale = json.loads(record.read_text()) | {"hash": "0" * 64}  # a record of other settings: its rows don't count
    record.write_text(json.dumps(stale))
    assert "pop---seed8" not in set(store.query(out / "results")["run"])


def test_a_store_without_a_plan_is_read_whole_but_for_runs_recorded_as_not_done(events, tmp_path):
    out = tmp_path / "out"
    run(content_free_study(tmp_path / "study.toml", events), out)
    (out / "results" / store.PLAN_FILE).unlink()  # as an earlier sonic left it
    assert len(store.runs(out / "results")) == 4
    failed = json.loads((out / "steps" / "run.pop---seed7.json").read_text()) | {"status": "failed"}
    (out / "steps" / "run.pop---seed7.json").write_text(json.dumps(failed))
    assert set(store.runs(out / "results")["run"]) == {"random---seed7", "random---seed8", "pop---seed8"}


def test_a_study_file_kept_in_the_output_folder_is_read_never_written(events, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "events.csv").write_bytes(events.read_bytes())
    text = ('# my study: comments stay\ntitle = "kept"\n[data]\nevents = "events.csv"  # relative\n'
            '[evaluation]\nmodes = ["test"]\nks = [3]\nseeds = [7]\n[report]\nk = 3\n'
            '[[recommenders]]\nname = "pop"\n')
    (out / "study.toml").write_text(text)
    with pytest.raises(SonicError, match="holds 'events.csv', which sonic did not write"):
        run(out / "study.toml", out)  # a data file in the folder is someone else's: refused, nothing written
    assert sorted(path.name for path in out.iterdir()) == ["events.csv", "study.toml"]
    data = tmp_path / "data"
    data.mkdir()
    (out / "events.csv").rename(data / "events.csv")
    (out / "study.toml").write_text(text.replace('"events.csv"', '"../data/events.csv"'))
    result = sonic("experiment", out / "study.toml", "--out", out, "--num-workers", "0")
    assert result.returncode == 0, result.stderr
    assert (out / "study.toml").read_text() == text.replace('"events.csv"', '"../data/events.csv"')
    resolved = (out / "study.resolved.toml").read_text()
    assert resolved.startswith(f"# The study as run from {out / 'study.toml'}, written by sonic ")
    assert Path(tomllib.loads(resolved)["data"]["events"]).resolve() == (data / "events.csv").resolve()
    again = sonic("experiment", out, "--num-workers", "0")  # the folder: its resolved study, run again
    assert again.returncode == 0, again.stderr
    assert "[2/2] run pop---seed7: done earlier, skipped" in again.stdout
    assert json.loads((out / ".sonic-output.json").read_text())["kind"] == "study"


def test_an_earlier_sonics_study_folder_is_adopted_and_read(events, tmp_path):
    out = tmp_path / "out"
    run(content_free_study(tmp_path / "study.toml", events), out)
    (out / ".sonic-output.json").unlink()
    (out / "study.resolved.toml").rename(out / "study.toml")  # what an earlier sonic wrote
    from sonic.study.layout import read_output_study

    assert read_output_study(out).title == "content-free"
    again = run(out, out)
    assert {outcome.status for outcome in again.outcomes} == {"skipped"}
    assert (out / "study.resolved.toml").is_file()


def test_two_studies_started_together_on_one_folder_one_runs_the_other_is_refused(events, tmp_path):
    path = content_free_study(tmp_path / "study.toml", events, seeds=(1, 2, 3, 4, 5, 6), ks=(3, 5, 10))
    out = tmp_path / "out"
    env = {"PYTHONPATH": f"{SRC}", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "sonic", "experiment", str(path), "--out", str(out), "--num-workers", "0"]
    first, second = (subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                     for _ in range(2))  # fmt: skip
    (out_a, err_a), (out_b, err_b) = first.communicate(timeout=300), second.communicate(timeout=300)
    codes = sorted([first.returncode, second.returncode])
    assert codes == [0, 2], (err_a, err_b)
    refused_pid, refused = (first.pid, err_a) if first.returncode == 2 else (second.pid, err_b)
    winner_pid = second.pid if refused_pid == first.pid else first.pid
    assert refused.count("\n") == 1 and refused.startswith("sonic: error: ")
    assert f"is being written by process {winner_pid} (sonic experiment {path}" in refused
    alone = tmp_path / "alone"
    single = subprocess.run([*command[:-4], "--out", str(alone), "--num-workers", "0"], capture_output=True,
                            text=True, env=env, timeout=300)
    assert single.returncode == 0, single.stderr
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), pd.read_csv(alone / "results.csv"))
    assert len(list((out / "steps").glob("*.json"))) == len(list((alone / "steps").glob("*.json"))) == 18


def test_where_reads_the_store_and_nothing_else(events, tmp_path, capsys):
    out = tmp_path / "out"
    run(content_free_study(tmp_path / "study.toml", events), out)
    target = tmp_path / "x.csv"
    attempts = [
        f"1=1; COPY (SELECT 1) TO '{target}'",
        "model IN (SELECT column0 FROM read_csv('/etc/passwd'))",
        f"1=1) UNION ALL SELECT * FROM read_csv('/etc/passwd') --",
        f"k IN (SELECT 1 FROM (COPY (SELECT 1) TO '{target}'))",
    ]
    for where in attempts:
        with pytest.raises(SystemExit) as exit_status:
            main(["results", str(out), "--where", where])
        assert exit_status.value.code == 2, where
        err = capsys.readouterr().err
        assert err.startswith("sonic: error: --where ") and err.count("\n") == 1, err
        assert not target.exists()
    with pytest.raises(SystemExit) as exit_status:
        main(["results", str(out), "--where", "metric = 'NDCG' AND k = 3 AND model = 'pop'"])
    assert exit_status.value.code == 0
    printed = capsys.readouterr().out
    assert "pop / -" in printed and "random / -" not in printed
    frame = store.query(out / "results", "seed = 7")
    assert set(frame["seed"]) == {7} and set(frame["model"]) == {"random", "pop"}
    assert set(store.per_user(out / "results", "value > 0")["model"]) <= {"random", "pop"}


def test_where_names_the_columns_when_the_condition_is_wrong(events, tmp_path):
    out = tmp_path / "out"
    run(content_free_study(tmp_path / "study.toml", events), out)
    with pytest.raises(SonicError, match="is not a valid condition on columns model, recommender, embedding"):
        store.query(out / "results", "no_such_column = 1")


def test_a_step_cut_short_is_a_gap_the_report_names(events, tmp_path):
    from sonic.study.report.data import read_step_records

    out = tmp_path / "out"
    run(content_free_study(tmp_path / "study.toml", events), out)
    record = out / "steps" / "run.pop---seed8.json"
    record.write_text(json.dumps(json.loads(record.read_text()) | {"status": "running"}))  # killed in this step
    failed, gaps = read_step_records(out)
    assert failed == [] and gaps == ["Step run/pop---seed8 was running when the study stopped, so its results are "
                                     "missing; run `sonic experiment` on the study again to finish it."]
    assert "pop---seed8" not in set(store.runs(out / "results")["run"])
