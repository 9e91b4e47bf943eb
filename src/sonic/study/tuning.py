"""Settings chosen on validation: a search step's trials, asked of Optuna, and the choice they make.

A search step (:func:`sonic.study.steps.plan_steps`) holds a recommender's search space
(:mod:`sonic.study.search`). :func:`run_search` asks an Optuna sampler for ``trials`` settings, one
at a time: TPE seeded with ``search_seed`` (``TPESampler(seed=...)``, random for its first
:data:`~sonic.study.search.TPE_STARTUP_TRIALS` trials), or a seeded grid. Each setting is a **trial**
step (record ``OUT/steps/trial.<search>-t<NNN>.json``, folder ``OUT/trials/<trial>/``, a row in the
results store): one fit on train, evaluated on the validation users only, never on a test slice. A
trial's identity holds its number, its setting and every earlier trial's setting and validation
score, so the sequence is deterministic: the sampler that asks trial n has been told trials 0..n-1
exactly as an uninterrupted search told it, their scores read from the records on disk. A search
killed anywhere and run again asks the same settings, skips the finished trials and makes the same
choice; raising ``trials`` keeps the trials already done.

The **choice** is the finished trial with the best validation score (ties: the earliest). Every run
of that recommender on that embedding and split, whatever its seed, is then fitted once with the
chosen options and evaluated on val, test and cold test (:func:`resolve_run`); its record says
``chosen_by``: the search, the trial number, the setting and its validation score. A failed trial is
recorded as failed and the search goes on without it (Optuna is told so); a search whose trials all
failed chooses nothing, and its runs do not run.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sonic.study import store
from sonic.study.code import SourceGraph
from sonic.study.layout import is_done, load_record
from sonic.study.search import Range, SearchSpec, base_type, typed_value
from sonic.study.step_runner import Echo, StepContext, StepOutcome, run_step
from sonic.study.steps import Step, identity_hash, step_identity, why_redone


@dataclass(frozen=True)
class Chosen:
    """A search's choice: the trial ``number``, its ``params`` and validation score ``value``."""

    search: str
    trial: int
    params: dict[str, Any]
    value: float
    metric: str
    k: int

    def record(self) -> dict[str, Any]:
        """``chosen_by`` of the runs made with it."""
        return {"search": self.search, "trial": self.trial, "params": self.params, "value": self.value,
                "metric": self.metric, "k": self.k, "slice": "val"}  # fmt: skip

    def describe(self) -> str:
        setting = ", ".join(f"{name}={_short(value)}" for name, value in self.params.items())
        return f"trial {self.trial} ({setting}): val {self.metric}@{self.k} = {self.value:.4f}"


@dataclass(frozen=True)
class SearchOutcome:
    """What a search did: one outcome per trial, and its choice (None when every trial failed)."""

    outcome: StepOutcome
    trials: tuple[StepOutcome, ...]
    chosen: Chosen | None


def trial_name(search: str, number: int) -> str:
    """The readable id of a search's trial ``number``: ``<search>-t<NNN>``."""
    return f"{search}-t{number:03d}"


def trial_names(step: Step) -> list[str]:
    """Every trial a search step plans (``trials`` of its settings)."""
    return [trial_name(step.name, number) for number in range(int(step.settings["trials"]))]


def trial_step(search: Step, number: int, params: dict[str, Any], before: list[dict[str, Any]]) -> Step:
    """Trial ``number`` of ``search`` with setting ``params``, after the trials ``before`` (each its
    number, params, and value or ``"state": "failed"``). The number of trials planned is not part of
    it, so a longer search keeps its earlier trials."""
    settings = {key: value for key, value in search.settings.items() if key != "trials"}
    settings.update(search=search.name, number=number, params=params, before=before)
    return Step("trial", trial_name(search.name, number), search.needs, settings, modules=search.modules)


def resolve_run(step: Step, chosen: Chosen) -> Step:
    """Run ``step`` with the options ``chosen`` on validation, its settings saying so (``chosen_by``)."""
    settings = {**step.settings, "options": {**step.settings["options"], **chosen.params},
                "chosen_by": chosen.record()}  # fmt: skip
    return dataclasses.replace(step, settings=settings)


def run_search(context: StepContext, step: Step, search: SearchSpec, hashes: dict[str, str], graph: SourceGraph,
               *, echo: Echo | None = None, on_hash: Callable[[], None] | None = None) -> SearchOutcome:
    """Run the trials of search ``step`` (``search``: its space) and choose; see the module docstring.

    ``hashes`` holds the hashes of the steps the trials need and receives each trial's (``on_hash`` is
    called after each, to publish them); ``echo`` gets one line per trial.
    """
    import time

    started = time.perf_counter()
    objective = step.settings["objective"]
    hints = _option_types(step.settings["recommender"], step.settings["options"])
    before: list[dict[str, Any]] = []
    outcomes: list[StepOutcome] = []

    def run_trial(trial: Any) -> float:
        number = trial.number
        params = {name: typed_value(_suggest(trial, name, dimension, hints[name], search), hints[name])
                  for name, dimension in search.space}  # fmt: skip
        current = trial_step(step, number, params, list(before))
        identity = step_identity(current, hashes, graph)
        digest = identity_hash(identity)
        hashes[current.key] = digest
        if on_hash is not None:
            on_hash()
        value, outcome = _finished_value(context, current, digest)
        if value is None:
            again = _why_again(context, current, digest, identity)
            if again is not None:
                _say(echo, f"    trial {number}: {again}")
            outcome = run_step(context, current, digest, identity)
            row = store.trial_row(context.out_dir / store.STORE_DIR, current.name, digest)
            value = None if outcome.status == "failed" or row is None else float(row["value"])
        outcomes.append(outcome)
        setting = ", ".join(f"{name}={_short(value)}" for name, value in params.items())
        if value is None:
            before.append({"number": number, "params": params, "state": "failed"})
            _say(echo, f"    trial {number} ({setting}): FAILED: {outcome.message}")
            raise _TrialFailed(outcome.message)
        before.append({"number": number, "params": params, "value": value})
        how = "done earlier" if outcome.status == "skipped" else f"{outcome.seconds:.1f} s"
        _say(echo, f"    trial {number} ({setting}): val {objective['metric']}@{objective['k']} = {value:.4f} ({how})")
        return value

    with _quiet_optuna() as optuna:
        study = optuna.create_study(direction="maximize", sampler=_sampler(optuna, search, hints))
        study.optimize(run_trial, n_trials=search.trials, catch=(_TrialFailed,))
    seconds = time.perf_counter() - started
    chosen = choose(step.name, before, objective["metric"], objective["k"])
    if chosen is None:
        message = f"every trial of search {step.name} failed; see its trial records"
        return SearchOutcome(StepOutcome(step.key, "failed", seconds, message), tuple(outcomes), None)
    return SearchOutcome(StepOutcome(step.key, "done", seconds), tuple(outcomes), chosen)


def choose(search: str, trials: list[dict[str, Any]], metric: str, k: int) -> Chosen | None:
    """The finished trial of the best value (ties: the earliest); None when none finished."""
    finished = [trial for trial in trials if "value" in trial]
    if not finished:
        return None
    best = max(finished, key=lambda trial: (trial["value"], -trial["number"]))
    return Chosen(search, int(best["number"]), dict(best["params"]), float(best["value"]), metric, int(k))


class _TrialFailed(Exception):
    """A trial's step failed (recorded); Optuna marks the trial failed and goes on."""


def _finished_value(context: StepContext, step: Step, digest: str) -> tuple[float | None, StepOutcome]:
    """The stored validation score of a trial finished earlier with ``digest`` (None: run it)."""
    record, _ = load_record(step.record_path(context.out_dir))
    if not is_done(record, digest):
        return None, StepOutcome(step.key, "pending")
    row = store.trial_row(context.out_dir / store.STORE_DIR, step.name, digest)
    if row is None:
        return None, StepOutcome(step.key, "pending")
    return float(row["value"]), StepOutcome(step.key, "skipped", warnings=tuple(record.get("warnings", ())))


def _why_again(context: StepContext, step: Step, digest: str, identity: dict[str, Any]) -> str | None:
    """Why a trial with a record runs again, in a few words (None for a trial never started)."""
    record, problem = load_record(step.record_path(context.out_dir))
    if problem is not None:
        return f"redone, {problem}"
    if record is None:
        return None
    if record.get("hash") != digest:
        return f"redone, {why_redone(record, identity)}"
    return {"running": "resumed, it was interrupted", "failed": "tried again, it failed before"}.get(
        record.get("status"), "redone, its stored score is missing")


def _option_types(recommender: str, options: dict[str, Any]) -> dict[str, Any]:
    """Each option's declared type, from the recommender's options dataclass."""
    from sonic.rouge.base import RECOMMENDERS

    return typing.get_type_hints(type(RECOMMENDERS.create(recommender, **options).config))


def _sampler(optuna: Any, search: SearchSpec, hints: dict[str, Any]) -> Any:
    if search.sampler == "grid":
        grid = {name: [typed_value(value, hints[name]) for value in values] for name, values in search.grid().items()}
        return optuna.samplers.GridSampler(grid, seed=search.seed)
    settings = search.sampler_settings()
    return optuna.samplers.TPESampler(seed=search.seed, n_startup_trials=settings["startup_trials"])


def _suggest(trial: Any, name: str, dimension: Any, hint: Any, search: SearchSpec) -> Any:
    """Trial's value of option ``name``: a grid's point, a choice, or a draw from the range."""
    if search.sampler == "grid":
        return trial.suggest_categorical(name, [typed_value(value, hint) for value in dimension.grid()])
    if not isinstance(dimension, Range):
        return trial.suggest_categorical(name, [typed_value(value, hint) for value in dimension.values])
    if base_type(hint) is int:
        step = int(dimension.step) if dimension.step is not None else 1
        return trial.suggest_int(name, int(dimension.low), int(dimension.high), step=step, log=dimension.log)
    return trial.suggest_float(name, float(dimension.low), float(dimension.high), step=dimension.step,
                               log=dimension.log)


@contextmanager
def _quiet_optuna() -> Iterator[Any]:
    """Optuna with its log at ERROR while a search runs (sonic prints each trial itself), restored after."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield optuna
    finally:
        optuna.logging.set_verbosity(level)


def trial_table(store_dir: str | os.PathLike) -> pd.DataFrame:
    """Every current trial of the store (:func:`sonic.study.store.trials`) with ``setting`` (its params as
    text), ``chosen`` (runs were made with it) and ``runs`` (their names, comma-separated)."""
    import json

    trials = store.trials(store_dir)
    used: dict[tuple[str, int], list[str]] = {}
    runs_dir = Path(store_dir) / "runs"
    if runs_dir.is_dir() and any(runs_dir.glob("*.parquet")):
        runs = store.runs(store_dir)
        for run, text in zip(runs["run"], runs.get("chosen_by", pd.Series(None, index=runs.index))):
            if isinstance(text, str) and text:
                chosen = json.loads(text)
                used.setdefault((chosen["search"], int(chosen["trial"])), []).append(run)
    settings = [", ".join(f"{name}={_short(value)}" for name, value in json.loads(text).items())
                for text in trials["params"]]  # fmt: skip
    keys = list(zip(trials["search"], trials["number"].astype(int)))
    return trials.assign(setting=settings, chosen=[key in used for key in keys],
                         runs=[", ".join(used.get(key, [])) for key in keys])


def format_trials(table: pd.DataFrame) -> str:
    """``sonic results --trials``: one block per search, a line per trial, the chosen one starred."""
    blocks = []
    for search, group in table.groupby("search", sort=False):
        first = group.iloc[0]
        objective = f"val {first['metric']}@{int(first['k'])}"
        lines = [f"search {search}: {first['label']} on {first['embedding']}, split seed {int(first['split_seed'])}, "
                 f"{len(group)} trials, maximising {objective}",
                 f"   trial  {objective:>12}  95% t-interval (users)  setting"]
        for row in group.itertuples(index=False):
            interval = f"[{row.ci_low:.4f}, {row.ci_high:.4f}]" if np.isfinite(row.ci_low) else ""
            lines.append(f"{'*' if row.chosen else ' '} {int(row.number):>6}  {row.value:>12.4f}  "
                         f"{interval:>20}  {row.setting}")
        used = group[group["chosen"]]
        lines.append(f"* chosen: runs {used.iloc[0]['runs']} were fitted with it and evaluated on test" if len(used)
                     else "no run was made with a setting of this search yet")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _short(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _say(echo: Echo | None, line: str) -> None:
    if echo is not None:
        echo(line)
