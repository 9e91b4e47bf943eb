"""The results store: every run of a study in Parquet files, queried with DuckDB (no server).

Layout under ``OUT/results/``, one file per run in each folder (each written atomically)::

    runs/<run>.parquet       one row: run, label, recommender, options (JSON), shuffle, embedding,
                             embedding_manifest, split_dir, split_seed, modes (JSON), seed, ks (JSON),
                             run_dir, hash, warnings (JSON list), slices (JSON: each slice's candidates
                             and status)
    metrics/<run>.parquet    metric, k, slice, mean, ci_low, ci_high, n_users (interval over users), status
                             (scored; unable: the model cannot rank the slice's tracks, no value), hash
    per_user/<run>.parquet   user_id, metric, k, slice, value, hash
    trials/<trial>.parquet   one row per search trial (:mod:`sonic.study.tuning`): trial, search, number,
                             label, recommender, embedding, split_seed, seed, params (JSON), options (JSON),
                             metric, k, value (the validation score), ci_low, ci_high, n_users, hash
    steps.json               the study's steps as last run: {"steps": {"run/<run>": "<hash>", ...}}

Every row carries ``hash``, the hash of the step that produced it (:mod:`sonic.study.steps`). A *slice*
is the split file a run was evaluated on (val, test, cold_test); queries call it ``split``.

**Only current results are read.** A run's rows count when its step is in ``steps.json`` with the
hash the study computed when it was last run, and its record ``OUT/steps/run.<run>.json`` says done
with that hash: rows of a run whose step failed, is being redone, was cut short by a kill, or was made
by other settings or code are never read. (A store without ``steps.json``, from an earlier sonic or
written by hand, is read whole, except the runs whose record says otherwise.)

**Queries cannot touch files.** The current rows are loaded into DuckDB's memory, then file access is
switched off and the configuration locked before a condition (``sonic results --where``) runs: it can
read the store's tables and nothing else, and write nothing. :func:`query` joins runs and metrics;
:func:`leaderboard` averages a run's seeds, with a t-interval over the seeds where there are several,
and over the users where there is one.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sonic.errors import SonicError
from sonic.files import remove_temporaries, write_json
from sonic.study.layout import STEPS_DIR, STORE_DIR, is_done, load_record

TABLES = ("runs", "metrics", "per_user")
#: The search trials' table (and, in a study's folder, the trial run folders).
TRIALS_DIR = "trials"
TRIAL_COLUMNS = ("trial", "search", "number", "label", "recommender", "embedding", "split_seed", "seed", "params",
                 "options", "metric", "k", "value", "ci_low", "ci_high", "n_users", "hash")  # fmt: skip
#: The study's steps and their hashes, as its last run computed them.
PLAN_FILE = "steps.json"
#: Columns of a study's results table (results.csv): one row per run, metric and k; ``status`` is ``scored``,
#: or ``unable`` where the model cannot rank the split's tracks (a collaborative model on the cold test).
RESULT_COLUMNS = ("model", "embedding", "split", "seed", "metric", "k", "mean", "ci_low", "ci_high", "n_users",
                  "status")
LEADERBOARD_COLUMNS = ("model", "embedding", "split", "metric", "k", "mean", "ci_low", "ci_high", "n_seeds",
                       "interval", "status")  # fmt: skip
_METRIC_COLUMNS = ["metric", "k", "slice", "mean", "ci_low", "ci_high", "n_users", "status"]
_USER_COLUMNS = ["user_id", "metric", "k", "slice", "value"]
_RESULTS_VIEW = (
    "CREATE VIEW results AS SELECT r.label AS model, r.recommender, r.embedding, m.slice AS split, r.seed, "
    "r.split_seed, m.metric, m.k, m.mean, m.ci_low, m.ci_high, m.n_users, m.status, r.run FROM metrics m "
    "JOIN runs r ON m.run = r.run"
)
_PER_USER_SQL = (
    "SELECT r.label AS model, r.embedding, p.slice AS split, r.seed, p.user_id, p.metric, p.k, p.value "
    "FROM per_user p JOIN runs r ON p.run = r.run"
)


def write_run(store_dir: str | os.PathLike, run: str, record: dict[str, Any], per_user: pd.DataFrame,
              aggregates: pd.DataFrame) -> None:
    """Store one run: its ``record`` (see the module docstring; ``record["hash"]`` is its step's hash),
    per-user values and aggregates.

    ``per_user`` has user_id, metric, k, value, slice; ``aggregates`` metric, k, slice, mean,
    ci_low, ci_high, n_users. Every row gets the step's hash. The run row is written last, so a run
    row always has its metrics.
    """
    store_dir = Path(store_dir)
    digest = str(record["hash"])
    row = {key: json.dumps(value) if isinstance(value, (list, dict)) else value for key, value in record.items()}
    _write(store_dir / "per_user" / f"{run}.parquet", per_user.loc[:, _USER_COLUMNS].assign(hash=digest))
    if "status" not in aggregates.columns:
        aggregates = aggregates.assign(status="scored")
    _write(store_dir / "metrics" / f"{run}.parquet", aggregates.loc[:, _METRIC_COLUMNS].assign(hash=digest))
    _write(store_dir / "runs" / f"{run}.parquet", pd.DataFrame([{"run": run, **row}]))


def write_trial(store_dir: str | os.PathLike, trial: str, row: dict[str, Any]) -> None:
    """Store one search trial (``row``: the columns of ``trials/`` in the module docstring, ``hash`` its step's)."""
    row = {key: json.dumps(value) if isinstance(value, (list, dict)) else value for key, value in row.items()}
    _write(Path(store_dir) / TRIALS_DIR / f"{trial}.parquet", pd.DataFrame([{"trial": trial, **row}]))


def remove_trial(store_dir: str | os.PathLike, trial: str) -> None:
    """Delete trial ``trial`` from the store."""
    (Path(store_dir) / TRIALS_DIR / f"{trial}.parquet").unlink(missing_ok=True)


def trial_row(store_dir: str | os.PathLike, trial: str, digest: str) -> dict[str, Any] | None:
    """The stored row of ``trial`` made by the step of hash ``digest`` (None when there is none)."""
    path = Path(store_dir) / TRIALS_DIR / f"{trial}.parquet"
    try:
        frame = pd.read_parquet(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise SonicError(f"the results store file '{path}' cannot be read ({str(error).splitlines()[0]}); "
                         "run the study again to rewrite it") from None
    frame = frame[frame["hash"] == digest]
    return None if frame.empty else frame.iloc[0].to_dict()


def trials(store_dir: str | os.PathLike) -> pd.DataFrame:
    """Every current search trial (its step in ``steps.json`` and recorded done with that hash), by
    search and number; ``params`` and ``options`` left as JSON text."""
    store_dir = Path(store_dir)
    records = store_dir.parent / STEPS_DIR
    plan = _read_plan(store_dir) or {}
    rows = []
    for key, digest in plan.items():
        name = key.removeprefix("trial/")
        if key.startswith("trial/") and is_done(load_record(records / f"trial.{name}.json")[0], digest):
            row = trial_row(store_dir, name, digest)
            if row is not None:
                rows.append(row)
    frame = pd.DataFrame(rows, columns=list(TRIAL_COLUMNS))
    return frame.sort_values(["search", "number"], kind="stable").reset_index(drop=True)


def prune_trials(store_dir: str | os.PathLike, keep: Iterable[str]) -> list[str]:
    """Delete the trials a study no longer has (not in ``keep``): stored rows, step records
    (``OUT/steps/trial.<trial>.json``) and trial folders (``OUT/trials/<trial>/``); return their names."""
    store_dir = Path(store_dir)
    study_dir = store_dir.parent
    stored = {path.name.removesuffix(".parquet") for path in (store_dir / TRIALS_DIR).glob("*.parquet")}
    recorded = {path.name.removeprefix("trial.").removesuffix(".json")
                for path in (study_dir / STEPS_DIR).glob("trial.*.json")}  # fmt: skip
    removed = sorted((stored | recorded) - set(keep))
    for trial in removed:
        remove_trial(store_dir, trial)
        (study_dir / STEPS_DIR / f"trial.{trial}.json").unlink(missing_ok=True)
        folder = study_dir / TRIALS_DIR / trial
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)
    return removed


def remove_run(store_dir: str | os.PathLike, run: str) -> None:
    """Delete run ``run`` from the store (its run row first, so no reader sees a run without metrics)."""
    for table in TABLES:
        (Path(store_dir) / table / f"{run}.parquet").unlink(missing_ok=True)


def write_plan(store_dir: str | os.PathLike, hashes: dict[str, str]) -> None:
    """Record the study's steps (``{"run/<run>": hash, ...}``) as the current run computes them."""
    from sonic import __version__

    write_json(Path(store_dir) / PLAN_FILE, {"artifact": "study steps", "sonic": __version__, "steps": hashes})


def prune(store_dir: str | os.PathLike, keep: Iterable[str]) -> list[str]:
    """Delete what a study no longer has: the stored runs not in ``keep``, with their step records
    (``OUT/steps/run.<run>.json``) and run folders (``OUT/runs/<run>/``); return their names."""
    store_dir = Path(store_dir)
    study_dir = store_dir.parent
    keep = set(keep)
    stored = {path.name.removesuffix(".parquet") for table in TABLES
              for path in (store_dir / table).glob("*.parquet")}  # fmt: skip
    recorded = {path.name.removeprefix("run.").removesuffix(".json")
                for path in (study_dir / STEPS_DIR).glob("run.*.json")}  # fmt: skip
    removed = sorted((stored | recorded) - keep)
    for run in removed:
        remove_run(store_dir, run)
        (study_dir / STEPS_DIR / f"run.{run}.json").unlink(missing_ok=True)
        folder = study_dir / "runs" / run
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)
    return removed


def clean(store_dir: str | os.PathLike) -> None:
    """Remove the temporaries of writers killed in the store's folders."""
    for table in (*TABLES, TRIALS_DIR):
        remove_temporaries(Path(store_dir) / table)
    remove_temporaries(store_dir)


def current_runs(store_dir: str | os.PathLike) -> dict[str, str | None]:
    """The runs whose rows count (see the module docstring): run -> the hash its rows must carry
    (None: any, for a run of a store without ``steps.json`` that has no record)."""
    store_dir = Path(store_dir)
    records = store_dir.parent / STEPS_DIR
    plan = _read_plan(store_dir)
    if plan is not None:
        current = {}
        for key, digest in plan.items():
            run = key.removeprefix("run/")
            if key.startswith("run/") and is_done(load_record(records / f"run.{run}.json")[0], digest):
                current[run] = digest
        return current
    current = {}
    for path in sorted((store_dir / "runs").glob("*.parquet")):
        run = path.name.removesuffix(".parquet")
        record, problem = load_record(records / f"run.{run}.json")
        if record is None and problem is None:
            current[run] = None
        elif is_done(record):
            current[run] = record["hash"]
    return current


def query(store_dir: str | os.PathLike, where: str | None = None) -> pd.DataFrame:
    """Rows of the ``results`` view (model, recommender, embedding, split, seed, split_seed, metric, k,
    mean, ci_low, ci_high, n_users, run) of the current runs, filtered by the SQL condition ``where``
    (which can read these columns and nothing else)."""
    with _Connection(store_dir, ("runs", "metrics")) as connection:
        return connection.select("SELECT * FROM results", where, "split, metric, k, model, embedding, seed")


def per_user(store_dir: str | os.PathLike, where: str | None = None) -> pd.DataFrame:
    """Per-user values (model, embedding, split, seed, user_id, metric, k, value) of the current runs,
    filtered by the SQL condition ``where``."""
    with _Connection(store_dir, ("runs", "per_user")) as connection:
        return connection.select(_PER_USER_SQL, where)


def runs(store_dir: str | os.PathLike) -> pd.DataFrame:
    """The runs table of the current runs (one row per run), JSON columns left as text."""
    with _Connection(store_dir, ("runs",)) as connection:
        return connection.select("SELECT * FROM runs", None, "run")


def connect(store_dir: str | os.PathLike, tables: Iterable[str] = TABLES):
    """An in-memory DuckDB connection holding the current rows of ``tables`` (``runs``, ``metrics``,
    ``per_user``; each with a ``run`` column), with file access off and its configuration locked."""
    return _Connection(store_dir, tuple(tables)).connection


class _Connection:
    """The current rows of some of the store's tables in an in-memory DuckDB that cannot touch files."""

    def __init__(self, store_dir: str | os.PathLike, tables: tuple[str, ...]) -> None:
        import duckdb

        store_dir = Path(store_dir)
        if not (store_dir / "runs").is_dir() or not any((store_dir / "runs").glob("*.parquet")):
            raise SonicError(f"no results store in '{store_dir}' (no runs/*.parquet); run a study with "
                             "`sonic experiment`")
        current = current_runs(store_dir)
        frames = {table: _load(store_dir, table, current) for table in tables}
        self.connection = duckdb.connect(":memory:")
        for setting in ("temp_directory = ''", "python_enable_replacements = false",
                        "autoinstall_known_extensions = false", "autoload_known_extensions = false",
                        "enable_external_access = false"):  # fmt: skip
            self.connection.execute(f"SET {setting}")
        for table, frame in frames.items():
            self.connection.register(f"_{table}_frame", frame)
            self.connection.execute(f"CREATE TABLE {table} AS SELECT * FROM _{table}_frame")
            self.connection.unregister(f"_{table}_frame")
        if {"runs", "metrics"} <= set(tables):
            self.connection.execute(_RESULTS_VIEW)
        self.connection.execute("SET lock_configuration = true")

    def __enter__(self) -> _Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.connection.close()

    def select(self, sql: str, where: str | None, order: str | None = None) -> pd.DataFrame:
        """``sql`` (a SELECT without WHERE) filtered by the user's condition ``where``, ordered by ``order``."""
        import duckdb

        text = sql + (f" WHERE ({where})" if where else "")
        text += f" ORDER BY {order}" if order else ""
        try:
            statements = duckdb.extract_statements(text)
        except duckdb.Error:
            statements = []  # a parser error: reported below, with the columns
        if len(statements) > 1 or (statements and statements[0].type != duckdb.StatementType.SELECT):
            raise SonicError(f"--where {where!r} must be one condition, not several SQL statements; "
                             "e.g. \"metric = 'NDCG' AND k = 10\"")
        try:
            return self.connection.execute(text).df()
        except duckdb.PermissionException:
            raise SonicError(f"--where {where!r} may only test the store's columns; it cannot read or write "
                             "files") from None
        except duckdb.Error as error:
            columns = ", ".join(self.connection.execute(f"{sql} LIMIT 0").df().columns)
            first = str(error).strip().splitlines()[0]
            raise SonicError(f"--where {where!r} is not a valid condition on columns {columns}: {first}") from None


def _load(store_dir: Path, table: str, current: dict[str, str | None]) -> pd.DataFrame:
    """The rows of ``table`` of the ``current`` runs that carry the run's hash, with a ``run`` column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = []
    for run, digest in sorted(current.items()):
        try:
            frame = pq.read_table(store_dir / table / f"{run}.parquet")
        except FileNotFoundError:
            continue
        except (OSError, pa.ArrowException) as error:
            raise SonicError(f"the results store file '{store_dir / table / run}.parquet' cannot be read "
                             f"({str(error).splitlines()[0]}); run the study again to rewrite it") from None
        frame = frame.to_pandas()
        if table != "runs":
            frame.insert(0, "run", run)
        if table == "metrics":  # a store from before statuses: every row was scored
            frame["status"] = frame["status"].fillna("scored") if "status" in frame.columns else "scored"
        if digest is not None and "hash" in frame.columns:
            frame = frame[frame["hash"] == digest]
        parts.append(frame)
    if not parts:
        return _empty(table)
    return pd.concat(parts, ignore_index=True)


def _empty(table: str) -> pd.DataFrame:
    columns = {
        "runs": {"run": "object", "label": "object", "recommender": "object", "embedding": "object",
                 "seed": "int64", "split_seed": "int64", "hash": "object"},
        "metrics": {"run": "object", **dict.fromkeys(["metric", "slice"], "object"), "k": "int64",
                    **dict.fromkeys(["mean", "ci_low", "ci_high"], "float64"), "n_users": "int64", "status": "object",
                    "hash": "object"},
        "per_user": {"run": "object", "user_id": "object", "metric": "object", "k": "int64", "slice": "object",
                     "value": "float64", "hash": "object"},
    }[table]
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def _read_plan(store_dir: Path) -> dict[str, str] | None:
    try:
        plan = json.loads((store_dir / PLAN_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, UnicodeDecodeError):
        return {}  # cut short: no run is known to be current
    steps = plan.get("steps") if isinstance(plan, dict) else None
    return {str(key): str(value) for key, value in steps.items()} if isinstance(steps, dict) else {}


def leaderboard(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, embedding, split, metric, k): the mean over seeds and its 95% interval.

    With several seeds the interval is the t-interval of the per-seed means (``interval`` =
    ``"seeds"``); with one seed it is that run's interval over users (``"users"``).
    """
    from sonic.rouge.metrics import metric_interval

    rows = []
    keys = ["model", "embedding", "split", "metric", "k"]
    status = results["status"] if "status" in results.columns else pd.Series("scored", index=results.index)
    for key, group in results.assign(status=status.fillna("scored")).groupby(keys, sort=False):
        state = "unable" if (group["status"] == "unable").all() else "scored"
        if state == "unable":
            rows.append((*key, np.nan, np.nan, np.nan, len(group), "none", state))
        elif len(group) > 1:
            _, low, high = metric_interval(key[3], group["mean"].to_numpy(np.float64))
            rows.append((*key, float(group["mean"].mean()), low, high, len(group), "seeds", state))
        else:
            row = group.iloc[0]
            rows.append((*key, float(row["mean"]), float(row["ci_low"]), float(row["ci_high"]), 1, "users", state))
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
    width = max([26, *(len(f"{model} / {embedding}") + 2 for model, embedding in zip(board["model"], board["embedding"]))])
    for (split, k), group in board.groupby(["split", "k"], sort=False):
        header = f"{split} @{k}".ljust(width) + "".join(name.rjust(17) for name in names)
        lines = [header, "-" * len(header)]
        cells = {(row.model, row.embedding, row.metric): row for row in group.itertuples(index=False)}
        entries = list(dict.fromkeys(zip(group["model"], group["embedding"])))
        entries.sort(key=lambda entry: -_mean(cells.get((*entry, names[0]))))
        for model, embedding in entries:
            text = "".join(_cell(cells.get((model, embedding, name))).rjust(17) for name in names)
            lines.append(f"{model} / {embedding}".ljust(width) + text)
        seeds = max(group["n_seeds"])
        basis = f"the means of {seeds} seeds" if (group["interval"] == "seeds").any() else "users (one seed)"
        lines.append(f"95% t-interval over {basis} (accuracy metrics: cut at 0 and 1)")
        if (group["status"] == "unable").any():
            lines.append("UNABLE: the model cannot score a track without train events (no value, not a zero)")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _mean(row: Any) -> float:
    return float(row.mean) if row is not None and np.isfinite(row.mean) else -np.inf


def _cell(row: Any) -> str:
    if row is None:
        return "n/a"
    if getattr(row, "status", "scored") == "unable":
        return "UNABLE"
    half = (row.ci_high - row.ci_low) / 2
    return f"{row.mean:.4f} ±{half:.4f}" if np.isfinite(half) else f"{row.mean:.4f}"


def _write(path: Path, frame: pd.DataFrame) -> None:
    from sonic.files import atomic_path

    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
