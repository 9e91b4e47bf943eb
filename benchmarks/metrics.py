"""Benchmark: sonic's evaluate() against rs_metrics 0.6.0 on 10,000 users x top-50.

Both start from the same two frames (recommendations in rank order, ground truth with
duplicate rows) and compute HitRate, Precision, Recall, MRR and NDCG at k = 10 and 50.
Ours is the whole ``evaluate`` call (validation, per-user arrays, metrics; median of 3 runs,
and once more on the rows shuffled, which it must sort itself);
rs_metrics is its ten public calls with ``num_workers=1``, each converting the frames as it
does for any caller (one run), and also its best case, frames converted to dicts once.
The values must agree to 1e-9 per user; the script fails otherwise.

    python benchmarks/metrics.py [--users 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
import rs_metrics

from sonic.rouge.evaluate import evaluate

KS = (10, 50)
REFERENCE = {
    "HitRate": rs_metrics.hitrate,
    "Precision": rs_metrics.precision,
    "Recall": rs_metrics.recall,
    "MRR": rs_metrics.mrr,
    "NDCG": rs_metrics.ndcg,
}


def make_frames(n_users: int, seed: int, *, n_tracks: int = 20_000, list_length: int = 50) -> tuple[pd.DataFrame, ...]:
    """Each user draws recommendations from a 200-track neighbourhood and truth (with repeats) from its first 100."""
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, n_tracks, n_users)
    local = rng.permuted(np.tile(np.arange(200), (n_users, 1)), axis=1)[:, :list_length]  # (n_users, 50)
    rec_tracks = (offsets[:, None] + local) % n_tracks
    truth_sizes = rng.integers(1, 41, n_users)
    truth_users = np.repeat(np.arange(n_users), truth_sizes)
    truth_tracks = (offsets[truth_users] + rng.integers(0, 100, truth_sizes.sum())) % n_tracks
    user_names = np.array([f"user{u:06d}" for u in range(n_users)], dtype=object)
    track_names = np.array([f"track{t:06d}" for t in range(n_tracks)], dtype=object)
    recommendations = pd.DataFrame(
        {
            "user_id": np.repeat(user_names, list_length),
            "track_id": track_names[rec_tracks.ravel()],
            "rank": np.tile(np.arange(1, list_length + 1), n_users),
        }
    )
    truth = pd.DataFrame({"user_id": user_names[truth_users], "track_id": track_names[truth_tracks]})
    return recommendations, truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    recommendations, truth = make_frames(args.users, args.seed)
    print(f"{args.users} users, {len(recommendations)} recommendation rows, {len(truth)} truth rows "
          f"({int(truth.duplicated().sum())} duplicates)")  # fmt: skip

    ours_times = []
    for _ in range(3):
        start = time.perf_counter()
        report = evaluate(recommendations, truth, KS)
        ours_times.append(time.perf_counter() - start)
    ours = statistics.median(ours_times)
    shuffled = recommendations.sample(frac=1.0, random_state=args.seed)  # evaluate must sort the rows itself
    start = time.perf_counter()
    evaluate(shuffled, truth, KS)
    ours_shuffled = time.perf_counter() - start

    start = time.perf_counter()
    theirs = {
        f"{name}@{k}": function(truth, recommendations, k=k, num_workers=1, apply_mean=False, item_col="track_id")
        for name, function in REFERENCE.items()
        for k in KS
    }
    theirs_frames = time.perf_counter() - start

    start = time.perf_counter()
    truth_lists = rs_metrics.pandas_to_dict(truth, item_col="track_id")
    ranked_lists = rs_metrics.pandas_to_dict(recommendations, item_col="track_id")
    for name, function in REFERENCE.items():
        for k in KS:
            function(truth_lists, ranked_lists, k=k, num_workers=1, apply_mean=False)
    theirs_dicts = time.perf_counter() - start

    worst = 0.0
    for key, values in theirs.items():
        difference = np.abs(report.values[key] - np.asarray(values, dtype=np.float64)).max()
        worst = max(worst, difference)
        if not difference <= 1e-9:
            raise SystemExit(f"{key}: sonic and rs_metrics differ by {difference:g}")
    print(f"all 10 metrics agree per user; largest difference {worst:.1e}")
    for key in ("HitRate@10", "Recall@50", "NDCG@50"):
        print(f"  {key:>10}: {report.means()[key]:.6f} (rs_metrics {np.mean(theirs[key]):.6f})")
    print(f"sonic evaluate (median of 3):       {ours:8.3f} s")
    print(f"sonic evaluate, rows shuffled:      {ours_shuffled:8.3f} s")
    print(f"rs_metrics, 10 calls on frames:     {theirs_frames:8.3f} s   speed-up {theirs_frames / ours:6.1f}x")
    print(f"rs_metrics, frames converted once: {theirs_dicts:8.3f} s   speed-up {theirs_dicts / ours:6.1f}x")


if __name__ == "__main__":
    main()
