"""Benchmark: ``sonic run-model --model-name knn`` end to end, against a plain numpy/pyarrow pipeline.

The data is :mod:`evaluate_scale`'s generated tamm2025-shaped split (21,018 users x 55,262 tracks,
5.37 M unique train pairs, a hot test of about 265 k pairs for about 10.2 k users, 768-d float32
vectors), written once to a split folder and an embedding table (not timed).

Three sides, each a fresh process, taking turns ``--repeats`` times (median wall, CPU = user + system
of the process and all its threads, peak RSS):

- **numpy**: :func:`pipeline`, what a competent engineer writes by hand: pyarrow reads the train and
  test files (ids dictionary-encoded) and the embedding table; user vectors are the mean of their
  unique train tracks' vectors (one sparse product, float64, then unit length); blocks of 1,024 test
  users are scored by one float32 matmul against the unit track vectors, seen tracks set to -inf,
  ``argpartition`` top 50, sorted (best first, equal scores by track id); the lists are written to
  ``recommendations.parquet`` (user_id, track_id, rank, score) and HitRate, Precision, Recall, MRR and
  NDCG@50 per user (from sorted pair keys) to ``per_user.parquet``.
- **accuracy**: ``sonic run-model --model-name knn --mode test --k 50 --no-beyond`` (the CLI).
- **full**: the same command with beyond-accuracy metrics (coverage, novelty, ARP, long-tail share, ILD).

Checked after the runs: every side's lists are the same (ids at every rank; where two scores tie, the
tied tracks as sets), scores within 1e-6 and the accuracy metrics per user within 1e-9. Printed: the
three sides, the ratios accuracy / numpy (target <= 1.1) and full / accuracy (target <= 1.1), the load
average before and after. ``--workdir DIR --reuse`` times again on data generated there before.

    python benchmarks/knn_pipeline.py [--scale 0.25] [--repeats 3] [--workdir DIR [--reuse]]
    python benchmarks/knn_pipeline.py --workdir DIR --reuse --phases   # the numpy side's phase times
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

K, BLOCK = 50, 1024
SONIC = [sys.executable, "-c", "import sys; from sonic.cli import main; sys.argv[0] = 'sonic'; sys.exit(main())"]


# --- the numpy pipeline -----------------------------------------------------------------------------


def pipeline(split_dir: Path, table_path: Path, out_dir: Path, *, k: int = K, block: int = BLOCK,
             phases: dict[str, float] | None = None) -> None:
    """Read, average, score, take the top ``k``, write the lists and the per-user accuracy metrics."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from scipy import sparse

    clock = _Clock(phases)
    ids = ["user_id", "track_id"]
    train = pq.read_table(split_dir / "train.parquet", columns=ids, read_dictionary=ids)
    test = pq.read_table(split_dir / "test.parquet", columns=ids, read_dictionary=ids)
    table = pq.read_table(table_path, columns=["track_id", "embedding"])
    embedding = table.column("embedding").combine_chunks()
    vectors = embedding.flatten().to_numpy().reshape(len(embedding), -1)  # (n_table, dim) float32
    table_ids = table.column("track_id").to_numpy(zero_copy_only=False).astype(object)
    clock("read")

    # Codes: users sorted by id, the catalogue = train tracks with a vector, sorted by id.
    train_users, train_user_ids = _codes(train.column("user_id"))
    train_tracks, train_track_ids = _codes(train.column("track_id"))
    table_order = np.argsort(table_ids)
    at = np.minimum(np.searchsorted(table_ids[table_order], train_track_ids), len(table_ids) - 1)
    has_vector = table_ids[table_order][at] == train_track_ids
    catalogue_ids = train_track_ids[has_vector]
    catalogue_rows = np.where(has_vector, np.cumsum(has_vector) - 1, -1)[train_tracks]
    n_users, n_tracks = len(train_user_ids), len(catalogue_ids)
    keep = catalogue_rows >= 0
    seen = sparse.coo_matrix((np.ones(int(keep.sum())), (train_users[keep], catalogue_rows[keep])),
                             shape=(n_users, n_tracks)).tocsr()
    seen.sum_duplicates()  # one entry per unique (user, track) pair, columns sorted
    seen.data[:] = 1.0
    counts = np.diff(seen.indptr)
    clock("codes")

    truth_users_raw, truth_user_ids = _codes(test.column("user_id"))
    truth_tracks_raw, truth_track_ids = _codes(test.column("track_id"))
    truth_user_rows = np.searchsorted(train_user_ids, truth_user_ids)  # every test user is a train user here
    truth_track_rows = np.searchsorted(catalogue_ids, truth_track_ids)
    in_catalogue = catalogue_ids[np.minimum(truth_track_rows, n_tracks - 1)] == truth_track_ids
    truth_track_rows = np.where(in_catalogue, truth_track_rows, n_tracks)  # n_tracks: never recommended
    truth_keys = np.sort(truth_user_rows[truth_users_raw] * (n_tracks + 1) + truth_track_rows[truth_tracks_raw])
    test_users = np.unique(truth_user_rows)

    vectors64 = vectors[table_order[at[has_vector]]].astype(np.float64)
    items = (vectors64 / np.linalg.norm(vectors64, axis=1, keepdims=True)).astype(np.float32)
    means = sparse.diags(1.0 / np.maximum(counts, 1)) @ seen  # each user's row: 1 / (unique train tracks)
    user_means = means[test_users] @ vectors64
    user_vectors = (user_means / np.linalg.norm(user_means, axis=1, keepdims=True)).astype(np.float32)
    clock("means")

    top = np.empty((len(test_users), k), np.int64)
    top_scores = np.empty((len(test_users), k), np.float32)
    for start in range(0, len(test_users), block):
        rows = test_users[start : start + block]
        scores = user_vectors[start : start + block] @ items.T  # (b, n_tracks) float32
        sub = seen[rows]
        scores[np.repeat(np.arange(len(rows)), np.diff(sub.indptr)), sub.indices] = -np.inf
        part = np.argpartition(scores, n_tracks - k, axis=1)[:, n_tracks - k :]
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.lexsort((part, -part_scores), axis=1)  # best first, equal scores by track id
        top[start : start + block] = np.take_along_axis(part, order, axis=1)
        top_scores[start : start + block] = np.take_along_axis(part_scores, order, axis=1)
    clock("score")

    # Accuracy metrics per user, from sorted pair keys (the split has no repeated test pair).
    keys = test_users[:, None] * (n_tracks + 1) + top
    found = np.minimum(np.searchsorted(truth_keys, keys), len(truth_keys) - 1)
    hits = truth_keys[found] == keys  # (n_test, k) bool
    user_starts = np.searchsorted(truth_keys, test_users * (n_tracks + 1))
    n_relevant = np.searchsorted(truth_keys, (test_users + 1) * (n_tracks + 1)) - user_starts
    discounts = 1.0 / np.log2(np.arange(k) + 2.0)
    n_hits = hits.sum(axis=1)
    first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1.0, np.inf)
    metrics = {
        "HitRate": (n_hits > 0).astype(np.float64),
        "Precision": n_hits / k,
        "Recall": n_hits / n_relevant,
        "MRR": 1.0 / first,
        "NDCG": (hits @ discounts) / np.cumsum(discounts)[np.minimum(n_relevant, k) - 1],
    }
    clock("metrics")

    out_dir.mkdir(parents=True, exist_ok=True)
    user_dictionary = pa.array(train_user_ids[test_users], pa.string())
    n_test = len(test_users)
    lists = pa.table({
        "user_id": pa.DictionaryArray.from_arrays(np.repeat(np.arange(n_test, dtype=np.int32), k), user_dictionary),
        "track_id": pa.DictionaryArray.from_arrays(top.astype(np.int32).ravel(), pa.array(catalogue_ids, pa.string())),
        "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), n_test),
        "score": top_scores.ravel(),
    })
    pq.write_table(lists, out_dir / "recommendations.parquet")
    per_user = pa.table({"user_id": user_dictionary, **{f"{name}@{k}": value for name, value in metrics.items()}})
    pq.write_table(per_user, out_dir / "per_user.parquet")
    clock("write")


def _codes(column) -> tuple[np.ndarray, np.ndarray]:
    """A dictionary-encoded Arrow column -> (codes (n,) int64 into the sorted ids, sorted ids (m,) object)."""
    combined = column.combine_chunks()  # one dictionary for every chunk
    dictionary = combined.dictionary.to_numpy(zero_copy_only=False).astype(object)
    order = np.argsort(dictionary)
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return rank[combined.indices.to_numpy()], dictionary[order]


class _Clock:
    def __init__(self, phases: dict[str, float] | None) -> None:
        self.phases, self.wall, self.cpu = phases, time.perf_counter(), time.process_time()

    def __call__(self, name: str) -> None:
        if self.phases is not None:
            wall, cpu = time.perf_counter(), time.process_time()
            self.phases[name] = (wall - self.wall, cpu - self.cpu)
            self.wall, self.cpu = wall, cpu


# --- the runs ---------------------------------------------------------------------------------------


def command(side: str, directory: Path, out: Path) -> list[str]:
    """The argv of one side, run as a fresh process."""
    if side == "numpy":
        code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import knn_pipeline as b; "
                f"from pathlib import Path; b.pipeline(Path({str(directory / 'split')!r}), "
                f"Path({str(directory / 'emb' / 'gen.parquet')!r}), Path({str(out)!r}))")
        return [sys.executable, "-c", code]
    argv = [*SONIC, "run-model", "--model-name", "knn", "--split-dir", str(directory / "split"), "--embedding",
            str(directory / "emb" / "gen.parquet"), "--mode", "test", "--k", str(K), "--out", str(out)]
    return argv + (["--no-beyond"] if side == "accuracy" else [])


def run_side(side: str, directory: Path) -> dict[str, float]:
    """One side in a fresh process: wall seconds, CPU seconds (user + system) and peak RSS (MB).

    The output folder of an earlier run is removed first (not timed), so every run writes a new one.
    """
    out = directory / f"out-{side}"
    shutil.rmtree(out, ignore_errors=True)
    log = directory / f"{side}.stderr"
    with log.open("wb") as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command(side, directory, out), stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own CPU time and peak RSS
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{side} side failed (exit {process.returncode}):\n{log.read_text()}")
    return {"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}


def check_equal(directory: Path) -> list[str]:
    """Lines describing how the three sides' lists and accuracy metrics agree; SystemExit where they do not."""
    import pandas as pd

    base = pd.read_parquet(directory / "out-numpy" / "recommendations.parquet")
    base_metrics = pd.read_parquet(directory / "out-numpy" / "per_user.parquet").set_index("user_id")
    base_metrics.index = base_metrics.index.astype(str)
    lines = []
    for side in ("accuracy", "full"):
        run = directory / f"out-{side}"
        lists = pd.read_parquet(run / "recommendations.parquet")
        problem = _lists_differ(base, lists)
        if problem:
            raise SystemExit(f"{side} lists differ from the numpy pipeline's: {problem}")
        per_user = pd.read_parquet(run / "per_user.parquet")
        wide = per_user[per_user["k"] == K].pivot(index="user_id", columns="metric", values="value")
        wide.index = wide.index.astype(str)
        columns = [name.removesuffix(f"@{K}") for name in base_metrics.columns]
        if sorted(wide.index) != sorted(base_metrics.index):
            raise SystemExit(f"{side} scores other users than the numpy pipeline")
        mine = wide.loc[base_metrics.index, columns].to_numpy(np.float64)
        difference = float(np.nanmax(np.abs(mine - base_metrics.to_numpy(np.float64))))
        if difference > 1e-9 or not np.array_equal(np.isnan(mine), np.isnan(base_metrics.to_numpy(np.float64))):
            raise SystemExit(f"{side} accuracy metrics differ from the numpy pipeline's by up to {difference:.3g}")
        extra = sorted(set(per_user["metric"]) - set(columns))
        lines.append(f"{side}: lists equal to numpy's ({len(lists):,} rows); accuracy metrics within "
                     f"{difference:.1e}; other metrics: {', '.join(extra) or 'none'}")
    return lines


def _lists_differ(base, lists) -> str:
    """'' when the lists are the same: ids at every (user, rank), or tied scores holding the same tracks."""
    columns = ["user_id", "rank", "track_id", "score"]
    a = base[columns].astype({"user_id": str, "track_id": str}).sort_values(["user_id", "rank"], ignore_index=True)
    b = lists[columns].astype({"user_id": str, "track_id": str}).sort_values(["user_id", "rank"], ignore_index=True)
    if len(a) != len(b) or not (a["user_id"].to_numpy() == b["user_id"].to_numpy()).all():
        return f"{len(b):,} rows for other users than numpy's {len(a):,}"
    score_gap = float(np.max(np.abs(a["score"].to_numpy(np.float64) - b["score"].to_numpy(np.float64))))
    if score_gap > 1e-6:
        return f"scores differ by up to {score_gap:.3g}"
    differ = a["track_id"].to_numpy() != b["track_id"].to_numpy()
    if differ.any():  # allowed only inside a run of equal scores holding the same tracks
        for user in a.loc[differ, "user_id"].unique():
            mine, theirs = a[a["user_id"] == user], b[b["user_id"] == user]
            for score in mine.loc[differ[mine.index], "score"].unique():
                if set(mine.loc[mine["score"] == score, "track_id"]) != set(theirs.loc[theirs["score"] == score,
                                                                                       "track_id"]):
                    return f"user {user}'s tracks differ at score {score}"
    return ""


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def processor() -> str:
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else "unknown processor"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of users, tracks and rows (0.25: quick)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated data here (default: temp)")
    parser.add_argument("--reuse", action="store_true", help="use the data generated in --workdir before")
    parser.add_argument("--phases", action="store_true", help="only print the numpy pipeline's phase times")
    parser.add_argument("--sides", default="numpy,accuracy,full", help="comma-separated sides to time")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    import evaluate_scale

    with tempfile.TemporaryDirectory() as temporary:
        directory = args.workdir or Path(temporary)
        started = time.perf_counter()
        if args.reuse and (directory / "sizes.json").is_file():
            sizes = json.loads((directory / "sizes.json").read_text())
        else:
            sizes = evaluate_scale.generate(directory, args.scale)
            (directory / "sizes.json").write_text(json.dumps(sizes))
        shape = ", ".join(f"{key} {value:,}" for key, value in sizes.items())
        print(f"data ready in {time.perf_counter() - started:.1f} s: {shape}, {evaluate_scale.DIM}-d vectors; "
              f"k = {K}; {os.cpu_count()} CPUs (affinity {len(os.sched_getaffinity(0))}, {processor()})", flush=True)
        if args.phases:
            phases: dict[str, float] = {}
            pipeline(directory / "split", directory / "emb" / "gen.parquet", directory / "out-numpy", phases=phases)
            for name, (wall, cpu) in phases.items():
                print(f"{name:>8}: {wall:6.2f} s wall {cpu:6.2f} s CPU")
            return
        print(f"load average before: {load_average()}", flush=True)
        sides = args.sides.split(",")
        runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
        for repeat in range(args.repeats):
            for side in sides:
                runs[side].append(run_side(side, directory))
                row = runs[side][-1]
                print(f"  run {repeat + 1} {side:>8}: {row['seconds']:6.1f} s wall {row['cpu']:6.1f} s CPU "
                      f"peak {row['peak_mb']:6.0f} MB", flush=True)
        print(f"load average after:  {load_average()}")
        summary = {side: {key: statistics.median(r[key] for r in results) for key in ("seconds", "cpu", "peak_mb")}
                   for side, results in runs.items()}
        for side, row in summary.items():
            print(f"{side:>8}: {row['seconds']:7.2f} s wall  {row['cpu']:7.2f} s CPU  peak {row['peak_mb']:6.0f} MB"
                  f"  (medians of {args.repeats})")
        for over, under, target in (("accuracy", "numpy", 1.1), ("full", "accuracy", 1.1)):
            if over in summary and under in summary:
                a, b = summary[over], summary[under]
                print(f"ratio {over}/{under}: wall {a['seconds'] / b['seconds']:.3f} (target <= {target}), "
                      f"CPU {a['cpu'] / b['cpu']:.3f}, peak memory {a['peak_mb'] / b['peak_mb']:.2f}")
        if set(sides) == {"numpy", "accuracy", "full"}:
            for line in check_equal(directory):
                print(line)


if __name__ == "__main__":
    main()
