"""Benchmark: `sonic data-split --protocol tamm2025` on a Music4All-Onion-sized log, time and peak memory.

1. Generates, with DuckDB, an Onion-shaped raw log as **Parquet** (``user_id`` int64, ``track_id``
   16-character text as in Music4All, ``timestamp``, one row per play): ``--events`` plays (default
   250 million) by 119,140 users over 56,512 tracks (the Onion release's counts), 2005-02-14 ..
   2020-03-20 with density growing towards the end, tracks released over the years (a fifth at the
   start), popularity skewed (a few tracks and users take most plays), and many plays per (user, track):
   plays come in bursts of 1 + floor(exponential, mean 7) plays (7.5 on average) spread over up to 60
   days. The file lies in a temporary folder (``--work-dir``), deleted after.
2. Splits it with the real command, ``sonic data-split --protocol tamm2025`` (default dates, i.e.
   2018-02-01 .. 2019-02-01 .. 2019-03-01), in a child process: wall time and that process's peak RSS
   (``os.wait4``'s ``ru_maxrss``, children included).
3. Baselines, measured in the same run:
   - DuckDB's own raw scan of the whole file (``count``, ``min``/``max`` timestamp, distinct users):
     the time any reader needs just to go through the data once; ratio = split time / scan time;
   - the pandas code this replaced (``load_events`` + the in-memory split as it was) on a subset of
     the users that fits (every k-th user, about ``--baseline-events`` plays, default 5 million),
     against our split of the same subset: ms per million events for both and the ratio; the two splits
     are checked to be identical.

    nice python benchmarks/split_scale.py [--events 250000000] [--baseline-events 5000000] [--memory-limit 4GB]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_USERS = 119_140
N_TRACKS = 56_512
EXTRA_PLAYS = 7.0  # a (user, track) burst has 1 + floor(exponential with this mean) plays, 7.51 on average


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=250_000_000, help="Plays in the generated log.")
    parser.add_argument("--baseline-events", type=int, default=5_000_000, help="Plays in the pandas subset.")
    parser.add_argument("--memory-limit", default="4GB", help="DuckDB memory limit for the split.")
    parser.add_argument("--work-dir", type=Path, default=None, help="Where the temporary folder goes.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="split_scale-", dir=args.work_dir))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    log = work / "onion.parquet"
    seconds, rss = child(generate_code(log, args.events))
    size = log.stat().st_size / 2**30
    print(f"generated {log.name}: {size:.2f} GiB in {seconds:.0f} s (peak RSS {rss:.2f} GiB)")
    n_events = count_rows(log)
    print(f"events: {n_events:,}")

    scan_seconds, scan_rss = child(
        "import duckdb; con = duckdb.connect(); con.execute(\"SET memory_limit = '4GB'\"); "
        "con.execute('SET enable_progress_bar = false'); "
        f"print(con.sql(\"SELECT count(*), min(timestamp), max(timestamp), count(DISTINCT user_id) FROM '{log}'\")"
        ".fetchall())"
    )
    split_dir = work / "split"
    split_seconds, split_rss = child_command(split_command(log, split_dir, args.memory_limit))
    print(f"ours: sonic data-split tamm2025: {split_seconds:.1f} s, peak RSS {split_rss:.2f} GiB "
          f"(DuckDB memory limit {args.memory_limit})")
    print(f"baseline: DuckDB raw scan of the file: {scan_seconds:.1f} s, peak RSS {scan_rss:.2f} GiB; "
          f"ratio split/scan {split_seconds / scan_seconds:.2f}")
    print((split_dir / "stats.csv").read_text().strip())

    every = max(1, round(n_events / args.baseline_events))  # every k-th user: light and heavy listeners alike
    subset = work / "subset.parquet"
    child(
        "import duckdb; con = duckdb.connect(); con.execute('SET enable_progress_bar = false'); "
        f"con.execute(\"COPY (SELECT * FROM '{log}' WHERE user_id % {every} = 0) TO '{subset}'\")"
    )
    n_subset = count_rows(subset)
    ours_seconds, ours_rss = child_command(split_command(subset, work / "ours", args.memory_limit))
    pandas_seconds, pandas_rss = child(pandas_code(subset, work / "pandas"))
    per_million = 1e6 / n_subset * 1e3
    print(f"subset of {n_subset:,} events (every {every}th user):")
    print(f"  ours   {ours_seconds * per_million:,.0f} ms per million events, peak RSS {ours_rss:.2f} GiB")
    print(f"  pandas {pandas_seconds * per_million:,.0f} ms per million events, peak RSS {pandas_rss:.2f} GiB "
          f"(the replaced load_events + in-memory split)")
    print(f"  ratio pandas/ours time {pandas_seconds / ours_seconds:.2f}, memory {pandas_rss / ours_rss:.2f}")
    print(f"  pandas peak RSS extrapolated to {n_events:,} events: "
          f"{pandas_rss * n_events / n_subset:,.0f} GiB (linear)")
    identical = child_output(compare_code(work / "ours", work / "pandas"))
    print(f"  identical splits: {identical.strip()}")


def split_command(log: Path, out: Path, memory_limit: str) -> list[str]:
    """The real command line: ``sonic data-split --protocol tamm2025`` with its default dates."""
    return [sys.executable, "-m", "sonic", "data-split", "--interactions", str(log), "--protocol", "tamm2025",
            "--out", str(out), "--memory-limit", memory_limit]  # fmt: skip


def generate_code(path: Path, n_events: int) -> str:
    burst = 1 + 1 / (math.exp(1 / EXTRA_PLAYS) - 1)  # E[1 + floor(X)] = 1 + sum_k P(X >= k), X exponential
    n_pairs = round(n_events / burst)
    return f"""
import duckdb
con = duckdb.connect()
con.execute("SET memory_limit = '4GB'")
con.execute("SET preserve_insertion_order = false")
con.execute("SET TimeZone = 'UTC'")
con.execute("SET enable_progress_bar = false")
con.execute("SELECT setseed(0.42)")
start, end = 1108339200, 1584662400  # 2005-02-14 .. 2020-03-20
con.execute(f'''
COPY (
  WITH bursts AS (
    SELECT floor({N_USERS} * pow(random(), 1.8))::BIGINT AS user_id,
           {{start}} + ({{end}} - {{start}}) * sqrt(random()) AS t0,
           1 + floor(-ln(1 - random()) * {EXTRA_PLAYS})::BIGINT AS plays
    FROM range({n_pairs})
  ), released AS (  -- tracks numbered by release: 20% out at the start, the rest released evenly until the end
    SELECT *, floor({N_TRACKS} * (0.2 + 0.8 * (t0 - {{start}}) / ({{end}} - {{start}}))) AS n_out FROM bursts
  ), played AS (  -- the oldest tracks are the most played; the newest few make the cold test
    SELECT user_id, t0, plays,
           substr(md5(floor(n_out * pow(random(), 3.0))::BIGINT::VARCHAR), 1, 16) AS track_id
    FROM released
  )
  SELECT user_id, track_id,
         to_timestamp(least(t0 + random() * 86400 * 60 * (i > 0)::INT, {{end}}))::TIMESTAMP AS timestamp
  FROM played, range(plays) AS r(i)
) TO '{path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)
''')
"""


def pandas_code(subset: Path, out: Path) -> str:
    return f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from split_scale import pandas_split
from sonic.cream.data import SplitConfig, load_events
split = pandas_split(load_events({str(subset)!r}), SplitConfig.for_protocol("tamm2025"))
from pathlib import Path
Path({str(out)!r}).mkdir()
for name, frame in split.items():
    frame.to_parquet(Path({str(out)!r}) / (name + ".parquet"), index=False)
"""


def compare_code(ours: Path, theirs: Path) -> str:
    return f"""
import pandas as pd
from pathlib import Path
from sonic.cream.data import load_events
names = sorted(p.name for p in Path({str(theirs)!r}).glob("*.parquet"))
assert names == sorted(p.name for p in Path({str(ours)!r}).glob("*.parquet")), names
for name in names:
    pd.testing.assert_frame_equal(load_events(Path({str(ours)!r}) / name), load_events(Path({str(theirs)!r}) / name))
print("yes, " + ", ".join(names) + " row for row")
"""


def pandas_split(events, config):
    """The in-memory pandas split this project used before DuckDB (kept here as the baseline)."""
    import numpy as np

    from sonic.cream.data import compress
    from sonic.cream.data.splits import draw_users

    stamps = events["timestamp"]
    in_window = (stamps >= config.start_date).to_numpy() & (stamps < config.end_date).to_numpy()
    window = events[in_window]
    train = compress(window[window["timestamp"] < config.test_date])
    pairs = compress(window)
    evaluation = pairs[(pairs["timestamp"] >= config.test_date) & pairs["user_id"].isin(train["user_id"].unique())]
    seen_track = evaluation["track_id"].isin(train["track_id"].unique())
    hot, cold = evaluation[seen_track], evaluation[~seen_track]
    candidates = hot["user_id"].unique()
    candidates = candidates[~np.isin(candidates, cold["user_id"].unique())]
    in_val = hot["user_id"].isin(draw_users(candidates, config.val_fraction, seed=config.seed))
    tidy = lambda frame: frame.reset_index(drop=True)  # noqa: E731
    return {"train": train, "val": tidy(hot[in_val]), "test": tidy(hot[~in_val]), "cold_test": tidy(cold)}


def child(code: str) -> tuple[float, float]:
    """Run Python ``code`` in a child process: (wall seconds, peak RSS in GiB)."""
    return child_command([sys.executable, "-c", code])


def child_command(command: list[str]) -> tuple[float, float]:
    started = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"failed ({process.returncode}): {' '.join(command)[:300]}")
    return seconds, usage.ru_maxrss / 2**20  # kilobytes on Linux


def count_rows(path: Path) -> int:
    return int(child_output(f"import duckdb; print(duckdb.sql(\"SELECT count(*) FROM '{path}'\").fetchall()[0][0])"))


def child_output(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout


if __name__ == "__main__":
    main()
