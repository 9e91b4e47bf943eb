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
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sonic.cluster import check_engine, import_ray
from sonic.errors import SonicError
from sonic.manifest import base_manifest, write_json
from sonic.study import store
from sonic.study.check import AUDIO_MODALITIES, Resolved, check_study
from sonic.study.config import Study, read_study
from sonic.study.on_ray import RunsOnRay, run_steps_on_ray
from sonic.study.steps import NO_EMBEDDING, Step, plan_steps, read_record, step_hash

Echo = Callable[[str], None]


@dataclass(frozen=True)
class StepOutcome:
    """How a step went: ``status`` is done, skipped (done earlier), failed or blocked (a step it needs failed)."""

    key: str
    status: str
    seconds: float = 0.0
    message: str = ""
    warnings: tuple[str, ...] = ()


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
    context = _Context(resolved, out_dir, num_workers, progress, warn or _no_warning, engine, ray_address)
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
        outcome = _run_step(context, step, digest)
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


@dataclass(frozen=True)
class _Context:
    resolved: Resolved
    out_dir: Path
    num_workers: int | None
    progress: bool
    warn: Echo
    engine: str = "local"  # of the embed steps
    ray_address: str | None = None

    def split_dir(self, key: str) -> Path:
        return self.out_dir / "split" / key.removeprefix("split/")

    def table_path(self, name: str) -> Path:
        return self.out_dir / "embeddings" / f"{name}.parquet"


def _run_step(context: _Context, step: Step, digest: str) -> StepOutcome:
    started = time.perf_counter()
    try:
        warnings = _RUNNERS[step.kind](context, step, digest)
    except Exception as error:  # noqa: BLE001  one failed step must not stop the others; it is recorded
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if not isinstance(error, SonicError):
            message = f"{type(error).__name__}: {message}"
        record = {"key": step.key, "hash": digest, "status": "failed", "error": message,
                  "traceback": traceback.format_exc()}  # fmt: skip
        write_json(step.record_path(context.out_dir), base_manifest("study step", **record))
        return StepOutcome(step.key, "failed", time.perf_counter() - started, message)
    seconds = time.perf_counter() - started
    record = {"key": step.key, "hash": digest, "status": "done", "seconds": round(seconds, 3),
              "settings": step.settings, "warnings": list(warnings)}  # fmt: skip
    write_json(step.record_path(context.out_dir), base_manifest("study step", **record))
    return StepOutcome(step.key, "done", seconds, warnings=tuple(warnings))


def _split(context: _Context, step: Step, digest: str) -> list[str]:
    from sonic.cream.data import SplitConfig, split_file

    study = context.resolved.study
    config = SplitConfig.for_protocol(
        study.split.protocol, start_date=study.split.start_date, test_date=study.split.test_date,
        end_date=study.split.end_date, seed=step.settings["seed"],
    )  # fmt: skip
    final = context.split_dir(step.key)
    tmp = _fresh_tmp(final)
    split_file(study.data.events, config, tmp, exclude_file=study.data.exclude)
    _replace_dir(tmp, final)
    return []


def _embed(context: _Context, step: Step, digest: str) -> list[str]:
    """Embed with one embedder: audio and image embedders read the audio folder, the others Music4All."""
    from sonic.tails.pipeline import embed_folder
    from sonic.tails.ray_engine import RayOptions

    study = context.resolved.study
    embeddings = study.embeddings
    if context.resolved.modalities[step.name] in AUDIO_MODALITIES:
        source: dict[str, Any] = {"audio_dir": study.data.audio, "offset_seconds": step.settings["offset_seconds"],
                                  "duration_seconds": step.settings["duration_seconds"]}
    else:
        source = {"audio_dir": None, "music4all_root": study.data.music4all}
    result = embed_folder(
        model_type=step.name, model_options=step.settings.get("options"), out_dir=context.out_dir / "embeddings",
        batch_size=embeddings.batch_size,
        num_workers=context.num_workers, exclude=study.data.exclude, progress=context.progress, **source,
        engine=context.engine, ray=RayOptions(address=context.ray_address, gpus_per_actor=embeddings.gpus_per_actor),
    )  # fmt: skip
    if result.table_path != context.table_path(step.name):
        raise SonicError(f"embedder '{step.name}' wrote '{result.table_path.name}', not '{step.name}.parquet'")
    if result.n_failed:
        return [f"{result.n_failed} inputs could not be embedded; see {result.failures_path}"]
    return []


def _run(context: _Context, step: Step, digest: str) -> list[str]:
    """Fit one recommender and evaluate it on every mode (:func:`sonic.rouge.run.run_model`); store it."""
    from sonic.rouge.run import run_model

    settings = step.settings
    split_key = step.needs[0]
    embedding = None if settings["embedding"] == NO_EMBEDDING else settings["embedding"]
    final = context.out_dir / "runs" / step.name
    tmp = _fresh_tmp(final)
    result = run_model(
        settings["recommender"], context.split_dir(split_key), embedding=embedding,
        embeddings_dir=context.out_dir / "embeddings", mode=settings["modes"], ks=settings["ks"], out_dir=tmp,
        seed=settings["seed"], options=settings["options"], shuffle=settings["shuffle"],
    )  # fmt: skip
    warnings = [str(line) for line in result.warnings]
    _replace_dir(tmp, final)
    for line in warnings:
        context.warn(f"{step.name}: {line}")
    manifests = [context.table_path(key.removeprefix("embed/")) for key in step.needs[1:]]
    record = {
        "label": settings["label"], "recommender": settings["recommender"], "options": settings["options"],
        "shuffle": settings["shuffle"], "embedding": settings["embedding"],
        "embedding_manifest": ";".join(str(path.with_name(f"{path.stem}.manifest.json")) for path in manifests),
        "split_dir": str(context.split_dir(split_key)), "split_seed": int(split_key.rpartition("-")[2]),
        "modes": settings["modes"], "seed": settings["seed"], "ks": settings["ks"], "run_dir": str(final),
        "hash": digest, "warnings": warnings,
    }  # fmt: skip
    store.write_run(context.out_dir / store.STORE_DIR, step.name, record, result.per_user, result.metrics)
    return warnings


_RUNNERS: dict[str, Callable[[_Context, Step, str], list[str]]] = {
    "split": _split, "embed": _embed, "run": _run,
}  # fmt: skip


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


def _fresh_tmp(final: Path) -> Path:
    tmp = final.with_name(f".{final.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    return tmp


def _replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` to ``final``, replacing an older one."""
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old)
    else:
        os.replace(tmp, final)


def _no_warning(line: str) -> None:
    """Where warnings go when nobody asked for them."""


def _say(echo: Echo | None, line: str) -> None:
    if echo is not None:
        echo(line)
