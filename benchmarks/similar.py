"""Benchmark: the nearest-track index of ``sonic similar`` against exact search, on clustered vectors.

Data (fixed, seeded): 200,000 table vectors and 2,000 held-out queries, 768-d, drawn from 2,000
Gaussian clusters: centres ~ N(0, I), a point = its centre + SPREAD * N(0, I), then scaled to unit
length. With SPREAD = 1.5 a point's cosine to the other points of its cluster is about 1 / (1 + 1.5^2)
= 0.31 and to any other point about 0 +- 0.036 (1 / sqrt(768)); the printed share of exact neighbours
from the query's own cluster says how meaningful the neighbours are. The queries come from the same
clusters and are not in the index. ``--spread`` changes the spread (at 2 the clusters are still what
the neighbours share, but nothing in a cell structure of the space follows them: an inverted file's
recall falls, see docs/serving.md).

It builds the index exactly as ``sonic similar`` does (:func:`sonic.tails.index.build_index`, the
settings of :class:`sonic.tails.index.IndexConfig`, ``--set KEY=VALUE`` to change one), and prints,
all from this one run: build seconds, the index's size in memory (its serialised bytes), and for the
default search setting, half of it and twice it (``ivf_probe``, ``hnsw_ef_search``: no rebuild)
queries/s and recall@10 against exact search (FAISS ``IndexFlatIP`` on the same queries, the same
threads; the two take turns, median of 3 each); and sonic's own exact search
(:func:`sonic.tails.similar.exact_search`) for reference. It ends with a
paper estimate for 10 M tracks, scaled from these measurements (stated as an estimate). The load
average is printed before and after: on a shared machine, compare only ratios from the same run.

    python benchmarks/similar.py [--index ivf] [--index hnsw] [--rows 200000] [--threads N] [--set ivf_probe=8]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time

import numpy as np

from sonic.tails.index import INDEX_KINDS, IndexConfig, build_index, faiss_threads, search_index
from sonic.tails.similar import AUTO_INDEX, exact_search
from timing import timed

DIM = 768
CLUSTERS = 2_000
SPREAD = 1.5
QUERIES = 2_000
K = 10
TARGET_RECALL, TARGET_SPEEDUP = 0.95, 20.0
REPEATS = 3
SCALE_ROWS = 10_000_000


def clustered(n_rows: int, n_queries: int, spread: float = SPREAD, seed: int = 0) -> tuple[np.ndarray, ...]:
    """(table (n_rows, DIM), queries (n_queries, DIM)) unit float32 rows, and each one's cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, DIM), dtype=np.float32)
    labels = rng.integers(0, CLUSTERS, n_rows + n_queries)
    points = np.empty((n_rows + n_queries, DIM), np.float32)
    for start in range(0, len(points), 50_000):  # in blocks: one noise array of the whole set is 600 MB more
        part = slice(start, start + 50_000)
        points[part] = centres[labels[part]] + spread * rng.standard_normal((len(points[part]), DIM), np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points[:n_rows], points[n_rows:], labels[:n_rows], labels[n_rows:]


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over queries of |found row set & true top-k set| / k."""
    return float(np.mean([len(set(a[a >= 0]) & set(b)) / truth.shape[1] for a, b in zip(found, truth)]))


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def settings(pairs: list[str]) -> IndexConfig:
    values = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        values[key] = int(value)
    return IndexConfig(**values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", action="append", choices=INDEX_KINDS, help=f"default: {AUTO_INDEX}")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--set", action="append", default=[], help="an IndexConfig field KEY=VALUE")
    parser.add_argument("--spread", type=float, default=SPREAD, help="noise around each cluster centre")
    args = parser.parse_args()
    kinds = args.index or [AUTO_INDEX]
    config = dataclasses.replace(settings(args.set), threads=args.threads)

    print(f"load average before: {load_average()} ({os.cpu_count()} CPUs); threads {args.threads}")
    table, queries, table_labels, query_labels = clustered(args.rows, QUERIES, args.spread)
    print(f"data: {args.rows} x {DIM} table, {QUERIES} held-out queries, {CLUSTERS} clusters, spread {args.spread}")

    with faiss_threads(args.threads) as faiss:
        flat = faiss.IndexFlatIP(DIM)
        flat.add(table)
        flat.search(queries[:50], K)  # warm-up
        _, truth = flat.search(queries, K)
    same = float((table_labels[truth] == query_labels[:, None]).mean())
    print(f"{same:.1%} of the exact top-{K} share the query's cluster")
    seconds, results = timed({"sonic exact": lambda: exact_search(table, queries, K)}, 1)
    print(f"exact (sonic, numpy blocks): {QUERIES / seconds['sonic exact']:.0f} queries/s, "
          f"recall@{K} {recall_at(results['sonic exact'][1], truth):.4f}")

    def exact() -> None:
        with faiss_threads(args.threads):
            flat.search(queries, K)

    for kind in kinds:
        started = time.perf_counter()
        index = build_index(table, kind, config)
        build_seconds = time.perf_counter() - started
        size = len(faiss.serialize_index(index))
        add_seconds = 0.0
        if kind == "ivf":  # adding = assigning every row to its nearest cell: timed again to split the build
            with faiss_threads(args.threads):
                started = time.perf_counter()
                index.quantizer.search(table, 1)
                add_seconds = time.perf_counter() - started
        built = config.built_with(kind, args.rows)
        print(f"{kind} {built}: build {build_seconds:.1f} s ({add_seconds:.1f} s of it assigning rows), "
              f"{size / 2**20:.0f} MiB serialised")
        field = {"ivf": "ivf_probe", "hnsw": "hnsw_ef_search"}[kind]
        chosen = getattr(config, field)
        for value in sorted({chosen // 2 or 1, chosen, chosen * 2}):
            searching = dataclasses.replace(config, **{field: value})
            search_index(index, kind, queries[:50], K, searching)  # warm-up
            # exact and the index take turns, REPEATS times each: both see the same state of a shared machine
            seconds, results = timed({"exact": exact, "index": lambda s=searching: search_index(
                index, kind, queries, K, s)}, REPEATS)
            qps, exact_qps = QUERIES / seconds["index"], QUERIES / seconds["exact"]
            recall = recall_at(results["index"][1], truth)
            met = recall >= TARGET_RECALL and qps >= TARGET_SPEEDUP * exact_qps
            print(f"  {field} {value}{' (default)' if value == chosen else ''}: {qps:.0f} queries/s against "
                  f"exact {exact_qps:.0f} queries/s = {qps / exact_qps:.1f}x, recall@{K} {recall:.4f} "
                  f"-> target (recall >= {TARGET_RECALL}, >= {TARGET_SPEEDUP:.0f}x) {'met' if met else 'NOT met'}")
            if value == chosen:
                estimated = estimate(kind, args.rows, size, build_seconds, add_seconds, qps, exact_qps)
        print(estimated)
    print(f"load average after: {load_average()}")


def estimate(kind: str, rows: int, size: int, build_seconds: float, add_seconds: float, qps: float,
             exact_qps: float) -> str:
    """A paper estimate for SCALE_ROWS tracks, scaled from this run's measurements."""
    factor = SCALE_ROWS / rows
    vectors = SCALE_ROWS * DIM * 4
    if kind == "ivf":
        # memory: vectors + ids (centroids, ~sqrt(rows), are small); k-means on 64 points a list costs
        # lists x sample ~ rows; adding (assigning each row to a list) costs rows x lists ~ rows^1.5;
        # a query scans nprobe lists of rows / lists vectors ~ sqrt(rows)
        memory = size * factor
        build = (build_seconds - add_seconds) * factor + add_seconds * factor**1.5
        queries = qps / math.sqrt(factor)
        how = (f"memory ~ rows; k-means {build_seconds - add_seconds:.0f} s ~ rows, assignment {add_seconds:.0f} s "
               "~ rows^1.5 (4 sqrt(rows) lists); queries/s ~ 1/sqrt(rows)")
    else:
        memory = size * factor
        build = build_seconds * factor * math.log(SCALE_ROWS) / math.log(rows)
        queries = qps * math.log(rows) / math.log(SCALE_ROWS)
        how = "memory ~ rows, build ~ rows log rows, queries/s ~ 1/log rows"
    return (f"  estimate for {SCALE_ROWS / 1e6:.0f} M tracks ({how}; on this machine, at this load): index "
            f"{memory / 2**30:.0f} GiB (the float32 vectors alone {vectors / 2**30:.0f} GiB), "
            f"build ~{build / 3600:.1f} h, "
            f"~{queries:.0f} queries/s vs exact ~{exact_qps / factor:.1f} queries/s")


if __name__ == "__main__":
    main()
