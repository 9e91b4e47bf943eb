"""The recommender protocol and the registry of recommenders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from sonic.registry import Registry
from sonic.tails.table import EmbeddingTable


@runtime_checkable
class Recommender(Protocol):
    """What every recommender does.

    ``fit`` takes train events (the frame of :mod:`sonic.cream.events`) and, for
    content-based models, the item embeddings. ``recommend`` returns, for each user in
    ``users``, ``ids`` (n_users, k) object array of track ids and ``scores`` (n_users, k)
    float32, best first; a row with fewer than ``k`` candidates is padded with ``None``
    ids and ``nan`` scores. With ``exclude_seen`` a user's train tracks are never returned.
    """

    name: str

    def fit(self, train: pd.DataFrame, *, item_embeddings: EmbeddingTable | None = None, seed: int = 0) -> Self: ...

    def recommend(self, users: Sequence[str], k: int, *, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]: ...

    def describe(self) -> dict[str, Any]: ...


#: Every recommender, by name. Targets are imported only when their name is asked for.
RECOMMENDERS: Registry[Recommender] = Registry(
    "recommender",
    {
        "random": "sonic.rouge.baselines:RandomRecommender",
        "pop": "sonic.rouge.baselines:PopularityRecommender",
        "knn": "sonic.rouge.knn:KNNRecommender",
    },
)
