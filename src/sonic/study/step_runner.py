"""One step of a study run: split, embed, a search's trial or run a recommender, and write the step's record.

:func:`run_step` is what both engines run: the local one in :mod:`sonic.study.execute`, and Ray tasks
in :mod:`sonic.study.on_ray`. Every output is written through :mod:`sonic.files` (a folder built under
a temporary name and swapped in whole, a file renamed over its target), and the step's record last, so
a killed run resumes where it stopped. A run step that is redone first removes what its earlier
settings left (its rows in the results store, then its run folder), so a rerun that fails leaves
nothing of them. The imports inside ``_split``, ``_embed``, ``_trial`` and ``_run`` are the entries of each kind's
code fingerprint (:mod:`sonic.study.code`): keep a step's imports inside its function.
"""

from __future__ import annotations

import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sonic.errors import SonicError
from sonic.files import atomic_folder, write_json
from sonic.manifest import base_manifest
from sonic.study import store
from sonic.study.check import AUDIO_MODALITIES, Resolved
from sonic.study.layout import load_record
from sonic.study.steps import NO_EMBEDDING, Step

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
class StepContext:
    """What every step of one study run needs: the checked study, the output folder and how to run."""

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


def run_step(context: StepContext, step: Step, digest: str, identity: dict[str, Any] | None = None) -> StepOutcome:
    """Run one step into the study's output folder and write its record (done or failed); never raises
    for a failed step. The local engine and the Ray tasks (:mod:`sonic.study.on_ray`) both run this.
    ``identity`` (:func:`sonic.study.steps.step_identity`, whose hash is ``digest``) goes into the record."""
    started = time.perf_counter()
    path = step.record_path(context.out_dir)
    try:
        previous, _ = load_record(path)
        if previous is None or previous.get("hash") != digest:
            _forget_partial(context, step)  # what a step of other settings or code left half done
        write_json(path, base_manifest("study step", key=step.key, hash=digest, status="running", identity=identity))
        warnings = _RUNNERS[step.kind](context, step, digest)
    except Exception as error:  # noqa: BLE001  one failed step must not stop the others; it is recorded
        message = error_sentence(error)
        write_failure(context.out_dir, step, digest, identity, message, traceback.format_exc())
        return StepOutcome(step.key, "failed", time.perf_counter() - started, message)
    seconds = time.perf_counter() - started
    record = {"key": step.key, "hash": digest, "status": "done", "seconds": round(seconds, 3),
              "settings": step.settings, "warnings": list(warnings), "identity": identity}  # fmt: skip
    write_json(step.record_path(context.out_dir), base_manifest("study step", **record))
    return StepOutcome(step.key, "done", seconds, warnings=tuple(warnings))


def run_embed_pass(context: StepContext, jobs: list[tuple[Step, str, dict[str, Any] | None]]) -> list[StepOutcome]:
    """Run audio embed steps of one audio window (``(step, digest, identity)`` each) as one pass over the
    audio (:func:`sonic.tails.many.audio_pass`: each file decoded once), each with its own record, as
    :func:`run_step` writes it; one embedder failing fails its step only."""
    started = time.perf_counter()
    for step, digest, identity in jobs:
        previous, _ = load_record(step.record_path(context.out_dir))
        if previous is None or previous.get("hash") != digest:
            _forget_partial(context, step)
        write_json(step.record_path(context.out_dir),
                   base_manifest("study step", key=step.key, hash=digest, status="running", identity=identity))
    try:
        results = _embed_pass(context, [step for step, _, _ in jobs])
    except Exception as error:  # noqa: BLE001  the pass could not start: each of its steps failed
        results = [error] * len(jobs)
    outcomes = []
    for (step, digest, identity), result in zip(jobs, results, strict=True):
        seconds = time.perf_counter() - started
        if not isinstance(result, BaseException):
            try:
                warnings = _checked(context, step, result)
            except SonicError as error:
                result = error
        if isinstance(result, BaseException):
            message = error_sentence(result)
            details = "".join(traceback.format_exception(result))
            write_failure(context.out_dir, step, digest, identity, message, details)
            outcomes.append(StepOutcome(step.key, "failed", seconds, message))
            continue
        record = {"key": step.key, "hash": digest, "status": "done", "seconds": round(seconds, 3),
                  "settings": step.settings, "warnings": list(warnings), "identity": identity}  # fmt: skip
        write_json(step.record_path(context.out_dir), base_manifest("study step", **record))
        outcomes.append(StepOutcome(step.key, "done", seconds, warnings=tuple(warnings)))
    return outcomes


def error_sentence(error: BaseException) -> str:
    """The first line of ``error`` (with its type, unless it is a :class:`SonicError`)."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return message if isinstance(error, SonicError) else f"{type(error).__name__}: {message}"


def write_failure(out_dir: Path, step: Step, digest: str, identity: dict[str, Any] | None, message: str,
                  details: str = "") -> None:
    """Record ``step`` as failed with ``message`` (also for a step whose process died: the driver writes it)."""
    record = {"key": step.key, "hash": digest, "status": "failed", "error": message, "traceback": details,
              "identity": identity}  # fmt: skip
    write_json(step.record_path(out_dir), base_manifest("study step", **record))


def _forget_partial(context: StepContext, step: Step) -> None:
    """Remove the partial output an interrupted step of another identity left (an embedder's shards):
    they were made by other settings or code, and must not be resumed from."""
    if step.kind == "embed":
        shards = context.out_dir / "embeddings" / f"{step.name}.shards"
        if shards.is_dir() and not shards.is_symlink():
            shutil.rmtree(shards)


def forget_run(out_dir: Path, name: str) -> None:
    """Remove what an earlier run step ``name`` left: its rows in the results store, then its run folder."""
    store.remove_run(out_dir / store.STORE_DIR, name)
    folder = out_dir / "runs" / name
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)


def forget_trial(out_dir: Path, name: str) -> None:
    """Remove what an earlier trial step ``name`` left: its row in the results store, then its folder."""
    store.remove_trial(out_dir / store.STORE_DIR, name)
    folder = out_dir / store.TRIALS_DIR / name
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)


def _split(context: StepContext, step: Step, digest: str) -> list[str]:
    from sonic.cream.data import SplitConfig, split_file

    study = context.resolved.study
    config = SplitConfig.for_protocol(
        study.split.protocol, start_date=study.split.start_date, test_date=study.split.test_date,
        end_date=study.split.end_date, seed=step.settings["seed"],
    )  # fmt: skip
    with atomic_folder(context.split_dir(step.key)) as tmp:
        split_file(study.data.events, config, tmp, exclude_file=study.data.exclude)
    return []


def _embed(context: StepContext, step: Step, digest: str) -> list[str]:
    """Embed with one embedder: audio and image embedders read the audio folder, the others Music4All."""
    from sonic.tails.runner import embed_folder
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
    return _checked(context, step, result)


def _embed_pass(context: StepContext, steps: list[Step]) -> list[Any]:
    """The tables of audio embed steps of one window, in one pass: an EmbedResult or an error per step."""
    from sonic.parallel import worker_count
    from sonic.tails.many import audio_pass
    from sonic.tails.runner import DEFAULT_SHARD_SIZE

    study = context.resolved.study
    first = steps[0].settings
    window = (first["offset_seconds"], first["duration_seconds"])
    return audio_pass(
        study.data.audio, [(step.name, step.settings.get("options")) for step in steps], context.out_dir / "embeddings",
        window=window, exclude=study.data.exclude, batch_size=study.embeddings.batch_size,
        shard_size=DEFAULT_SHARD_SIZE, workers=worker_count(context.num_workers), progress=context.progress,
    )  # fmt: skip


def _checked(context: StepContext, step: Step, result: Any) -> list[str]:
    """The warnings of an embed step's result; a table under another name than the step's is an error."""
    if result.table_path != context.table_path(step.name):
        raise SonicError(f"embedder '{step.name}' wrote '{result.table_path.name}', not '{step.name}.parquet'")
    if result.n_failed:
        return [f"{result.n_failed} inputs could not be embedded; see {result.failures_path}"]
    return []


def _run(context: StepContext, step: Step, digest: str) -> list[str]:
    """Fit one recommender and evaluate it on every mode (:func:`sonic.rouge.run.run_model`); store it."""
    from sonic.rouge.run import run_model

    settings = step.settings
    split_key = step.needs[0]
    embedding = None if settings["embedding"] == NO_EMBEDDING else settings["embedding"]
    final = context.out_dir / "runs" / step.name
    forget_run(context.out_dir, step.name)
    with atomic_folder(final) as tmp:
        result = run_model(
            settings["recommender"], context.split_dir(split_key), embedding=embedding,
            embeddings_dir=context.out_dir / "embeddings", mode=settings["modes"], ks=settings["ks"], out_dir=tmp,
            seed=settings["seed"], options=settings["options"], shuffle=settings["shuffle"],
            cold_candidates=settings.get("cold_candidates", "cold"),
        )  # fmt: skip
    warnings = [str(line) for line in result.warnings]
    for line in warnings:
        context.warn(f"{step.name}: {line}")
    manifests = [context.table_path(key.removeprefix("embed/")) for key in step.needs[1:]]
    record = {
        "label": settings["label"], "recommender": settings["recommender"], "options": settings["options"],
        "shuffle": settings["shuffle"], "embedding": settings["embedding"],
        "embedding_manifest": ";".join(str(path.with_name(f"{path.stem}.manifest.json")) for path in manifests),
        "split_dir": str(context.split_dir(split_key)), "split_seed": int(split_key.rpartition("-")[2]),
        "modes": settings["modes"], "seed": settings["seed"], "ks": settings["ks"], "run_dir": str(final),
        "hash": digest, "warnings": warnings, "slices": result.config.get("slices", {}),
        **({"chosen_by": settings["chosen_by"]} if settings.get("chosen_by") else {}),
    }  # fmt: skip
    store.write_run(context.out_dir / store.STORE_DIR, step.name, record, result.per_user, result.metrics)
    return warnings


def _trial(context: StepContext, step: Step, digest: str) -> list[str]:
    """Fit one setting of a search (:mod:`sonic.study.tuning`) and evaluate it on the validation users
    only (:func:`sonic.rouge.run.run_model`, no test, no saved model); store its validation score."""
    import numpy as np

    from sonic.rouge.run import run_model

    settings = step.settings
    objective = settings["objective"]
    split_key = step.needs[0]
    embedding = None if settings["embedding"] == NO_EMBEDDING else settings["embedding"]
    final = context.out_dir / store.TRIALS_DIR / step.name
    forget_trial(context.out_dir, step.name)
    options = {**settings["options"], **settings["params"]}
    with atomic_folder(final) as tmp:
        result = run_model(
            settings["recommender"], context.split_dir(split_key), embedding=embedding,
            embeddings_dir=context.out_dir / "embeddings", mode=[objective["slice"]], ks=[objective["k"]],
            out_dir=tmp, seed=settings["seed"], options=options, shuffle=settings["shuffle"], save_model=False,
        )  # fmt: skip
    metrics = result.metrics
    row = metrics[(metrics["slice"] == objective["slice"]) & (metrics["metric"] == objective["metric"])
                  & (metrics["k"] == objective["k"])]  # fmt: skip
    value = float(row["mean"].iloc[0]) if len(row) else float("nan")
    if not np.isfinite(value):
        raise SonicError(f"trial {step.name} has no {objective['slice']} {objective['metric']}@{objective['k']} "
                         "(no validation users?)")
    warnings = [str(line) for line in result.warnings]
    store.write_trial(context.out_dir / store.STORE_DIR, step.name, {
        "search": settings["search"], "number": settings["number"], "label": settings["label"],
        "recommender": settings["recommender"], "embedding": settings["embedding"],
        "split_seed": int(split_key.rpartition("-")[2]), "seed": settings["seed"], "params": settings["params"],
        "options": options, "metric": objective["metric"], "k": objective["k"], "value": value,
        "ci_low": float(row["ci_low"].iloc[0]), "ci_high": float(row["ci_high"].iloc[0]),
        "n_users": int(row["n_users"].iloc[0]), "hash": digest,
    })  # fmt: skip
    return warnings


_RUNNERS: dict[str, Callable[[StepContext, Step, str], list[str]]] = {
    "split": _split, "embed": _embed, "trial": _trial, "run": _run,
}  # fmt: skip
