"""A study's recommender runs as Ray tasks: ``sonic experiment STUDY --engine ray``.

The runs of a study (recommenders x embeddings x seeds) need nothing from each other, only their split
and embedding tables, so once those steps are done here every run that is not already finished goes to
the cluster as one task. Each task runs the very step the local engine runs
(:func:`sonic.study.step_runner.run_step`: the run folder, the step record and the results store, all
written atomically into the study's output folder, which every node must see under the same path), so
results are the same and a rerun skips what finished. A task whose worker dies (killed, out of memory,
a crash in native code) is that step's failure, recorded by the driver, and the other runs go on; Ray
does not retry it (``max_retries=0``): the next ``sonic experiment`` does. A task holds ``cpus_per_run`` CPUs, and
``gpus_per_run`` GPUs when its recommender trains a neural model (:data:`GPU_RECOMMENDERS`); inside it
the recommender's ``device="auto"`` finds the GPU Ray gave it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sonic.cluster import cluster_resources, connected
from sonic.errors import SonicError
from sonic.study.step_runner import StepOutcome, error_sentence, run_step, write_failure

#: Recommenders that train a neural model, and so take the GPUs asked for per run.
GPU_RECOMMENDERS = frozenset({"snn", "bert4rec"})


@dataclass(frozen=True)
class RunsOnRay:
    """Where the runs go: the cluster's ``address`` (None: a local Ray, or the one initialised here) and
    each run's resources."""

    address: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0

    def __post_init__(self) -> None:
        for name in ("cpus_per_run", "gpus_per_run"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and not isinstance(value, bool) and value >= 0):
                raise SonicError(f"{name.replace('_', ' ')} must be a number >= 0, got {value!r}")

    def resources(self, recommender: str) -> dict[str, float]:
        """The Ray resources of one run of ``recommender``."""
        gpus = self.gpus_per_run if recommender in GPU_RECOMMENDERS else 0.0
        return {"num_cpus": self.cpus_per_run, "num_gpus": gpus}


def run_steps_on_ray(context: Any, jobs: Sequence[tuple[Any, str, Any]], options: RunsOnRay,
                     on_done: Callable[[Any, Any], None]) -> None:
    """Run each ``(step, digest, identity)`` of ``jobs`` (run steps) as a Ray task; ``on_done(step, outcome)``
    is called here as each finishes (in the order they finish). A task that dies, or a cluster that
    cannot take the runs, fails those steps (each recorded as failed) rather than the study."""
    if not jobs:
        return
    remote_context = replace(context, warn=_no_warning, progress=False)  # warnings come back in the outcome
    left = {step.key: (step, digest, identity) for step, digest, identity in jobs}

    def fail(step: Any, digest: str, identity: Any, message: str) -> None:
        write_failure(context.out_dir, step, digest, identity, message)
        on_done(step, StepOutcome(step.key, "failed", message=message))

    try:
        with connected(options.address) as ray:
            if options.gpus_per_run and any(step.settings["recommender"] in GPU_RECOMMENDERS for step, _, _ in jobs):
                available = cluster_resources(ray)["GPU"]
                if options.gpus_per_run > available:
                    raise SonicError(f"each neural run asks for {options.gpus_per_run:g} GPU but the Ray cluster "
                                     f"has {available:g}; give fewer GPUs per run (0 trains on CPU)")
            task = ray.remote(max_retries=0)(run_step)
            context_ref = ray.put(remote_context)
            pending = {
                task.options(**options.resources(step.settings["recommender"])).remote(context_ref, step, digest,
                                                                                       identity): step
                for step, digest, identity in jobs
            }
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                step = pending.pop(done[0])
                _, digest, identity = left.pop(step.key)
                try:
                    outcome = ray.get(done[0])
                except ray.exceptions.RayError as error:  # the task's worker died: this step failed
                    fail(step, digest, identity, f"its Ray task died ({error_sentence(error)})")
                    continue
                on_done(step, outcome)
    except SonicError as error:
        for step, digest, identity in list(left.values()):
            fail(step, digest, identity, str(error))
        left.clear()


def _no_warning(line: str) -> None:
    """Warnings of a run on Ray are reported by the driver from the step's outcome."""
