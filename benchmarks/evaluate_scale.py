"""Benchmark: knn fit + recommend + full evaluation at the journal's scale, against plain numpy.

A generated tamm2025-shaped split: 21,018 users x 55,262 tracks, 5.37 M unique train (user, track)
pairs with Zipf-like track popularity, a hot test of 280,745 pairs for 10,238 users, 768-d
float32 vectors. Written once to a split folder and an embedding table (not timed).

Each side runs in a fresh process (so peak memory is its own), taking turns ``--repeats`` times:

- **library**: ``sonic.rouge.run.run_model("knn", ...)`` with mode ``test`` and k = 50: reads the
  split and the table, fits, ranks the whole catalogue for every test user (seen tracks excluded),
  scores HitRate/Precision/Recall/MRR/NDCG plus coverage, novelty, ARP, long-tail share and ILD,
  and writes the run folder.
- **numpy**: the same model in plain numpy/scipy on integer codes already in memory: user means
  by a sparse product, blocks of 1,024 users scored by one float32 matmul, seen tracks set to
  -inf, ``argpartition`` top 50, sorted, and HitRate@50 / NDCG@50 from sorted truth keys.

Printed: wall seconds and CPU seconds (user + system, all threads; the steadier figure on a shared
machine), medians over the repeats, peak RSS, and library / numpy ratios; both HitRate@50 and NDCG@50
(they must agree, as both rank the same cosines; the script fails otherwise). ``--workdir DIR --reuse``
times again on data generated there before.

    python benchmarks/evaluate_scale.py [--scale 0.25] [--repeats 1] [--workdir DIR [--reuse]]
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
import pandas as pd

FULL = {"users": 21_018, "tracks": 55_262, "train_rows": 5_371_381, "test_users": 10_238, "test_rows": 280_745}
DIM, K, BLOCK = 768, 50, 1024


def generate(directory: Path, scale: float, seed: int = 0) -> dict[str, int]:
    """Write ``split/`` (train, val, test parquet + split.json), ``emb/gen.parquet`` and ``codes.npz``."""
    from sonic.manifest import write_json
    from sonic.tails.table import EmbeddingTable, write_embeddings

    rng = np.random.default_rng(seed)
    n_users, n_tracks = int(FULL["users"] * scale), int(FULL["tracks"] * scale)
    popularity = 1.0 / np.arange(1, n_tracks + 1) ** 0.8
    popularity = rng.permutation(popularity / popularity.sum())
    activity = rng.lognormal(0, 1.0, n_users)

    def draw(n_rows: int, users_weights: np.ndarray) -> np.ndarray:
        users = rng.choice(len(users_weights), size=int(n_rows * 1.3), p=users_weights / users_weights.sum())
        tracks = rng.choice(n_tracks, size=len(users), p=popularity)
        keys = np.unique(users.astype(np.int64) * n_tracks + tracks)
        return rng.permutation(keys)[:n_rows]

    train_keys = np.sort(draw(int(FULL["train_rows"] * scale), activity))
    every_user = np.unique(train_keys // n_tracks)
    test_users = rng.choice(every_user, size=min(len(every_user), int(FULL["test_users"] * scale)), replace=False)
    test_weights = np.zeros(n_users)
    test_weights[test_users] = activity[test_users]
    test_keys = draw(int(FULL["test_rows"] * scale * 1.1), test_weights)
    test_keys = test_keys[~np.isin(test_keys, train_keys)][: int(FULL["test_rows"] * scale)]  # hot, unseen pairs
    test_keys = test_keys[np.isin(test_keys % n_tracks, np.unique(train_keys % n_tracks))]

    user_names = np.array([f"user_{u:06d}" for u in range(n_users)], dtype=object)
    track_names = np.array([f"trk{t:07d}" for t in range(n_tracks)], dtype=object)
    split = directory / "split"
    split.mkdir(parents=True, exist_ok=True)
    val_keys = train_keys[~np.isin(train_keys // n_tracks, test_users)][:100]  # val users are not test users
    for name, keys in (("train", train_keys), ("test", test_keys), ("val", val_keys)):
        frame = pd.DataFrame({"user_id": user_names[keys // n_tracks], "track_id": track_names[keys % n_tracks],
                              "timestamp": pd.Timestamp("2019-01-01"), "count": np.int64(1)})
        frame.to_parquet(split / f"{name}.parquet", index=False)
    write_json(split / "split.json", {"config": {"protocol": "generated", "scale": scale, "seed": seed}})
    vectors = rng.standard_normal((n_tracks, DIM), dtype=np.float32)
    write_embeddings(EmbeddingTable(track_names.astype(str), vectors, {"embedder": "generated"}),
                     directory / "emb" / "gen.parquet")
    np.savez(directory / "codes.npz", train=train_keys, test=test_keys, vectors=vectors,
             n_tracks=n_tracks, n_users=n_users)
    return {"users": n_users, "tracks": n_tracks, "train_rows": len(train_keys),
            "test_users": len(np.unique(test_keys // n_tracks)), "test_rows": len(test_keys)}


def library_side(directory: Path) -> dict[str, float]:
    from sonic.rouge.run import run_model

    result = run_model("knn", directory / "split", embedding=directory / "emb" / "gen.parquet", mode="test",
                       ks=(K,), out_dir=directory / "run")
    means = result.metrics.set_index(["metric", "k"])["mean"]
    return {"HitRate": float(means[("HitRate", K)]), "NDCG": float(means[("NDCG", K)])}


def numpy_side(directory: Path) -> dict[str, float]:
    from scipy import sparse

    with np.load(directory / "codes.npz") as data:
        train, test, vectors = data["train"], data["test"], data["vectors"]
        n_tracks, n_users = int(data["n_tracks"]), int(data["n_users"])
    users, tracks = np.divmod(train, n_tracks)
    seen = sparse.csr_matrix((np.ones(len(train), np.float32), (users, tracks)), shape=(n_users, n_tracks))
    counts = np.asarray(seen.sum(axis=1)).ravel()
    means = (sparse.diags(1.0 / np.maximum(counts, 1)) @ seen) @ vectors.astype(np.float64)
    user_vectors = (means / np.linalg.norm(means, axis=1, keepdims=True)).astype(np.float32)
    items = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    test = np.sort(test)
    test_users = np.unique(test // n_tracks)
    hit_rate, ndcg = [], []
    discounts = 1.0 / np.log2(np.arange(K) + 2.0)
    for start in range(0, len(test_users), BLOCK):
        block = test_users[start : start + BLOCK]
        scores = user_vectors[block] @ items.T
        sub = seen[block]
        scores[np.repeat(np.arange(len(block)), np.diff(sub.indptr)), sub.indices] = -np.inf
        top = np.argpartition(-scores, K - 1, axis=1)[:, :K]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1), axis=1)
        keys = block[:, None] * n_tracks + top
        at = np.minimum(np.searchsorted(test, keys), len(test) - 1)
        hits = test[at] == keys
        n_true = np.searchsorted(test, (block + 1) * n_tracks) - np.searchsorted(test, block * n_tracks)
        hit_rate.append(hits.any(axis=1))
        ideal = np.cumsum(discounts)[np.minimum(n_true, K) - 1]
        ndcg.append((hits @ discounts) / ideal)
    return {"HitRate": float(np.concatenate(hit_rate).mean()), "NDCG": float(np.concatenate(ndcg).mean())}


def run_side(side: str, directory: Path) -> dict[str, float]:
    """One side in a fresh interpreter: wall seconds, peak RSS (MB) and its metrics.

    A run folder left by an earlier library run is removed first (not timed): replacing it would
    add the deletion of its files, which a first run does not pay and the numpy side never does.
    """
    if side == "library":
        shutil.rmtree(directory / "run", ignore_errors=True)
    code = (f"import sys, time, json, resource; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import evaluate_scale as b; from pathlib import Path; t = time.perf_counter(); "
            f"m = b.{side}_side(Path({str(directory)!r})); s = time.perf_counter() - t; "
            f"u = resource.getrusage(resource.RUSAGE_SELF); "
            f"print(json.dumps({{'seconds': s, 'cpu': u.ru_utime + u.ru_stime, 'peak_mb': u.ru_maxrss / 1024, **m}}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
    if done.returncode != 0:
        raise SystemExit(f"{side} side failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of users, tracks and rows (0.25: quick)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated data here (default: temp)")
    parser.add_argument("--reuse", action="store_true", help="use the data generated in --workdir before")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        directory = args.workdir or Path(temporary)
        started = time.perf_counter()
        if args.reuse and (directory / "sizes.json").is_file():
            sizes = json.loads((directory / "sizes.json").read_text())
        else:
            sizes = generate(directory, args.scale)
            (directory / "sizes.json").write_text(json.dumps(sizes))
        shape = ", ".join(f"{key} {value:,}" for key, value in sizes.items())
        print(f"data ready in {time.perf_counter() - started:.1f} s: {shape}, {DIM}-d vectors; k = {K}; "
              f"{os.cpu_count()} CPUs")
        runs = {"library": [], "numpy": []}
        for _ in range(args.repeats):
            for side in runs:
                runs[side].append(run_side(side, directory))
        summary = {side: {"seconds": statistics.median(r["seconds"] for r in results),
                          "cpu": statistics.median(r["cpu"] for r in results),
                          "peak_mb": max(r["peak_mb"] for r in results), "HitRate": results[-1]["HitRate"],
                          "NDCG": results[-1]["NDCG"]} for side, results in runs.items()}
        for side, row in summary.items():
            print(f"{side:>8}: {row['seconds']:7.1f} s wall  {row['cpu']:7.1f} s CPU  peak {row['peak_mb']:7.0f} MB  "
                  f"HitRate@{K} {row['HitRate']:.6f}  NDCG@{K} {row['NDCG']:.6f}")
        lib, base = summary["library"], summary["numpy"]
        print(f"   ratio library/numpy: wall {lib['seconds'] / base['seconds']:.2f}, "
              f"CPU {lib['cpu'] / base['cpu']:.2f}, peak memory {lib['peak_mb'] / base['peak_mb']:.2f}")
        if abs(lib["HitRate"] - base["HitRate"]) > 1e-9 or abs(lib["NDCG"] - base["NDCG"]) > 1e-6:
            raise SystemExit("library and numpy disagree on the metrics")


if __name__ == "__main__":
    main()
