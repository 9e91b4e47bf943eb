"""What the report reads from a study's output folder: the study file, the results store, the step records.

:func:`load` never stops at a gap a study can have (a step that failed, a record cut short by a
kill, a run stored without its per-user values): each becomes a sentence in
:attr:`ReportData.gaps` that the report shows. Only a folder that is not a study at all, or has no
results store, is an error.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sonic.errors import SonicError
from sonic.study.config import Study


@dataclass(frozen=True)
class ReportData:
    """What the report draws from (frames as :mod:`sonic.study.store` returns them)."""

    study: Study
    study_dir: Path
    results: pd.DataFrame  # store.query: one row per run, metric, k and split
    per_user: pd.DataFrame  # store.per_user: one row per run, user, metric, k and split
    board: pd.DataFrame  # statistics.leaderboard of the two above
    runs: pd.DataFrame  # store.runs
    failed_steps: list[dict] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)

    @property
    def metric(self) -> str:
        return self.study.report.metric

    @property
    def k(self) -> int:
        return self.study.report.k

    @property
    def seeds(self) -> list[int]:
        return sorted(set(int(seed) for seed in self.results["seed"]))

    @property
    def splits(self) -> list[str]:
        present = set(self.results["split"])
        return list(dict.fromkeys(mode for mode in self.study.evaluation.modes if mode in present))

    @property
    def controls(self) -> dict[str, str]:
        """Each shuffle control's label -> the label of the model it controls (same recommender and options,
        unshuffled; the control's own label when the study has no such model)."""
        if self.runs.empty or not {"shuffle", "label", "recommender", "options"} <= set(self.runs.columns):
            return {}
        specs = self.runs.drop_duplicates("label").assign(shuffle=lambda f: f["shuffle"].fillna(False))
        trained = {(row.recommender, row.options): row.label for row in specs.itertuples() if not bool(row.shuffle)}
        return {row.label: trained.get((row.recommender, row.options), row.label)
                for row in specs.itertuples() if bool(row.shuffle)}  # fmt: skip

    def without_controls(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame``'s rows whose ``model`` is not a shuffle control (the questions compare models, not controls)."""
        return frame[~frame["model"].isin(list(self.controls))]

    def scored(self, model: str, embedding: str, split: str) -> bool:
        """Whether the entry has a result on ``split`` that is not unable."""
        rows = self.board[(self.board["model"] == model) & (self.board["embedding"] == embedding)
                          & (self.board["split"] == split)]  # fmt: skip
        return bool(len(rows)) and not (rows.get("status", pd.Series(dtype=object)) == "unable").all()

    @property
    def unable(self) -> pd.DataFrame:
        """The (model, embedding, split) entries whose model cannot rank the split's tracks (status unable)."""
        rows = self.board[self.board["status"] == "unable"] if "status" in self.board.columns else self.board.iloc[:0]
        return rows.loc[:, ["model", "embedding", "split"]].drop_duplicates().reset_index(drop=True)

    @property
    def main_split(self) -> str:
        """The split plots of one split are drawn on: test when evaluated, else the last one."""
        return "test" if "test" in self.splits else self.splits[-1]


def load(study_dir: str | os.PathLike) -> ReportData:
    """Read the study in ``study_dir`` (see the module docstring)."""
    from sonic.study import store
    from sonic.study.layout import read_output_study
    from sonic.study.report.statistics import leaderboard

    study_dir = Path(study_dir)
    study = read_output_study(study_dir)  # study.resolved.toml (an earlier sonic's study.toml)
    store_dir = study_dir / store.STORE_DIR
    results = store.query(store_dir)
    if results.empty:
        raise SonicError(f"the results store '{store_dir}' holds no metrics; run `sonic experiment` to fill it")
    per_user = store.per_user(store_dir)
    runs = store.runs(store_dir)
    failed, gaps = read_step_records(study_dir)
    status = results["status"] if "status" in results.columns else pd.Series("scored", index=results.index)
    gaps += _runs_without_users(results[status != "unable"], per_user)
    board = leaderboard(results, per_user)
    return ReportData(study, study_dir, results, per_user, board, runs, failed, gaps)


def read_step_records(study_dir: Path) -> tuple[list[dict], list[str]]:
    """(failed steps as {step, error}, sentences about records that cannot be read)."""
    failed, gaps = [], []
    for path in sorted((study_dir / "steps").glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except (OSError, ValueError) as error:
            reason = "cannot be read" if isinstance(error, OSError) else "is not a valid JSON record (cut short?)"
            gaps.append(f"The step record steps/{path.name} {reason}, so whether step {path.stem} finished is "
                        "unknown; run `sonic experiment` on the study again to redo it.")
            continue
        if record.get("status") == "failed":
            failed.append({"step": str(record.get("key", path.stem)), "error": str(record.get("error", ""))})
        elif record.get("status") == "running":  # the study stopped (was killed) during this step
            gaps.append(f"Step {record.get('key', path.stem)} was running when the study stopped, so its results "
                        "are missing; run `sonic experiment` on the study again to finish it.")
    return failed, gaps


def _runs_without_users(results: pd.DataFrame, per_user: pd.DataFrame) -> list[str]:
    """A sentence naming the stored runs whose per-user values are missing (none when every run has them)."""
    keys = ["model", "embedding", "split", "seed"]
    runs = results.loc[:, ["run", *keys]].drop_duplicates()
    have = per_user.loc[:, keys].drop_duplicates().assign(has_users=True)
    merged = runs.merge(have, on=keys, how="left")
    missing = sorted(set(merged.loc[merged["has_users"].isna(), "run"]))
    if not missing:
        return []
    more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
    return [f"The results store has no per-user values for run {', '.join(missing[:3])}{more}: their means are "
            "shown without intervals over users and they take part in no test."]
