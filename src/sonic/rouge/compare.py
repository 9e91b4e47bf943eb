"""Compare run folders: paired tests on their per-user values, Holm-corrected across the family.

Every pair of runs (the first against each other one, or every pair) is tested on every
(slice, metric, k) both runs hold; the family over which Holm's correction runs is every test
in the returned table, so the adjusted p-values keep the family-wise error rate at the level
a reader applies to them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from sonic.errors import DataError, SonicError
from sonic.rouge.metrics import METRIC_NAMES
from sonic.rouge.run import read_run
from sonic.rouge.significance import holm, paired_tests

COMPARE_COLUMNS = (
    "run_a", "run_b", "slice", "metric", "k", "n_users", "mean_a", "mean_b", "mean_diff",
    "t_statistic", "t_p", "t_p_holm", "wilcoxon_statistic", "wilcoxon_p", "wilcoxon_p_holm",
)  # fmt: skip


def write_comparison(table: pd.DataFrame, output: str | os.PathLike) -> Path:
    """Write :func:`compare_runs`' table as csv to ``output`` atomically; an existing file that is not such
    a table (its header :data:`COMPARE_COLUMNS`) is refused, never written over."""
    from sonic.files import atomic_path, output_file

    def is_comparison(path: Path) -> bool:
        try:
            with open(path, encoding="utf-8") as stream:
                return tuple(stream.readline().strip().split(",")) == COMPARE_COLUMNS
        except (OSError, UnicodeDecodeError):
            return False

    with output_file(output, "comparison table", recognise=is_comparison) as path, atomic_path(path) as temporary:
        table.to_csv(temporary, index=False)
    return Path(output)


def compare_runs(
    run_dirs: Sequence[str | os.PathLike],
    *,
    metrics: Sequence[str] | None = None,
    ks: Sequence[int] | None = None,
    slices: Sequence[str] | None = None,
    all_pairs: bool = False,
) -> pd.DataFrame:
    """Paired t-test and Wilcoxon test for each pair of runs, metric, k and slice (columns :data:`COMPARE_COLUMNS`).

    Pairs: the first run against each other run, or with ``all_pairs`` every pair. ``metrics``
    defaults to the accuracy metrics; ``ks`` and ``slices`` to those the runs share. Runs
    evaluated on different splits (different ``split.json`` settings) cannot be paired: a
    :class:`SonicError`.
    """
    if len(run_dirs) < 2:
        raise SonicError(f"compare needs at least two run folders, got {len(run_dirs)}")
    runs = [read_run(path) for path in run_dirs]
    _check_same_split(runs)
    labels = [str(path) for path in run_dirs]
    pairs = [(i, j) for i in range(len(runs)) for j in range(i + 1, len(runs))] if all_pairs else [
        (0, j) for j in range(1, len(runs))
    ]
    wanted_metrics = list(metrics) if metrics else list(METRIC_NAMES)
    rows = []
    for i, j in pairs:
        a, b = runs[i].per_user, runs[j].per_user
        keys = a[["slice", "metric", "k"]].drop_duplicates().merge(b[["slice", "metric", "k"]].drop_duplicates())
        keys = keys[keys["metric"].isin(wanted_metrics)]
        if ks:
            keys = keys[keys["k"].isin(list(ks))]
        if slices:
            keys = keys[keys["slice"].isin(list(slices))]
        grouped_a, grouped_b = a.groupby(["slice", "metric", "k"]), b.groupby(["slice", "metric", "k"])
        for slice_name, metric, k in keys.itertuples(index=False):
            values_a = grouped_a.get_group((slice_name, metric, k)).set_index("user_id")["value"]
            values_b = grouped_b.get_group((slice_name, metric, k)).set_index("user_id")["value"]
            test = paired_tests(values_a, values_b)
            rows.append({"run_a": labels[i], "run_b": labels[j], "slice": slice_name, "metric": metric,
                         "k": int(k), **test.to_dict()})
    if not rows:
        unable = [f"{label} is unable on {name}" for label, run in zip(labels, runs)
                  for name, info in run.config.get("slices", {}).items()
                  if info.get("status") == "unable" and (not slices or name in slices)]
        if unable:
            raise DataError(f"the runs share no scored (slice, metric, k) to compare: {'; '.join(unable)} (its model "
                            "cannot score a track without train events)")
        raise DataError(
            "the runs share no (slice, metric, k) to compare; "
            f"asked for metrics {', '.join(wanted_metrics)}, k {list(ks) if ks else 'any'}, "
            f"slices {', '.join(slices) if slices else 'any'}"
        )
    table = pd.DataFrame(rows)
    order = {name: position for position, name in enumerate([*METRIC_NAMES, *wanted_metrics])}
    table = table.sort_values(["run_a", "run_b", "slice", "k", "metric"], key=lambda column: (
        column.map(order) if column.name == "metric" else column), kind="stable").reset_index(drop=True)
    table["t_p_holm"] = holm(table["t_p"].to_numpy())
    table["wilcoxon_p_holm"] = holm(table["wilcoxon_p"].to_numpy())
    return table.loc[:, list(COMPARE_COLUMNS)]


def _check_same_split(runs) -> None:
    first = runs[0]
    for run in runs[1:]:
        if run.config.get("split", {}).get("settings") != first.config.get("split", {}).get("settings"):
            raise SonicError(
                f"runs '{first.out_dir}' and '{run.out_dir}' were evaluated on different splits; "
                "paired tests need the same users and ground truth"
            )
