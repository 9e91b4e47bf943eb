"""The results store: every run of a study in Parquet files, queried with DuckDB (no server).

Layout under ``OUT/results/``, one file per run in each folder (written atomically)::

    runs/<run>.parquet       one row: run, label, recommender, options (JSON), shuffle, embedding,
                             embedding_manifest, split_dir, split_seed, modes (JSON), seed, ks (JSON),
                             run_dir, hash, warnings (JSON list)
    metrics/<run>.parquet    metric, k, slice, mean, ci_low, ci_high, n_users (interval over users)
    per_user/<run>.parquet   user_id, metric, k, slice, value

A *slice* is the split file a run was evaluated on (val, test, cold_test); queries call it ``split``.

:func:`query` joins runs and metrics (and can filter with a SQL ``WHERE`` clause);
:func:`leaderboard` averages a run's seeds, with a t-interval over the seeds where there are
several, and over the users where there is one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sonic.errors import SonicError

STORE_DIR = "results"
TABLES = ("runs", "metrics", "per_user")
#: Columns of a study's results table (results.csv): one row per run, metric and k.
RESULT_COLUMNS = ("model", "embedding", "split", "seed", "metric", "k", "mean", "ci_low", "ci_high", "n_users")
LEADERBOARD_COLUMNS = ("model", "embedding", "split", "metric", "k", "mean", "ci_low", "ci_high", "n_seeds",
                       "interval")  # fmt: skip


def write_run(store_dir: str | os.PathLike, run: str, record: dict[str, Any], per_user: pd.DataFrame,
              aggregates: pd.DataFrame) -> None:
    """Store one run: its ``record`` (see the module docstring), per-user values and aggregates.

    ``per_user`` has user_id, metric, k, value, slice; ``aggregates`` metric, k, slice, mean,
    ci_low, ci_high, n_users. The run row is written last, so a run row always has its metrics.
    """
    store_dir = Path(store_dir)
    row = {key: json.dumps(value) if isinstance(value, (list, dict)) else value for key, value in record.items()}
    _write(store_dir / "per_user" / f"{run}.parquet", per_user.loc[:, ["user_id", "metric", "k", "slice", "value"]])
    _write(store_dir / "metrics" / f"{run}.parquet",
           aggregates.loc[:, ["metric", "k", "slice", "mean", "ci_low", "ci_high", "n_users"]])
    _write(store_dir / "runs" / f"{run}.parquet", pd.DataFrame([{"run": run, **row}]))


def prune(store_dir: str | os.PathLike, keep: Iterable[str]) -> list[str]:
    """Delete stored runs not in ``keep`` (runs a changed study file no longer has); return their names."""
    keep = set(keep)
    removed = []
    for table in TABLES:
        for path in sorted((Path(store_dir) / table).glob("*.parquet")):
            run = path.name.removesuffix(".parquet")
            if run not in keep:
                path.unlink()
                removed.append(run)
    return sorted(set(removed))


def connect(store_dir: str | os.PathLike):
    """A DuckDB connection with views ``runs``, ``metrics`` (with the run's columns) and ``per_user``."""
    import duckdb

    store_dir = Path(store_dir)
    if not (store_dir / "runs").is_dir() or not any((store_dir / "runs").glob("*.parquet")):
        raise SonicError(f"no results store in '{store_dir}' (no runs/*.parquet); run a study with `sonic experiment`")
    connection = duckdb.connect()
    for table in TABLES:
        pattern = (store_dir / table / "*.parquet").as_posix().replace("'", "''")
        connection.execute(
            f"CREATE VIEW {table}_files AS SELECT * "
            f"FROM read_parquet('{pattern}', filename = true, union_by_name = true)"
        )
        connection.execute(
            f"CREATE VIEW {table} AS SELECT * EXCLUDE (filename), "
            f"regexp_extract(filename, '([^/\\\\]+)\\.parquet$', 1) AS run_file FROM {table}_files"
        )
    connection.execute(
        "CREATE VIEW results AS SELECT r.label AS model, r.recommender, r.embedding, m.slice AS split, r.seed, "
        "r.split_seed, m.metric, m.k, m.mean, m.ci_low, m.ci_high, m.n_users, r.run "
        "FROM metrics m JOIN runs r ON m.run_file = r.run"
    )
    return connection


def query(store_dir: str | os.PathLike, where: str | None = None) -> pd.DataFrame:
    """Rows of the ``results`` view (model, recommender, embedding, split, seed, split_seed, metric, k,
    mean, ci_low, ci_high, n_users, run), filtered by the SQL condition ``where``."""
    connection = connect(store_dir)
    sql = "SELECT * FROM results" + (f" WHERE {where}" if where else "")
    try:
        frame = connection.execute(sql + " ORDER BY split, metric, k, model, embedding, seed").df()
    except Exception as error:  # duckdb's parser and binder errors have no common public base
        columns = ", ".join(connection.execute("SELECT * FROM results LIMIT 0").df().columns)
        first = str(error).strip().splitlines()[0]
        raise SonicError(f"--where {where!r} is not a valid condition on columns {columns}: {first}") from None
    finally:
        connection.close()
    return frame


def per_user(store_dir: str | os.PathLike, where: str | None = None) -> pd.DataFrame:
    """Per-user values (model, embedding, split, seed, user_id, metric, k, value), filtered by SQL ``where``."""
    connection = connect(store_dir)
    try:
        return connection.execute(
            "SELECT r.label AS model, r.embedding, p.slice AS split, r.seed, p.user_id, p.metric, p.k, p.value "
            "FROM per_user p JOIN runs r ON p.run_file = r.run" + (f" WHERE {where}" if where else "")
        ).df()
    finally:
        connection.close()


def runs(store_dir: str | os.PathLike) -> pd.DataFrame:
    """The runs table (one row per run), JSON columns left as text."""
    connection = connect(store_dir)
    try:
        return connection.execute("SELECT * EXCLUDE (run_file) FROM runs ORDER BY run").df()
    finally:
        connection.close()


def leaderboard(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, embedding, split, metric, k): the mean over seeds and its 95% interval.

    With several seeds the interval is the t-interval of the per-seed means (``interval`` =
    ``"seeds"``); with one seed it is that run's interval over users (``"users"``).
    """
    from sonic.rouge.metrics import confidence_interval

    rows = []
    keys = ["model", "embedding", "split", "metric", "k"]
    for key, group in results.groupby(keys, sort=False):
        if len(group) > 1:
            low, high = confidence_interval(group["mean"].to_numpy(np.float64))
            rows.append((*key, float(group["mean"].mean()), low, high, len(group), "seeds"))
        else:
            row = group.iloc[0]
            rows.append((*key, float(row["mean"]), float(row["ci_low"]), float(row["ci_high"]), 1, "users"))
    return pd.DataFrame(rows, columns=list(LEADERBOARD_COLUMNS))


def format_leaderboard(board: pd.DataFrame, *, ks: Iterable[int] | None = None,
                       metrics: Iterable[str] | None = None) -> str:
    """One text table per (split, k): a row per model and embedding, ``mean ±half-width`` per metric
    (default: the accuracy metrics), best first by the first metric; the interval's basis is said under it."""
    from sonic.rouge.metrics import METRIC_NAMES

    if ks is not None:
        board = board[board["k"].isin(list(ks))]
    wanted = list(metrics) if metrics is not None else list(METRIC_NAMES)
    names = [name for name in wanted if name in set(board["metric"])]
    board = board[board["metric"].isin(names)]
    blocks = []
    for (split, k), group in board.groupby(["split", "k"], sort=False):
        header = f"{split} @{k}".ljust(26) + "".join(name.rjust(17) for name in names)
        lines = [header, "-" * len(header)]
        cells = {(row.model, row.embedding, row.metric): row for row in group.itertuples(index=False)}
        entries = list(dict.fromkeys(zip(group["model"], group["embedding"])))
        entries.sort(key=lambda entry: -_mean(cells.get((*entry, names[0]))))
        for model, embedding in entries:
            text = "".join(_cell(cells.get((model, embedding, name))).rjust(17) for name in names)
            lines.append(f"{model} / {embedding}".ljust(26) + text)
        seeds = max(group["n_seeds"])
        basis = f"the means of {seeds} seeds" if (group["interval"] == "seeds").any() else "users (one seed)"
        lines.append(f"95% t-interval over {basis}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _mean(row: Any) -> float:
    return float(row.mean) if row is not None and np.isfinite(row.mean) else -np.inf


def _cell(row: Any) -> str:
    if row is None:
        return "n/a"
    half = (row.ci_high - row.ci_low) / 2
    return f"{row.mean:.4f} ±{half:.4f}" if np.isfinite(half) else f"{row.mean:.4f}"


def _write(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
