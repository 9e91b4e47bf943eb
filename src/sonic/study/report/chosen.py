"""The report's section on settings chosen on validation: each search's choice and every trial's score.

A study's searches (:mod:`sonic.study.tuning`) fit each trial on train and score it on the validation
users only; the chosen setting alone was evaluated on test. The section shows the chosen settings, a
table of every trial's validation score with its interval over users, and a figure of the validation
score by trial, one panel per recommender. A study without a search says so in one sentence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import sonic.study.report.figures as figures
from sonic.study.report.data import ReportData
from sonic.study.report.page import Section

TRIALS_CSV = f"{figures.DATA_DIR}/trials.csv"


def chosen_settings(data: ReportData, report_dir: Path) -> Section:
    from sonic.study.layout import STORE_DIR
    from sonic.study.tuning import trial_table

    section = Section("chosen", "Settings chosen on validation")
    searched = [spec for spec in data.study.recommenders if spec.search is not None]
    if not searched:
        section.absent("No recommender in this study has a search: every option was fixed in the study file "
                       "(a [[recommenders]] entry's search = { option = [...] } chooses options on validation).")
        return section
    table = trial_table(data.study_dir / STORE_DIR)
    metric, k = data.study.search_objective()
    for spec in searched:
        search = spec.search
        space = "; ".join(f"{name} {_describe(dimension.plain())}" for name, dimension in search.space)
        section.text(f"{spec.label}: {search.trials} trials ({search.sampler}, seed {search.seed}) over {space}.")
    if table.empty:
        section.absent("No search trial has finished yet; run `sonic experiment` on the study again.")
        return section
    section.text(f"Each trial was fitted on train and scored on the validation users alone ({metric}@{k}); per "
                 "recommender, embedding and split the trial of the best validation score was chosen, and only "
                 "the chosen setting was evaluated on test and cold test (every run of that entry and split, "
                 "whatever its seed, uses it). Validation scores picked the setting, so they overstate it: "
                 "read its quality off the test results.")
    figures.write_csv(table.drop(columns=["hash"]), report_dir / TRIALS_CSV)
    chosen = table[table["chosen"]]
    section.heading("Chosen settings")
    if chosen.empty:
        section.absent("No run has been made with a chosen setting yet; run `sonic experiment` again.")
    else:
        rows = chosen.assign(value=chosen["value"].map(lambda value: f"{value:.4f}"),
                             trials=chosen["search"].map(table.groupby("search").size()))
        section.table(rows.loc[:, ["label", "embedding", "split_seed", "setting", "number", "value", "trials", "runs"]]
                      .rename(columns={"label": "model", "split_seed": "split seed", "number": "trial",
                                       "value": f"val {metric}@{k}", "runs": "runs evaluated on test"}),
                      csv=TRIALS_CSV)
    section.heading("Every trial")
    cells = table.assign(
        interval=[f"[{low:.4f}, {high:.4f}]" if np.isfinite(low) else "" for low, high in
                  zip(table["ci_low"], table["ci_high"])],
        chosen=np.where(table["chosen"], "chosen", ""),
    )  # fmt: skip
    columns = ["label", "embedding", "split_seed", "number", "setting", "value", "interval", "chosen"]
    section.table(cells.loc[:, columns].rename(columns={"label": "model", "split_seed": "split seed", "number": "trial",
                                                        "value": f"val {metric}@{k}",
                                                        "interval": "95% t-interval over users"}),
                  caption="Intervals: Student-t over the validation users' values (the run's own interval).",
                  csv=TRIALS_CSV)
    section.figure(figures.save(_by_trial(table, metric, k), table.drop(columns=["hash"]), report_dir,
                                "search-trials", f"Validation {metric}@{k} of each trial in the order the sampler "
                                "asked for them, one line per embedding and split; the chosen trial is starred."))
    return section


def _by_trial(table: pd.DataFrame, metric: str, k: int):
    """One panel per recommender: val score against trial number, a line per (embedding, split); the chosen
    trial starred."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(table["label"]))
    columns = min(3, len(labels))
    rows = -(-len(labels) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(4.4 * columns, 3.2 * rows), squeeze=False)
    for axes, label in zip(grid.ravel(), labels):
        for number, (search, group) in enumerate(table[table["label"] == label].groupby("search", sort=False)):
            colour = plt.cm.tab10(number % 10)
            embedding = group["embedding"].iloc[0]
            name = f"{'no embedding' if embedding == '-' else embedding}, split {int(group['split_seed'].iloc[0])}"
            axes.plot(group["number"], group["value"], marker="o", markersize=4, color=colour, label=name)
            best = group[group["chosen"]]
            axes.plot(best["number"], best["value"], marker="*", markersize=14, linestyle="none", color=colour)
        axes.set_title(label)
        axes.set_xlabel("trial")
        axes.set_ylabel(f"val {metric}@{k}")
        axes.grid(alpha=0.3)
        if table[table["label"] == label]["search"].nunique() <= 8:
            axes.legend(fontsize=7)
    for axes in grid.ravel()[len(labels):]:
        axes.axis("off")
    figure.tight_layout()
    return figure


def _describe(plain: object) -> str:
    if isinstance(plain, list):
        return "in {" + ", ".join(map(str, plain)) + "}"
    scale = " (log scale)" if plain.get("log") else f" (step {plain['step']})" if "step" in plain else ""
    return f"from {plain['low']} to {plain['high']}{scale}"
