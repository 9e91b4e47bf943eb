"""Several recommenders on one split folder, each content model also on its shuffle control.

Every model is fitted on the split's train events, with its val events for early stopping, and ranks
the whole train catalogue (seen tracks excluded) for the users of ``--mode`` (test by default). Prints
HitRate, Recall and NDCG at each k with fit time and epochs, then each model's NDCG ratio to the
baseline named by ``--baseline`` measured in the same run, and each content model's ratio to itself
on embeddings permuted across tracks (``sonic.rouge.base.shuffled``, seeded).

    nice python3 benchmarks/recommenders.py --split-dir DIR [--embedding TABLE.parquet] \\
        [--models pop,ease,knn,snn,bert4rec] [--baseline knn] [--shuffle] [--option bert4rec.items=ids]
"""

from __future__ import annotations

import argparse
import ast
import logging
import sys
import time

import numpy as np
import pandas as pd


def parse_options(pairs: list[str]) -> dict[str, dict]:
    """``model.key=value`` strings -> {model: {key: value}} (values as Python literals when they parse)."""
    options: dict[str, dict] = {}
    for pair in pairs:
        target, _, value = pair.partition("=")
        model, _, key = target.partition(".")
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value
        options.setdefault(model, {})[key] = parsed
    return options


def run(name, options, split, mode, table, ks, device, seed):
    from sonic.rouge.base import RECOMMENDERS
    from sonic.rouge.evaluate import evaluate

    truth = split.parts[mode]
    started = time.perf_counter()
    model = RECOMMENDERS.create(name, **options)
    model.fit(split.train, validation=split.val, item_embeddings=table if model.content else None,
              device=device, seed=seed)  # fmt: skip
    fit_seconds = time.perf_counter() - started
    users = np.sort(truth["user_id"].unique())
    history = split.val if mode == "test" and split.config.protocol == "leave-last-out" else None
    ids, _ = model.recommend(users, max(ks), history=history)
    present = pd.notna(ids).ravel()
    recommendations = pd.DataFrame(
        {
            "user_id": np.repeat(users, max(ks))[present],
            "track_id": ids.ravel()[present].astype(str),
            "rank": np.tile(np.arange(1, max(ks) + 1), len(users))[present],
        }
    )
    means = evaluate(recommendations, truth, ks).means()
    info = model.describe()
    row = {f"{metric}@{k}": means[f"{metric}@{k}"] for k in ks for metric in ("HitRate", "Recall", "NDCG")}
    row.update(fit_s=round(fit_seconds, 1), epochs=info.get("epochs_run", ""), best=info.get("best_epoch", ""))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split-dir", required=True)
    parser.add_argument("--embedding", help="an embedding table (.parquet) for content models")
    parser.add_argument("--models", default="pop,knn,snn,bert4rec")
    parser.add_argument("--baseline", default="pop")
    parser.add_argument("--mode", default="test")
    parser.add_argument("--k", type=int, action="append", default=None)
    parser.add_argument("--shuffle", action="store_true", help="also run each content model on shuffled vectors")
    parser.add_argument("--option", action="append", default=[], help="model.key=value, repeatable")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout)

    from sonic.cream.data import read_split
    from sonic.rouge.base import RECOMMENDERS, shuffled
    from sonic.tails.table import read_embeddings

    ks = sorted(set(args.k or [10, 50]))
    split = read_split(args.split_dir)
    table = read_embeddings(args.embedding) if args.embedding else None
    options = parse_options(args.option)
    rows = {}
    for name in args.models.split(","):
        model_options = options.get(name, {})
        rows[name] = run(name, model_options, split, args.mode, table, ks, args.device, args.seed)
        print(name, rows[name], flush=True)
        if args.shuffle and table is not None and RECOMMENDERS.create(name, **model_options).content:
            control = f"{name}+shuffle"
            rows[control] = run(name, model_options, split, args.mode, shuffled(table, args.seed), ks, args.device,
                                args.seed)  # fmt: skip
            print(control, rows[control], flush=True)
    frame = pd.DataFrame.from_dict(rows, orient="index")
    print(frame.to_string(float_format=lambda v: f"{v:.4f}"))
    key = f"NDCG@{ks[0]}"
    if args.baseline in frame.index:
        for name in frame.index:
            ratio = frame.loc[name, key] / frame.loc[args.baseline, key]
            print(f"{name} / {args.baseline} {key} = {ratio:.2f}")
    for name in frame.index:
        if f"{name}+shuffle" in frame.index:
            ratio = frame.loc[name, key] / frame.loc[f"{name}+shuffle", key]
            print(f"{name} / its shuffle control {key} = {ratio:.2f}")


if __name__ == "__main__":
    main()
