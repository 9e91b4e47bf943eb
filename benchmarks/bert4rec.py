"""BERT4Rec on MovieLens-100k, leave-last-out, full ranking, seen items excluded (REFERENCE section 9).

The ratings come from the ``recbole==1.2.1`` wheel (``recbole/dataset_example/ml-100k/ml-100k.inter``),
fetched with ``pip download --no-deps recbole==1.2.1 -d CACHE`` unless ``--wheel`` names it. Every
model is fitted on the train tracks (all but each user's last two); bert4rec stops early on the
validation track (the second-to-last); the test track is ranked from train + validation history.
ease's l2 is chosen on the validation tracks from ``--ease-l2``.

bert4rec runs once for each ``--items`` (``ids``: learned item vectors; ``frozen``: fixed vectors from a
table through a trained projection) and each ``--loss`` (``softmax`` over the whole catalogue; ``gbce``,
gSASRec's calibrated BCE over ``--negatives`` sampled tracks), every other option alike. MovieLens has
no content, so the ``frozen`` table is built deterministically from the train interactions: the item
factors (U S) of a truncated SVD of the binary item x user train matrix, ``--content-dim`` wide. It tests
the frozen-content path, not the quality of any real content.

Prints the options, then NDCG@10 and Recall@10 of pop, ease and each bert4rec run, bert4rec's epochs,
best epoch, best validation NDCG@10 and training time, each run's ratio to pop and to ease (the target:
at least 2x pop's NDCG@10, near ease), and for each ``--items`` the ratio of the sampled loss to the
full softmax (target: within 10%), with the load average before and after.

    nice python3 benchmarks/bert4rec.py [--wheel FILE | --cache DIR] [--threads 1] [--max-epochs N]
        [--items ids,frozen] [--loss softmax,gbce] [--negatives 256] [--gbce-t 0.75]
"""

from __future__ import annotations

import argparse
import io
import logging
import os
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


def svd_item_table(train: pd.DataFrame, dim: int):
    """Item vectors (U_k S_k) of a truncated SVD of the binary item x user train matrix: an EmbeddingTable."""
    from sonic.tails.table import EmbeddingTable

    items, item_rows = np.unique(train["track_id"].astype(str), return_inverse=True)
    _, user_rows = np.unique(train["user_id"].astype(str), return_inverse=True)
    matrix = np.zeros((len(items), user_rows.max() + 1))
    matrix[item_rows, user_rows] = 1.0
    left, singular, _ = np.linalg.svd(matrix, full_matrices=False)
    factors = left[:, :dim] * singular[:dim]
    factors *= np.sign(factors[np.abs(factors).argmax(axis=0), np.arange(factors.shape[1])])  # one sign everywhere
    return EmbeddingTable(items.astype(object), factors.astype(np.float32))


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
    parser.add_argument("--items", default="ids,frozen", help="bert4rec item sources: ids and/or frozen (SVD table)")
    parser.add_argument("--loss", default="softmax,gbce", help="bert4rec losses, each run with every --items")
    parser.add_argument("--negatives", type=int, default=256, help="gbce: sampled tracks per masked position")
    parser.add_argument("--gbce-t", type=float, default=0.75, help="gbce: calibration parameter t")
    parser.add_argument("--content-dim", type=int, default=64, help="width of the frozen SVD table")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}", flush=True)
    options = " ".join(f"--{name.replace('_', '-')} {value}" for name, value in vars(args).items())
    print(f"options: {options}", flush=True)
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
    shared = {
        "threads": args.threads,
        "max_epochs": args.max_epochs,
        "patience": args.patience,
        "batch_size": args.batch_size,
        "max_len": args.max_len,
        "eval_every": args.eval_every,
        "lr": args.lr,
        "negatives": args.negatives,
        "gbce_t": args.gbce_t,
    }
    models = {"pop": ("pop", {}), "ease": ("ease", {"l2": best_l2})}
    for items in args.items.split(","):
        for loss in args.loss.split(","):
            models[f"bert4rec {items} {loss}"] = ("bert4rec", {**shared, "items": items, "loss": loss})
    if args.only:
        models = {label: spec for label, spec in models.items() if spec[0] in args.only.split(",")}
    table = svd_item_table(split.train, args.content_dim) if "frozen" in args.items.split(",") else None
    users = np.sort(split.test["user_id"].unique())
    rows = []
    for label, (name, options) in models.items():
        started = time.perf_counter()
        model = RECOMMENDERS.create(name, **options)
        embeddings = table if options.get("items") == "frozen" else None
        model.fit(split.train, validation=split.val, item_embeddings=embeddings, device=args.device, seed=args.seed)
        fit_seconds = time.perf_counter() - started
        means = scores_at_10(model, users, split.test, split.val)
        info = model.describe()
        rows.append(
            {
                "model": label,
                "NDCG@10": means["NDCG@10"],
                "Recall@10": means["Recall@10"],
                "epochs": info.get("epochs_run", ""),
                "best_epoch": info.get("best_epoch", ""),
                "best_val_NDCG@10": info.get("best_val_ndcg@10", np.nan),
                "fit_seconds": round(fit_seconds, 1),
            }
        )
        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    results = pd.DataFrame(rows).set_index("model")
    print(results.to_string(float_format=lambda v: f"{v:.4f}"))
    ndcg = results["NDCG@10"]
    for label in (label for label in ndcg.index if label.startswith("bert4rec")):
        if {"pop", "ease"} <= set(ndcg.index):
            print(f"{label} / pop NDCG@10 = {ndcg[label] / ndcg['pop']:.2f}x (target >= 2); "
                  f"/ ease = {ndcg[label] / ndcg['ease']:.2f}")
    for items in args.items.split(","):
        soft = f"bert4rec {items} softmax"
        for label in (f"bert4rec {items} {loss}" for loss in args.loss.split(",") if loss != "softmax"):
            if {soft, label} <= set(ndcg.index):
                print(f"{label} / {soft}: NDCG@10 {ndcg[label] / ndcg[soft]:.3f} (target >= 0.9), fit seconds "
                      f"{results.loc[label, 'fit_seconds'] / results.loc[soft, 'fit_seconds']:.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
