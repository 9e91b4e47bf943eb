"""The report's plots: each saved as PNG beside the data behind it as CSV (matplotlib, no display)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

FIGURES_DIR = "figures"
DATA_DIR = "data"
_COLOURS = ("#1f6fb2", "#e07b28", "#2c9c5a", "#c23b3b", "#7a52b3", "#8c6d3f", "#d15fb0", "#5f6b73")


@dataclass(frozen=True)
class Figure:
    """A figure written into the report folder: PNG and CSV paths relative to it, and a caption."""

    png: str
    csv: str
    caption: str


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(figure, data: pd.DataFrame, report_dir: Path, name: str, caption: str) -> Figure:
    """Write ``figure`` as ``figures/<name>.png`` and ``data`` as ``data/<name>.csv``; close the figure.

    A name is written once per report: a second figure of the same name would overwrite the first's
    data, so it is a ``ValueError`` (a bug in the report, not a user's mistake).
    """
    from sonic import files

    plt = _pyplot()
    png = Path(FIGURES_DIR) / f"{name}.png"
    csv = Path(DATA_DIR) / f"{name}.csv"
    try:
        for relative in (png, csv):
            if (report_dir / relative).exists():
                raise ValueError(f"the report writes {relative.as_posix()} twice")
        with files.atomic_path(report_dir / png) as temporary:
            figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png")
    finally:
        plt.close(figure)
    write_csv(data, report_dir / csv)
    return Figure(png.as_posix(), csv.as_posix(), caption)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as CSV (no index) atomically; a path already written is a ``ValueError`` (see :func:`save`)."""
    from sonic import files

    if path.exists():
        raise ValueError(f"the report writes {path.name} twice")
    with files.atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False)
    return path


def bars(board: pd.DataFrame, *, label: str, title: str, ylabel: str, colour_by: str | None = None):
    """Horizontal bars of ``mean`` with ``ci_low``..``ci_high`` whiskers, one per row, best on top.

    ``board`` needs the columns ``label`` (bar names), mean, ci_low, ci_high. ``colour_by``: a column
    whose values (in order of first appearance) give the bars their colours and the legend its entries.
    A row whose ``status`` is unable has no bar: it says UNABLE where the bar would start.
    """
    plt = _pyplot()
    groups = list(dict.fromkeys(board[colour_by])) if colour_by else []
    board = board.sort_values("mean", na_position="first")
    figure, axes = plt.subplots(figsize=(7.5, 0.45 * len(board) + 1.4 + 0.25 * len(groups)))
    positions = np.arange(len(board))
    errors = _errors(board)
    colours = ([_colour(groups.index(group)) for group in board[colour_by]] if colour_by
               else [_colour(i) for i in range(len(board))][::-1])
    axes.barh(positions, board["mean"], xerr=errors, color=colours, capsize=3, alpha=0.9)
    if "status" in board.columns:
        for position, status in zip(positions, board["status"]):
            if status == "unable":
                axes.annotate(" UNABLE: cannot score tracks without train events", (0, position), va="center",
                              ha="left", fontsize=8, color="#5f6b73")
    axes.set_yticks(positions, board[label])
    if colour_by:
        from matplotlib.patches import Patch

        handles = [Patch(color=_colour(number), label=group) for number, group in enumerate(groups)]
        axes.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.9)
    axes.set_xlabel(ylabel)
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    return figure


def curves(frame: pd.DataFrame, *, x: str, series: str, metrics: list[str], title: str, x_log: bool = False):
    """One panel per metric (three per row): ``mean`` against ``x`` per ``series``, the interval as a band;
    the legend has a panel of its own."""
    plt = _pyplot()
    columns = 3
    rows = -(-(len(metrics) + 1) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.3 * rows), squeeze=False)
    panels = grid.ravel()
    names = list(dict.fromkeys(frame[series]))
    for axes, metric in zip(panels, metrics):
        for number, name in enumerate(names):
            rows_of = frame[(frame["metric"] == metric) & (frame[series] == name)].sort_values(x)
            axes.plot(rows_of[x], rows_of["mean"], marker="o", markersize=3, color=_colour(number), label=name)
            finite = np.isfinite(rows_of["ci_low"]) & np.isfinite(rows_of["ci_high"])
            axes.fill_between(rows_of[x][finite], rows_of["ci_low"][finite], rows_of["ci_high"][finite],
                              color=_colour(number), alpha=0.12, linewidth=0)
        axes.set_title(metric)
        axes.set_xlabel(x)
        if x_log:
            axes.set_xscale("log")
        axes.grid(alpha=0.3)
    legend = panels[len(metrics)]
    legend.axis("off")
    handles, labels = panels[0].get_legend_handles_labels()
    legend.legend(handles, labels, loc="center", fontsize=9, frameon=False)
    for axes in panels[len(metrics) + 1:]:
        axes.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def gains(frame: pd.DataFrame, *, title: str, xlabel: str):
    """Bars of the mean difference per comparison (``label``), coloured by sign, ``mark`` written beside."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7.5, 0.5 * len(frame) + 1.4))
    positions = np.arange(len(frame))
    colours = [("#2c9c5a" if value >= 0 else "#c23b3b") for value in frame["mean_diff"]]
    axes.barh(positions, frame["mean_diff"], color=colours)
    axes.axvline(0, color="black", linewidth=0.8)
    for position, value, mark in zip(positions, frame["mean_diff"], frame["mark"]):
        axes.annotate(f" {value:+.4f} {mark}", (value, position), va="center",
                      ha="left" if value >= 0 else "right", fontsize=8)
    axes.set_yticks(positions, frame["label"])
    axes.margins(x=0.25)  # room for the value and mark beside each bar
    axes.set_xlabel(xlabel)
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    return figure


def grouped(frame: pd.DataFrame, *, title: str, ylabel: str):
    """One panel per ``split``: bars of ``mean`` per ``group`` (x) and ``label`` (colour), ``ci_low``..``ci_high``
    whiskers."""
    plt = _pyplot()
    splits = list(dict.fromkeys(frame["split"]))
    names = list(dict.fromkeys(frame["label"]))
    figure, axes_row = plt.subplots(1, len(splits), figsize=(5.2 * len(splits) + 0.8, 3.8), squeeze=False)
    width = 0.8 / max(len(names), 1)
    for axes, split in zip(axes_row[0], splits):
        part = frame[frame["split"] == split]
        groups = sorted(set(part["group"]))
        for number, name in enumerate(names):
            rows = part[part["label"] == name].set_index("group").reindex(groups)
            positions = np.arange(len(groups)) + (number - (len(names) - 1) / 2) * width
            axes.bar(positions, rows["mean"], width, yerr=_errors(rows), color=_colour(number), capsize=2,
                     alpha=0.9, label=name)
        axes.set_xticks(np.arange(len(groups)), [group.split(" ", 1)[1] for group in groups], fontsize=8)
        axes.set_title(split)
        axes.set_ylabel(ylabel)
        axes.grid(axis="y", alpha=0.3)
    axes_row[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def lines(frame: pd.DataFrame, *, x: str, columns: list[str], series: str, title: str):
    """Training curves: each ``column`` against ``x`` per ``series`` (one panel per column)."""
    plt = _pyplot()
    figure, axes_row = plt.subplots(1, len(columns), figsize=(3.6 * len(columns) + 0.6, 3.2), squeeze=False)
    for axes, column in zip(axes_row[0], columns):
        for number, (name, rows) in enumerate(frame.groupby(series, sort=False)):
            axes.plot(rows[x], rows[column], marker="o", markersize=3, color=_colour(number), label=str(name))
        axes.set_title(column)
        axes.set_xlabel(x)
        axes.grid(alpha=0.3)
    axes_row[0][0].legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def _errors(board: pd.DataFrame) -> np.ndarray | None:
    low = (board["mean"] - board["ci_low"]).to_numpy(np.float64)
    high = (board["ci_high"] - board["mean"]).to_numpy(np.float64)
    if not (np.isfinite(low).any() or np.isfinite(high).any()):
        return None
    return np.vstack([np.nan_to_num(low), np.nan_to_num(high)])


def _colour(number: int) -> str:
    return _COLOURS[number % len(_COLOURS)]


def panels(frame: pd.DataFrame, *, label: str, metrics: list[str], title: str):
    """One horizontal-bar panel per metric (``mean`` per ``label``, with intervals where known)."""
    plt = _pyplot()
    names = list(dict.fromkeys(frame[label]))
    figure, axes_row = plt.subplots(1, len(metrics), figsize=(2.9 * len(metrics) + 1.6, 0.42 * len(names) + 1.6),
                                    squeeze=False, sharey=True)
    positions = np.arange(len(names))
    for axes, metric in zip(axes_row[0], metrics):
        rows = frame[frame["metric"] == metric].set_index(label).reindex(names)
        axes.barh(positions, rows["mean"], xerr=_errors(rows), color=[_colour(i) for i in range(len(names))],
                  capsize=2, alpha=0.9)
        axes.set_title(metric)
        axes.grid(axis="x", alpha=0.3)
    axes_row[0][0].set_yticks(positions, names)
    figure.suptitle(title)
    figure.tight_layout()
    return figure
