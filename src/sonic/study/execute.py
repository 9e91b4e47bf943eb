"""Run a study: its steps in order, finished ones skipped, a failure reported while the rest go on.

Output folder (``OUT``)::

    study.toml                 the study as run (absolute paths)
    split/seed-<n>/            split folders (sonic data-split's format)
    embeddings/<name>.parquet  embedding tables named by the registry's name (+ manifest, failures)
    runs/<run>/                run folders (sonic run-model's: every mode evaluated; warnings.txt when it warns)
    steps/<kind>.<name>.json   one record per finished or failed step: hash, status, seconds, warnings
    results/                   the results store (:mod:`sonic.study.store`)
    results.csv                one row per run, metric and k (:data:`sonic.study.store.RESULT_COLUMNS`)

Every output is written under a temporary name and renamed, and a step's record is written last,
so a run killed at any moment (even by SIGKILL) resumes where it stopped and ends with the same results.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sonic.cluster import check_engine, import_ray
from sonic.study import store
from sonic.study.check import check_study
from sonic.study.config import Study, read_study
from sonic.study.on_ray import RunsOnRay, run_steps_on_ray
from sonic.study.step_runner import Echo, StepContext, StepOutcome, run_step
from sonic.study.steps import Step, plan_steps, read_record, step_hash


@dataclass(frozen=True)
class ExperimentResult:
    """What a study run produced: the step outcomes, the results table and where everything is."""

    study: Study
    out_dir: Path
    outcomes: tuple[StepOutcome, ...]
    results: pd.DataFrame
    results_path: Path
    store_dir: Path

    @property
    def failures(self) -> tuple[StepOutcome, ...]:
        return tuple(outcome for outcome in self.outcomes if outcome.status in ("failed", "blocked"))


def run_experiment(
    study: Study | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    num_workers: int | None = None,
    progress: bool = True,
    echo: Echo | None = None,
    warn: Echo | None = None,
    engine: str | None = None,
    ray_address: str | None = None,
    gpus_per_run: float = 0.0,
) -> ExperimentResult:
    """Check ``study`` (a :class:`Study` or a study file), then run its steps into ``out_dir``.

    ``echo`` receives one line per step, ``warn`` each warning a recommender gives (both optional).
    ``engine`` ``"ray"`` embeds on a Ray cluster (``ray_address``) and sends the recommender runs
    there as tasks (:mod:`sonic.study.on_ray`, ``gpus_per_run`` GPUs for each neural run); None takes
    the study file's ``[embeddings] engine`` and ``ray_address`` for both. Results are the same.
    Nothing is written when the study has a mistake (a :class:`SonicError` is raised first).
    """
    study = study if isinstance(study, Study) else read_study(study)
    engine = check_engine(study.embeddings.engine if engine is None else engine)
    ray_address = study.embeddings.ray_address if ray_address is None else ray_address
    if engine == "ray":
        import_ray()  # before any work: without Ray, one sentence on how to install it
    on_ray = RunsOnRay(address=ray_address, gpus_per_run=gpus_per_run)
    resolved = check_study(study)
    out_dir = Path(out_dir)
    steps = plan_steps(resolved)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_study_file(study, out_dir / "study.toml")
    context = StepContext(resolved, out_dir, num_workers, progress, warn or _no_warning, engine, ray_address)
    outcomes: list[StepOutcome | None] = []
    deferred: list[tuple[Step, str]] = []  # run steps sent to Ray once the steps before them are done
    numbers: dict[str, tuple[int, str]] = {}  # a deferred step's key -> (its place in outcomes, its prefix)
    hashes: dict[str, str] = {}
    failed: set[str] = set()
    for number, step in enumerate(steps, start=1):
        prefix = f"[{number}/{len(steps)}] {step.kind} {step.name}"
        blocked = [key for key in step.needs if key in failed]
        if blocked:
            failed.add(step.key)
            outcomes.append(StepOutcome(step.key, "blocked", message=f"needs {blocked[0]}, which failed"))
            _say(echo, f"{prefix}: not run, needs {blocked[0]}, which failed")
            continue
        digest = hashes[step.key] = step_hash(step, hashes)
        record = read_record(step.record_path(out_dir))
        if record is not None and record.get("hash") == digest and record.get("status") == "done":
            outcomes.append(StepOutcome(step.key, "skipped", warnings=tuple(record.get("warnings", ()))))
            _say(echo, f"{prefix}: done earlier, skipped")
            continue
        if engine == "ray" and step.kind == "run":
            numbers[step.key] = (len(outcomes), prefix)
            outcomes.append(None)
            deferred.append((step, digest))
            continue
        outcome = run_step(context, step, digest)
        outcomes.append(outcome)
        if outcome.status == "failed":
            failed.add(step.key)
            _say(echo, f"{prefix}: FAILED: {outcome.message}")
        else:
            _say(echo, f"{prefix}: done ({outcome.seconds:.1f} s)")

    def finished_on_ray(step: Step, outcome: StepOutcome) -> None:
        place, prefix = numbers[step.key]
        outcomes[place] = outcome
        if outcome.status == "failed":
            _say(echo, f"{prefix}: FAILED on ray: {outcome.message}")
            return
        for line in outcome.warnings:
            context.warn(f"{step.name}: {line}")
        _say(echo, f"{prefix}: done on ray ({outcome.seconds:.1f} s)")

    run_steps_on_ray(context, deferred, on_ray, finished_on_ray)
    store_dir = out_dir / store.STORE_DIR
    runs = [step.name for step in steps if step.kind == "run"]
    store.prune(store_dir, runs)
    results = _results_table(store_dir, runs, study.evaluation.modes)
    results_path = out_dir / "results.csv"
    tmp = results_path.with_name(".results.csv.tmp")
    results.to_csv(tmp, index=False)
    os.replace(tmp, results_path)
    finished = tuple(outcome for outcome in outcomes if outcome is not None)
    return ExperimentResult(study, out_dir, finished, results, results_path, store_dir)


def _results_table(store_dir: Path, runs: list[str], modes: tuple[str, ...]) -> pd.DataFrame:
    """One row per run, slice (split), metric and k, in the order of the study's runs and modes."""
    from sonic.rouge.beyond import BEYOND_NAMES
    from sonic.rouge.metrics import METRIC_NAMES

    columns = list(store.RESULT_COLUMNS)
    if not (store_dir / "runs").is_dir() or not any((store_dir / "runs").glob("*.parquet")):
        return pd.DataFrame(columns=columns)
    frame = store.query(store_dir)
    run_order = {run: position for position, run in enumerate(runs)}
    metric_order = {name: position for position, name in enumerate((*METRIC_NAMES, *BEYOND_NAMES))}
    mode_order = {mode: position for position, mode in enumerate(modes)}
    frame = frame.assign(_run=frame["run"].map(run_order), _mode=frame["split"].map(mode_order).fillna(99),
                         _metric=frame["metric"].map(metric_order).fillna(99))
    frame = frame.sort_values(["_run", "_mode", "_metric", "k"], kind="stable")
    return frame.loc[:, columns].reset_index(drop=True)


def _write_study_file(study: Study, path: Path) -> None:
    import tomli_w

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(tomli_w.dumps(study.to_dict()))
    os.replace(tmp, path)


def _no_warning(line: str) -> None:
    """Where warnings go when nobody asked for them."""


def _say(echo: Echo | None, line: str) -> None:
    if echo is not None:
        echo(line)
