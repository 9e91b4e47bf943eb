"""A step's code in its identity: the source files it reaches, so an edited sonic redoes what it reaches,
says which files changed, and leaves alone the steps an unrelated edit cannot touch."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from study_fixtures import content_free_study, taste_events

from sonic.study import check_study, parse_study
from sonic.study.code import SOURCE_ROOT, SourceGraph, step_code
from sonic.study.steps import plan_steps, step_identity, why_redone

SRC = SOURCE_ROOT.parent


@pytest.fixture
def sonic_copy(tmp_path) -> Path:
    """A copy of this sonic's source (``<tmp>/src/sonic``) to edit."""
    shutil.copytree(SOURCE_ROOT, tmp_path / "src" / "sonic", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "src" / "sonic"


def append(path: Path, line: str = "# edited\n") -> None:
    path.write_text(path.read_text() + line)


def test_a_step_reaches_its_own_modules_and_its_registry_entry_only(tmp_path):
    graph = SourceGraph()
    run_pop = step_code(graph, "run", ("sonic.rouge.models.baselines",))
    run_knn = step_code(graph, "run", ("sonic.rouge.models.knn",))
    embed = step_code(graph, "embed", ("sonic.tails.models.mfcc",))
    split = step_code(graph, "split")
    assert {"sonic/rouge/run.py", "sonic/rouge/metrics.py", "sonic/rouge/evaluate.py",
            "sonic/rouge/models/baselines.py"} <= set(run_pop)
    assert "sonic/rouge/models/knn.py" not in run_pop and "sonic/rouge/models/knn.py" in run_knn
    assert not {"sonic/rouge/models/ease.py", "sonic/rouge/models/bert4rec.py"} & (set(run_pop) | set(run_knn))
    assert {"sonic/tails/runner.py", "sonic/tails/models/mfcc.py", "sonic/cream/spectra/core.py"} <= set(embed)
    assert not any(path.startswith(("sonic/tails/models/mert", "sonic/tails/models/dino")) for path in embed)
    assert "sonic/cream/data/leave_last_out.py" in split  # a splitter the protocol table names lazily
    assert not any(path.startswith(("sonic/study/", "sonic/rouge/", "sonic/demo/")) for path in split)
    for code in (run_pop, embed, split):
        for path, digest in code.items():
            assert len(digest) == 64 and (SRC / path).is_file()


def test_editing_a_module_a_step_uses_makes_it_stale_and_names_the_file(sonic_copy, tmp_path):
    events = taste_events(tmp_path / "events.csv")
    resolved = check_study(parse_study({"data": {"events": str(events)}, "recommenders": [{"name": "pop"}],
                                        "evaluation": {"seeds": [7], "ks": [3]}, "report": {"k": 3}}))
    split, run = plan_steps(resolved)

    def identities() -> tuple[dict, dict]:
        graph = SourceGraph(sonic_copy)
        first = step_identity(split, {}, graph)
        from sonic.study.steps import identity_hash

        return first, step_identity(run, {split.key: identity_hash(first)}, graph)

    split_before, run_before = identities()
    append(sonic_copy / "rouge" / "metrics.py")
    split_after, run_after = identities()
    assert split_after == split_before
    assert run_after != run_before
    assert why_redone({"identity": run_before}, run_after) == "its code changed (sonic/rouge/metrics.py)"
    append(sonic_copy / "study" / "report" / "page.py")  # the report: no step runs it
    append(sonic_copy / "tails" / "models" / "mert.py")  # an embedder this study does not use
    append(sonic_copy / "rouge" / "models" / "ease.py")  # a recommender this study does not use
    assert identities() == (split_after, run_after)
    append(sonic_copy / "cream" / "data" / "splits.py")
    split_edited, run_edited = identities()
    assert why_redone({"identity": split_after}, split_edited) == "its code changed (sonic/cream/data/splits.py)"
    assert why_redone({"identity": run_after}, run_edited) == (
        "its code changed (sonic/cream/data/splits.py); split/seed-7 changed")


@pytest.mark.slow
def test_an_edited_sonic_redoes_what_the_edit_reaches_and_says_why(sonic_copy, tmp_path):
    """The whole command, run by the edited copy of sonic (the code fingerprinted is the code that runs)."""
    events = taste_events(tmp_path / "events.csv")
    path = content_free_study(tmp_path / "study.toml", events, seeds=(7,))
    env = {"PYTHONPATH": str(sonic_copy.parent), "PATH": "/usr/bin:/bin"}

    def experiment() -> list[str]:
        result = subprocess.run([sys.executable, "-m", "sonic", "experiment", str(path), "--out", str(tmp_path / "out"),
                                 "--num-workers", "0"], capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
        return [line for line in result.stdout.splitlines() if line.startswith("[")]

    assert all(line.endswith("s)") for line in experiment())
    append(sonic_copy / "rouge" / "metrics.py")
    lines = experiment()
    assert lines == [
        "[1/3] split seed-7: done earlier, skipped",
        "[2/3] run random---seed7: redone, its code changed (sonic/rouge/metrics.py)",
        lines[2],
        "[3/3] run pop---seed7: redone, its code changed (sonic/rouge/metrics.py)",
        lines[4],
    ]
    assert lines[2].startswith("[2/3] run random---seed7: done (") and lines[4].startswith("[3/3] run pop---seed7: done (")
    append(sonic_copy / "rouge" / "models" / "baselines.py", '"""An edited docstring."""\n')
    lines = experiment()
    assert "[2/3] run random---seed7: redone, its code changed (sonic/rouge/models/baselines.py)" in lines
    append(sonic_copy / "demo" / "styles.py")
    append(sonic_copy / "study" / "report" / "page.py")
    assert all(line.endswith("done earlier, skipped") for line in experiment())
