"""ELSA (Vancura et al., RecSys '22): EASE's idea with low-rank weights, for catalogues too large
for a dense item-item matrix.

B = A A^T - I with A (n_tracks x factors) row-normalised, so a user's scores are (x_u A) A^T - x_u
and memory is O(n_tracks x factors). A is trained with Adam on the normalised squared error between
x_u B / |x_u B| and x_u / |x_u| over batches of users (:func:`elsa_loss`). With validation events,
training stops when validation NDCG@10 has not improved for ``patience`` epochs and the best A is
restored.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from sonic.errors import SonicError
from sonic.rouge.shared import SeenTracks, check_k, empty_lists, make_config, top_k_unseen
from sonic.rouge.models.history import ordered_histories
from sonic.rouge.models.state import read_state, write_state
from sonic.rouge.models.training import (
    Curve,
    EarlyStopping,
    TorchTraining,
    device_for,
    ndcg_at,
    require_torch,
    seeded_generator,
    torch_threads,
)
from sonic.tails.table import EmbeddingTable

_USERS_PER_BATCH = 512


@dataclass(frozen=True)
class ELSAConfig:
    """``factors``: columns of A. ``epochs``: most passes over the users. ``batch_size``: users per step.
    ``lr``: Adam's step. ``patience``: epochs without a better validation NDCG@10 before stopping."""

    factors: int = 256
    epochs: int = 30
    batch_size: int = 256
    lr: float = 0.01
    patience: int = 5

    threads: int = 0

    def __post_init__(self) -> None:
        for name in ("factors", "epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SonicError(f"elsa {name} must be a positive integer, got {value!r}")
        if not float(self.lr) > 0:
            raise SonicError(f"elsa lr must be positive, got {self.lr!r}")


def elsa_loss(batch: Any, factors: Any) -> Any:
    """Mean over users of | x B / |x B| - x / |x| |^2 with B = A A^T - I, A's rows unit length.

    ``batch`` (b, n_tracks) float tensor of 0/1 rows, ``factors`` A (n_tracks, r) -> scalar tensor.
    """
    import torch.nn.functional as F

    unit = F.normalize(factors, dim=1)
    predicted = (batch @ unit) @ unit.T - batch
    return ((F.normalize(predicted, dim=1) - F.normalize(batch, dim=1)) ** 2).sum(dim=1).mean()


class ELSARecommender(TorchTraining):
    """Low-rank linear autoencoder over the train catalogue; ``history`` rows join x_u when predicting."""

    name = "elsa"
    content = False
    cold_start = False  # a track with no train events has no item embedding

    def __init__(self, **options: Any) -> None:
        self.config = make_config(ELSAConfig, options, self.name)
        self._seen: SeenTracks | None = None
        self._factors: np.ndarray | None = None  # (n_tracks, factors) float32, unit rows
        self.curve: pd.DataFrame | None = None
        self._facts: dict[str, Any] = {}

    def _fit(
        self,
        train: pd.DataFrame,
        validation: pd.DataFrame | None,
        item_embeddings: EmbeddingTable | None,
        device: str,
        seed: int,
    ) -> Self:
        """Train A on the train pairs (``item_embeddings`` unused); see the module docstring."""
        torch = require_torch(self.name)
        seen = SeenTracks.from_train(train)
        chosen = device_for(device)
        generator = seeded_generator(seed)
        n_users, n_tracks = len(seen.user_ids), seen.n_tracks
        factors = torch.nn.Parameter(torch.empty(n_tracks, self.config.factors))
        torch.nn.init.xavier_uniform_(factors, generator=generator)
        module = torch.nn.ParameterDict({"factors": factors}).to(chosen)
        optimiser = torch.optim.Adam(module.parameters(), lr=self.config.lr)
        targets = ordered_histories(validation, seen, what="validation")
        stopper = EarlyStopping(self.config.patience, mode="max")
        curve = Curve()
        for epoch in range(1, self.config.epochs + 1):
            order = torch.randperm(n_users, generator=generator).numpy()
            total, batches = 0.0, 0
            for start in range(0, n_users, self.config.batch_size):
                rows = order[start : start + self.config.batch_size]
                batch = torch.from_numpy(seen.seen_mask(rows).astype(np.float32)).to(chosen)
                loss = elsa_loss(batch, module["factors"])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total, batches = total + loss.item(), batches + 1
            self._seen, self._factors = seen, self._unit(module)
            val_metric = ndcg_at(lambda rows: self._scores(seen, rows), targets, seen) if targets.items.size else None
            curve.add(epoch, train_loss=total / batches, val_metric=val_metric)
            if val_metric is not None and stopper.step(val_metric, epoch, module):
                break
        stopper.restore(module)
        self._factors = self._unit(module)
        self.curve = curve.frame()
        self._facts = {"best_epoch": stopper.best_epoch, "epochs_run": epoch, "device": str(chosen), "seed": seed}
        return self

    def recommend(
        self, users: Sequence[str], k: int, *, exclude_seen: bool = True, history: pd.DataFrame | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``ids`` (n, k) object and ``scores`` (n, k) float32; see :class:`sonic.rouge.base.Recommender`."""
        with torch_threads(self.config.threads):
            return self._recommend(users, k, exclude_seen, history)

    def _recommend(
        self, users: Sequence[str], k: int, exclude_seen: bool, history: pd.DataFrame | None
    ) -> tuple[np.ndarray, np.ndarray]:
        seen = self._fitted().extended(history)
        k, rows = check_k(k), seen.user_rows(users)
        ids, scores = empty_lists(len(rows), k)
        for start in range(0, len(rows), _USERS_PER_BATCH):
            batch = rows[start : start + _USERS_PER_BATCH]
            ids[start : start + len(batch)], scores[start : start + len(batch)] = top_k_unseen(
                self._scores(seen, batch), batch, seen, k, exclude_seen=exclude_seen
            )
        return ids, scores

    def describe(self) -> dict[str, Any]:
        seen = self._fitted()
        return {
            "name": self.name,
            "config": asdict(self.config),
            "n_train_users": len(seen.user_ids),
            "n_catalogue_tracks": seen.n_tracks,
            **self._facts,
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the fitted model to ``directory``; :meth:`load` reads it back."""
        seen = self._fitted()
        arrays = {**seen.to_arrays(), "factors": self._factors}
        return write_state(directory, self.name, self.config, facts=self._facts, arrays=arrays)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Self:
        saved = read_state(directory, cls.name)
        model = cls(**saved.config)
        model._seen, model._factors = SeenTracks.from_arrays(saved.arrays), saved.arrays["factors"]
        model._facts = saved.facts
        return model

    def _scores(self, seen: SeenTracks, rows: np.ndarray) -> np.ndarray:
        heard = seen.seen_mask(rows).astype(np.float32)
        return (heard @ self._factors) @ self._factors.T - heard

    @staticmethod
    def _unit(module: Any) -> np.ndarray:
        factors = module["factors"].detach().float().cpu().numpy()
        norms = np.linalg.norm(factors, axis=1, keepdims=True)
        return np.divide(factors, norms, out=np.zeros_like(factors), where=norms > 0).astype(np.float32)

    def _fitted(self) -> SeenTracks:
        if self._seen is None or self._factors is None:
            raise RuntimeError("elsa recommender: call fit before recommend, describe or save")
        return self._seen
