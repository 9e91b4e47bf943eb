"""One experiment run: fit a recommender on a split, recommend, evaluate, write the artifacts.

``out_dir`` receives ``config.json`` (what produced the numbers), ``recommendations.parquet``
(user_id, track_id, rank, score), ``metrics.json`` (flat means) and ``metrics.csv`` (means
with 95% t-intervals).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sonic.errors import DataError, SonicError
from sonic.manifest import base_manifest, write_json
from sonic.rouge.base import RECOMMENDERS
from sonic.rouge.evaluate import MetricsReport, check_ks, evaluate

MODES = ("val", "test")


@dataclass(frozen=True)
class RunResult:
    """What a run produced: the metrics report, the model's description and the files written."""

    report: MetricsReport
    out_dir: Path
    config_path: Path
    recommendations_path: Path
    metrics_path: Path
    table_path: Path
    model_info: dict[str, Any] = field(default_factory=dict)


def run_model(
    model_name: str,
    split_dir: str | os.PathLike,
    *,
    embedding: str | os.PathLike | None = None,
    embeddings_dir: str | os.PathLike | None = None,
    mode: str = "val",
    ks: Iterable[int] = (10, 50),
    out_dir: str | os.PathLike,
    seed: int = 0,
) -> RunResult:
    """Fit ``model_name`` on the split's train events and evaluate it on its ``mode`` events.

    ``embedding`` is a ``.parquet`` path, or a name resolved as ``<embeddings_dir>/<name>.parquet``;
    knn needs one, pop and random only record it. Every evaluation user gets ``max(ks)`` tracks
    with their train tracks excluded.
    """
    model = RECOMMENDERS.create(model_name)
    if mode not in MODES:
        raise SonicError(f"mode must be 'val' or 'test', got {mode!r}")
    ks = check_ks(ks)
    table_path = resolve_embedding(embedding, embeddings_dir)
    train, truth, split_config = read_split_events(split_dir, mode)
    table = None
    if table_path is not None:
        from sonic.tails.table import read_embeddings

        table = read_embeddings(table_path)

    model.fit(train, item_embeddings=table, seed=seed)
    users = np.sort(truth["user_id"].unique())
    ids, scores = model.recommend(users, max(ks), exclude_seen=True)
    recommendations = _long_frame(users, ids, scores)
    report = evaluate(recommendations, truth, ks, truth_source=f"{mode} events of split '{split_dir}'")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_info = model.describe()
    config = base_manifest(
        "run",
        model=model_name,
        model_info=model_info,
        embedding=None if table is None else {"path": str(table_path), "manifest": table.manifest},
        split={"dir": str(split_dir), "config": split_config},
        mode=mode,
        ks=list(report.ks),
        seed=seed,
        n_users=report.n_users,
    )
    paths = {name: out / name for name in ("config.json", "recommendations.parquet", "metrics.json", "metrics.csv")}
    write_json(paths["config.json"], config)
    recommendations.to_parquet(paths["recommendations.parquet"], index=False)
    write_json(paths["metrics.json"], report.means())
    report.table().to_csv(paths["metrics.csv"], index=False)
    return RunResult(
        report=report,
        out_dir=out,
        config_path=paths["config.json"],
        recommendations_path=paths["recommendations.parquet"],
        metrics_path=paths["metrics.json"],
        table_path=paths["metrics.csv"],
        model_info=model_info,
    )


def resolve_embedding(embedding: str | os.PathLike | None, embeddings_dir: str | os.PathLike | None) -> Path | None:
    """The embedding table file for ``embedding``: a ``.parquet`` path, or a name in ``embeddings_dir``."""
    if embedding is None:
        return None
    path = Path(embedding)
    if path.suffix == ".parquet" or path.is_file():
        if not path.is_file():
            raise DataError(f"embedding table '{path}' does not exist")
        return path
    if embeddings_dir is None:
        raise DataError(
            f"embedding '{embedding}' is not a .parquet file; "
            f"pass a path, or --embeddings-dir holding {embedding}.parquet"
        )
    directory = Path(embeddings_dir)
    path = directory / f"{embedding}.parquet"
    if not path.is_file():
        known = ", ".join(sorted(p.name.removesuffix(".parquet") for p in directory.glob("*.parquet"))) or "none"
        raise DataError(f"no embedding '{embedding}' in '{directory}' (no {path.name}); known: {known}")
    return path


def read_split_events(split_dir: str | os.PathLike, mode: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(train events, ``mode`` events, the split's settings) of a split folder written by ``sonic data-split``."""
    from sonic.cream.data import read_split

    split = read_split(split_dir)
    parts = split.parts
    if mode not in parts:
        raise DataError(f"split folder '{split_dir}' has no {mode} events; it holds {', '.join(parts)}")
    return parts["train"], parts[mode], split.config.to_dict()


def _long_frame(users: np.ndarray, ids: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """(n, k) id and score arrays -> one row per recommended track, padding dropped."""
    n, k = ids.shape
    present = pd.notna(ids).ravel()
    return pd.DataFrame(
        {
            "user_id": np.repeat(np.asarray(users, dtype=object), k)[present],
            "track_id": ids.ravel()[present],
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), n)[present],
            "score": scores.ravel()[present],
        }
    ).astype({"user_id": "str", "track_id": "str"})
