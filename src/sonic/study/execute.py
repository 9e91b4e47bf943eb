"""Run a study: its steps in order, finished ones skipped, a failure reported while the rest go on.

Output folder (``OUT``, claimed with :func:`sonic.files.output_folder` as kind ``study`` and locked for
the whole run: a second study run into the same folder is refused, naming the first)::

    .sonic-output.json         sonic's marker (kind study, or demo for the demo's folder)
    study.resolved.toml        the study as run (absolute paths); a study file kept in OUT is never written
    split/seed-<n>/            split folders (sonic data-split's format)
    embeddings/<name>.parquet  embedding tables named by the registry's name (+ manifest, failures)
    runs/<run>/                run folders (sonic run-model's: every mode evaluated; warnings.txt when it warns)
    trials/<trial>/            a search's trial run folders (val only, no model; :mod:`sonic.study.tuning`)
    steps/<kind>.<name>.json   one record per step: hash, identity, status (running, done, failed), seconds, warnings
    results/                   the results store (:mod:`sonic.study.store`)
    results.csv                one row per run, metric and k (:data:`sonic.study.store.RESULT_COLUMNS`)

Every output is written through :mod:`sonic.files` (temporary name, fsync, rename), and a step's record
last, so a run killed at any moment (even by SIGKILL) resumes where it stopped and ends with the same
results. ``results.csv`` and the store's readers hold only the rows of current, finished steps.

A run whose options a search chooses (:mod:`sonic.study.tuning`) gets its identity once its search has
chosen: the search's trials run when the search step comes, each trial's hash is added to the store's
``steps.json`` as it is made, and so is the run's when its options are known.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sonic.cluster import check_engine, import_ray
from sonic.files import atomic_path, output_folder, remove_temporaries, write_text
from sonic.parallel import worker_count
from sonic.study import layout, store, tuning
from sonic.study.check import check_study
from sonic.study.code import SourceGraph
from sonic.study.config import Study, read_study
from sonic.study.on_ray import RunsOnRay, run_steps_on_ray
from sonic.study.step_runner import Echo, StepContext, StepOutcome, forget_run, run_embed_pass, run_step
from sonic.study.steps import Step, identity_hash, plan_steps, step_identity, why_redone


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
    """Check ``study`` (a :class:`Study`, a study file, or a study's output folder: its resolved study),
    then run its steps into ``out_dir``.

    ``echo`` receives one line per step (and, before a step redone, why: ``redone, its code changed
    (sonic/rouge/metrics.py)``), ``warn`` each warning a recommender gives (both optional).
    ``engine`` ``"ray"`` embeds on a Ray cluster (``ray_address``) and sends the recommender runs
    there as tasks (:mod:`sonic.study.on_ray`, ``gpus_per_run`` GPUs for each neural run); None takes
    the study file's ``[embeddings] engine`` and ``ray_address`` for both. Results are the same.
    Nothing is written when the study has a mistake, or ``out_dir`` is not a study's folder, or another
    process is writing it (a :class:`SonicError` is raised first).
    """
    study = _read(study)
    workers = worker_count(num_workers)
    engine = check_engine(study.embeddings.engine if engine is None else engine)
    ray_address = study.embeddings.ray_address if ray_address is None else ray_address
    if engine == "ray":
        import_ray()  # before any work: without Ray, one sentence on how to install it
    on_ray = RunsOnRay(address=ray_address, gpus_per_run=gpus_per_run)
    resolved = check_study(study)
    steps = plan_steps(resolved)
    with output_folder(out_dir, layout.KIND, accept=layout.ACCEPTS, adopt=layout.adopts(study.source)) as folder:
        out_dir = folder.path
        _clean(out_dir)
        _write_resolved_study(study, out_dir)
        graph = SourceGraph()
        identities = _identities(steps, graph)
        hashes = {key: identity_hash(identity) for key, identity in identities.items()}
        store_dir = out_dir / layout.STORE_DIR
        store.write_plan(store_dir, hashes)
        context = StepContext(resolved, out_dir, workers, progress, warn or _no_warning, engine, ray_address)
        outcomes = _run_steps(context, steps, identities, hashes, on_ray, echo, graph)
        runs = [step.name for step in steps if step.kind == "run"]
        store.prune(store_dir, runs)
        store.prune_trials(store_dir, [name for step in steps if step.kind == "search"
                                       for name in tuning.trial_names(step)])
        results = _results_table(store_dir, runs, study.evaluation.modes)
        results_path = out_dir / layout.RESULTS_CSV
        with atomic_path(results_path) as tmp:
            results.to_csv(tmp, index=False)
    return ExperimentResult(study, out_dir, outcomes, results, results_path, store_dir)


def _run_steps(context: StepContext, steps: list[Step], identities: dict[str, dict[str, Any]],
               hashes: dict[str, str], on_ray: RunsOnRay, echo: Echo | None,
               graph: SourceGraph) -> tuple[StepOutcome, ...]:
    """Each step in order: skipped when done with its hash, else run (run steps on Ray sent there last).
    A search runs its trials and chooses; the runs that need it then get their options and identity."""
    out_dir = context.out_dir
    outcomes: list[StepOutcome | None] = []
    deferred: list[tuple[Step, str, dict[str, Any]]] = []  # run steps sent to Ray once the steps before them are done
    numbers: dict[str, tuple[int, str]] = {}  # a deferred step's key -> (its place in outcomes, its prefix)
    failed: set[str] = set()
    chosen: dict[str, tuning.Chosen] = {}  # search key -> its choice
    in_pass: dict[str, tuple[StepOutcome, str | None]] = {}  # embed steps run in one pass with an earlier one
    for number, step in enumerate(steps, start=1):
        prefix = f"[{number}/{len(steps)}] {step.kind} {step.name}"
        if step.key in in_pass:  # said at its turn, as if run now
            outcome, why = in_pass.pop(step.key)
            if why is not None:
                _say(echo, f"{prefix}: {why}")
            outcomes.append(_said(echo, prefix, outcome, failed))
            continue
        blocked = [key for key in step.needs if key in failed]
        if blocked:
            failed.add(step.key)
            outcomes.append(StepOutcome(step.key, "blocked", message=f"needs {blocked[0]}, which failed"))
            _say(echo, f"{prefix}: not run, needs {blocked[0]}, which failed")
            if step.kind == "run" and not layout.is_done(layout.load_record(step.record_path(out_dir))[0],
                                                         hashes.get(step.key, "")):
                forget_run(out_dir, step.name)  # no rows of earlier settings stay behind a step not run
            continue
        if step.kind == "search":
            search = _search(context, step, hashes, graph, prefix, echo)
            outcomes += [*search.trials, search.outcome]
            if search.chosen is None:
                failed.add(step.key)
                _say(echo, f"{prefix}: FAILED: {search.outcome.message}")
                continue
            chosen[step.key] = search.chosen
            hashes[step.key] = identity_hash(search.chosen.record())
            _say(echo, f"{prefix}: chose {search.chosen.describe()}")
            continue
        if step.key not in identities:  # a run whose options its search has now chosen
            search_key = next(key for key in step.needs if key.startswith("search/"))
            step = tuning.resolve_run(step, chosen[search_key])
            identities[step.key] = step_identity(step, hashes, graph)
            hashes[step.key] = identity_hash(identities[step.key])
            store.write_plan(out_dir / layout.STORE_DIR, hashes)
        digest = hashes[step.key]
        record, problem = layout.load_record(step.record_path(out_dir))
        missing = _missing_output(context, step)
        if layout.is_done(record, digest) and missing is None:
            outcomes.append(StepOutcome(step.key, "skipped", warnings=tuple(record.get("warnings", ()))))
            _say(echo, f"{prefix}: done earlier, skipped")
            continue
        why = _why_again(record, problem, missing, digest, identities[step.key])
        if why is not None:
            _say(echo, f"{prefix}: {why}")
        if context.engine == "ray" and step.kind == "run":
            numbers[step.key] = (len(outcomes), prefix)
            outcomes.append(None)
            deferred.append((step, digest, identities[step.key]))
            continue
        group = _audio_pass_group(context, step, steps[number:], identities, hashes)
        if group:
            jobs = [(step, digest, identities[step.key])] + [(other, hashes[other.key], identities[other.key])
                                                              for other, _ in group]  # fmt: skip
            first, *others = run_embed_pass(context, jobs)
            in_pass.update({outcome.key: (outcome, why) for outcome, (_, why) in zip(others, group, strict=True)})
            outcomes.append(_said(echo, prefix, first, failed))
            continue
        outcome = run_step(context, step, digest, identities[step.key])
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
    return tuple(outcome for outcome in outcomes if outcome is not None)


def _search(context: StepContext, step: Step, hashes: dict[str, str], graph: SourceGraph, prefix: str,
            echo: Echo | None) -> tuning.SearchOutcome:
    """Run search ``step``'s trials (each trial's hash published in the store's plan as it is made)."""
    spec = next(spec for spec in context.resolved.study.recommenders if spec.label == step.settings["label"])
    objective = step.settings["objective"]
    _say(echo, f"{prefix}: {spec.search.trials} trials ({spec.search.sampler}) maximising val "
               f"{objective['metric']}@{objective['k']}")
    store_dir = context.out_dir / layout.STORE_DIR
    return tuning.run_search(context, step, spec.search, hashes, graph, echo=echo,
                             on_hash=lambda: store.write_plan(store_dir, hashes))


def _audio_pass_group(context: StepContext, step: Step, later: list[Step], identities: dict[str, dict[str, Any]],
                      hashes: dict[str, str]) -> list[tuple[Step, str | None]]:
    """The later audio embed steps to run in one pass with ``step`` (an audio embed step about to run on
    the local engine): those of the same audio window that are not done, each with why it runs."""
    if context.engine != "local" or step.kind != "embed" or not _reads_audio(context, step):
        return []
    window = (step.settings["offset_seconds"], step.settings["duration_seconds"])
    group = []
    for other in later:
        if other.kind != "embed" or other.key not in hashes or other.needs or not _reads_audio(context, other):
            continue
        if (other.settings["offset_seconds"], other.settings["duration_seconds"]) != window:
            continue
        record, problem = layout.load_record(other.record_path(context.out_dir))
        missing = _missing_output(context, other)
        if layout.is_done(record, hashes[other.key]) and missing is None:
            continue
        group.append((other, _why_again(record, problem, missing, hashes[other.key], identities[other.key])))
    return group


def _reads_audio(context: StepContext, step: Step) -> bool:
    from sonic.study.check import AUDIO_MODALITIES

    return context.resolved.modalities[step.name] in AUDIO_MODALITIES


def _said(echo: Echo | None, prefix: str, outcome: StepOutcome, failed: set[str]) -> StepOutcome:
    """``outcome`` told to ``echo`` (a failed step's key added to ``failed``)."""
    if outcome.status == "failed":
        failed.add(outcome.key)
        _say(echo, f"{prefix}: FAILED: {outcome.message}")
    else:
        _say(echo, f"{prefix}: done ({outcome.seconds:.1f} s)")
    return outcome


def _why_again(record: dict[str, Any] | None, problem: str | None, missing: str | None, digest: str,
               identity: dict[str, Any]) -> str | None:
    """Why a step with a record runs again, in a few words (None for a step never started)."""
    if problem is not None:
        return f"redone, {problem}"
    if record is None:
        return None
    if record.get("hash") != digest:
        return f"redone, {why_redone(record, identity)}"
    if record.get("status") == "done":
        return f"redone, {missing}"
    if record.get("status") == "running":
        return "resumed, it was interrupted"
    return "tried again, it failed before"


def _identities(steps: list[Step], graph: SourceGraph) -> dict[str, dict[str, Any]]:
    """The identity of every step known before anything runs (:func:`sonic.study.steps.step_identity`),
    upstream first: all but searches and the runs whose options a search chooses."""
    identities: dict[str, dict[str, Any]] = {}
    hashes: dict[str, str] = {}
    for step in steps:
        if step.kind == "search" or any(key.startswith("search/") for key in step.needs):
            continue
        identities[step.key] = step_identity(step, hashes, graph)
        hashes[step.key] = identity_hash(identities[step.key])
    return identities


def _missing_output(context: StepContext, step: Step) -> str | None:
    """Why a step recorded as done cannot be skipped: its output is gone (None when it is there)."""
    out_dir = context.out_dir
    if step.kind == "split":
        needed = [context.split_dir(step.key) / "split.json"]
    elif step.kind == "embed":
        needed = [context.table_path(step.name)]
    else:
        needed = [out_dir / "runs" / step.name, out_dir / layout.STORE_DIR / "runs" / f"{step.name}.parquet"]
    for path in needed:
        if not path.exists():
            return f"its output {path.relative_to(out_dir)} is missing"
    return None


def _read(study: Study | str | os.PathLike) -> Study:
    if isinstance(study, Study):
        return study
    if Path(study).is_dir():
        return layout.read_output_study(study)
    return read_study(study)


def _clean(out_dir: Path) -> None:
    """Remove what writers killed in ``out_dir`` left: temporaries, and hidden work folders in runs/ and split/."""
    remove_temporaries(out_dir)
    remove_temporaries(out_dir / layout.STEPS_DIR)
    store.clean(out_dir / layout.STORE_DIR)
    for folder in (out_dir / "runs", out_dir / "split"):
        if folder.is_dir():
            for entry in folder.iterdir():
                if entry.name.startswith(".") and entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)


def _write_resolved_study(study: Study, out_dir: Path) -> None:
    """``OUT/study.resolved.toml``: the study as run, with absolute paths (a file sonic writes and owns)."""
    import tomli_w

    from sonic import __version__

    source = f" from {study.source}" if study.source is not None else ""
    header = (f"# The study as run{source}, written by sonic {__version__} (absolute paths).\n"
              "# Edit your own study file rather than this one: each run writes it again.\n\n")
    write_text(out_dir / layout.RESOLVED_STUDY, header + tomli_w.dumps(study.to_dict()))


def _results_table(store_dir: Path, runs: list[str], modes: tuple[str, ...]) -> pd.DataFrame:
    """One row per run, slice (split), metric and k, in the order of the study's runs and modes."""
    from sonic.rouge.beyond import BEYOND_NAMES
    from sonic.rouge.metrics import METRIC_NAMES

    columns = list(store.RESULT_COLUMNS)
    if not (store_dir / "runs").is_dir() or not any((store_dir / "runs").glob("*.parquet")):
        return pd.DataFrame(columns=columns)
    frame = store.query(store_dir)
    frame = frame[frame["run"].isin(runs)]
    run_order = {run: position for position, run in enumerate(runs)}
    metric_order = {name: position for position, name in enumerate((*METRIC_NAMES, *BEYOND_NAMES))}
    mode_order = {mode: position for position, mode in enumerate(modes)}
    frame = frame.assign(_run=frame["run"].map(run_order), _mode=frame["split"].map(mode_order).fillna(99),
                         _metric=frame["metric"].map(metric_order).fillna(99))
    frame = frame.sort_values(["_run", "_mode", "_metric", "k"], kind="stable")
    return frame.loc[:, columns].reset_index(drop=True)


def _no_warning(line: str) -> None:
    """Where warnings go when nobody asked for them."""


def _say(echo: Echo | None, line: str) -> None:
    if echo is not None:
        echo(line)
