"""BERT4Rec on MovieLens-100k, leave-last-out, full ranking, seen items excluded (REFERENCE section 9).

The ratings come from the ``recbole==1.2.1`` wheel (``recbole/dataset_example/ml-100k/ml-100k.inter``),
fetched with ``pip download --no-deps recbole==1.2.1 -d CACHE`` unless ``--wheel`` names it. Every
model is fitted on the train tracks (all but each user's last two); bert4rec stops early on the
validation track (the second-to-last); the test track is ranked from train + validation history.
ease's l2 is chosen on the validation tracks from ``--ease-l2``. Prints NDCG@10 and Recall@10 of
bert4rec (ids only), pop and ease, bert4rec's epochs and training
time, and bert4rec's ratio to pop and to ease (the target: at least 2x pop's NDCG@10, near ease).

    nice python3 benchmarks/bert4rec.py [--wheel FILE | --cache DIR] [--threads 1] [--max-epochs N]
"""

from __future__ import annotations

import argparse
import io
import logging
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

MEMBER = "recbole/dataset_example/ml-100k/ml-100k.inter"


def movielens_100k(wheel: Path) -> pd.DataFrame:
    """The 100,000 ratings as events: user_id, track_id (the movie), timestamp, in the file's order."""
    with zipfile.ZipFile(wheel) as archive:
        raw = pd.read_csv(io.BytesIO(archive.read(MEMBER)), sep="\t")
    return pd.DataFrame(
        {
            "user_id": raw["user_id:token"].astype(str),
            "track_id": raw["item_id:token"].astype(str),
            "timestamp": pd.to_datetime(raw["timestamp:float"].astype(np.int64), unit="s"),
        }
    )


def scores_at_10(model, users: np.ndarray, truth: pd.DataFrame, history: pd.DataFrame | None) -> dict[str, float]:
    """Full-ranking top 10 (seen and ``history`` tracks excluded) scored against ``truth``."""
    from sonic.rouge.evaluate import evaluate

    ids, _ = model.recommend(users, 10, history=history)
    present = pd.notna(ids).ravel()
    recommendations = pd.DataFrame(
        {
            "user_id": np.repeat(users, 10)[present],
            "track_id": ids.ravel()[present].astype(str),
            "rank": np.tile(np.arange(1, 11), len(users))[present],
        }
    )
    return evaluate(recommendations, truth, [10]).means()


def ndcg_at_10(model, users: np.ndarray, truth: pd.DataFrame, history: pd.DataFrame | None) -> float:
    return scores_at_10(model, users, truth, history)["NDCG@10"]


def find_wheel(args: argparse.Namespace) -> Path:
    if args.wheel:
        return Path(args.wheel)
    cache = Path(args.cache)
    found = sorted(cache.glob("recbole-1.2.1-*.whl"))
    if not found:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "recbole==1.2.1", "-d", str(cache)]
        subprocess.run(command, check=True, capture_output=True)
        found = sorted(cache.glob("recbole-1.2.1-*.whl"))
    return found[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", help="the recbole-1.2.1 wheel (default: looked up or downloaded in --cache)")
    parser.add_argument("--cache", default="/tmp/sonic-bench-cache")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (others share this machine)")
    parser.add_argument("--max-epochs", type=int, default=300)
    parser.add_argument("--patience", type=int, default=40, help="validations without a better NDCG@10")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0, help="seed of bert4rec's initial weights and masks")
    parser.add_argument("--ease-l2", default="50,100,200,500,1000", help="l2 grid; the best on validation is used")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--only", default="", help="comma-separated subset of pop,ease,bert4rec")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)

    from sonic.cream.data import SplitConfig, split_events
    from sonic.rouge.base import RECOMMENDERS

    events = movielens_100k(find_wheel(args))
    split = split_events(events, SplitConfig.for_protocol("leave-last-out"))
    print(
        f"MovieLens-100k: {len(events)} ratings, {events['user_id'].nunique()} users, "
        f"{events['track_id'].nunique()} items; leave-last-out: train {len(split.train)}, "
        f"val {len(split.val)}, test {len(split.test)}"
    )
    grid = [float(value) for value in args.ease_l2.split(",")]
    val_users = np.sort(split.val["user_id"].unique())
    tuned = {l2: ndcg_at_10(RECOMMENDERS.create("ease", l2=l2).fit(split.train), val_users, split.val, None)
             for l2 in grid}  # fmt: skip
    best_l2 = max(tuned, key=tuned.get)
    print("ease validation NDCG@10 by l2:", {l2: round(v, 4) for l2, v in tuned.items()}, "-> l2", best_l2)
    models = {
        "pop": {},
        "ease": {"l2": best_l2},
        "bert4rec": {
            "items": "ids",
            "threads": args.threads,
            "max_epochs": args.max_epochs,
            "patience": args.patience,
            "batch_size": args.batch_size,
            "max_len": args.max_len,
            "eval_every": args.eval_every,
            "lr": args.lr,
        },
    }
    if args.only:
        models = {name: options for name, options in models.items() if name in args.only.split(",")}
    users = np.sort(split.test["user_id"].unique())
    rows = []
    for name, options in models.items():
        started = time.perf_counter()
        model = RECOMMENDERS.create(name, **options)
        model.fit(split.train, validation=split.val, device=args.device, seed=args.seed)
        fit_seconds = time.perf_counter() - started
        means = scores_at_10(model, users, split.test, split.val)
        info = model.describe()
        rows.append(
            {
                "model": name,
                "NDCG@10": means["NDCG@10"],
                "Recall@10": means["Recall@10"],
                "epochs": info.get("epochs_run", ""),
                "best_epoch": info.get("best_epoch", ""),
                "fit_seconds": round(fit_seconds, 1),
            }
        )
        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    table = pd.DataFrame(rows).set_index("model")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    ndcg = table["NDCG@10"]
    if not {"pop", "ease", "bert4rec"} <= set(ndcg.index):
        return
    print(
        f"bert4rec / pop NDCG@10 = {ndcg['bert4rec'] / ndcg['pop']:.2f}x (target >= 2); "
        f"bert4rec / ease = {ndcg['bert4rec'] / ndcg['ease']:.2f}"
    )


if __name__ == "__main__":
    main()
