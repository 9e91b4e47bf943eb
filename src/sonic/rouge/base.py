"""The recommender protocol, the registry of recommenders, :func:`load_recommender` and :func:`shuffled`
(the shuffle control).

The recommenders themselves live in :mod:`sonic.rouge.models`, one module each; the parts they share
(:class:`~sonic.rouge.shared.SeenTracks`, cutting ranked candidates to k...) in :mod:`sonic.rouge.shared`,
which imports nothing of this module, so the registry can point at the models without a circle.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from sonic.errors import SonicError
from sonic.registry import Registry
from sonic.tails.table import EmbeddingTable


@runtime_checkable
class Recommender(Protocol):
    """What every recommender does.

    ``fit`` takes train events (``user_id, track_id`` and, where a model uses them, ``timestamp``
    and ``count``; the frame of :mod:`sonic.cream.data.events`). ``validation`` holds held-out
    events of train users, used only by models that train, for early stopping (never as training
    data); ``item_embeddings`` the track vectors of content models (``content`` is True);
    ``device`` is ``"auto"``, ``"cpu"`` or ``"cuda[:N]"`` for torch models; ``seed`` fixes every
    random choice. ``recommend`` returns, for each user in ``users``, ``ids`` (n_users, k) object
    array of track ids and ``scores`` (n_users, k) float32, best first; a row with fewer than ``k``
    candidates is padded with ``None`` ids and ``nan`` scores. ``history`` (optional events) is
    what became known after fit and before the evaluated period (leave-last-out's validation
    track when its test is scored): models that read a user's history at prediction time use it,
    and ``exclude_seen`` then also removes those tracks. With ``exclude_seen`` a user's train
    tracks are never returned. A user not in the train events raises :class:`DataError`.
    ``save(directory)`` writes the fitted model (JSON, NumPy ``.npz`` without pickles,
    safetensors); ``load(directory)`` gives a model whose recommendations are the same.
    ``curve`` is the training curve (``epoch, train_loss, val_loss`` and/or ``val_metric``,
    ``seconds``) of models that train, else None.

    ``cold_start`` says whether the model can score a track with no train events (a cold test's new
    tracks): content models (from the track's vector) and ``random`` can, collaborative models cannot.
    A model that can takes ``recommend(..., candidates=track_ids)``: it ranks those tracks (played or
    not; a content model leaves out a track without a vector) instead of its train catalogue.
    """

    name: str
    content: bool
    cold_start: bool
    curve: pd.DataFrame | None

    def fit(
        self,
        train: pd.DataFrame,
        *,
        validation: pd.DataFrame | None = None,
        item_embeddings: EmbeddingTable | None = None,
        device: str = "auto",
        seed: int = 0,
    ) -> Self: ...

    def recommend(
        self, users: Sequence[str], k: int, *, exclude_seen: bool = True, history: pd.DataFrame | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def save(self, directory: str | os.PathLike) -> Path: ...

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Self: ...

    def describe(self) -> dict[str, Any]: ...


#: Every recommender, by name. Targets are imported only when their name is asked for.
RECOMMENDERS: Registry[Recommender] = Registry(
    "recommender",
    {
        "random": "sonic.rouge.models.baselines:RandomRecommender",
        "pop": "sonic.rouge.models.baselines:PopularityRecommender",
        "knn": "sonic.rouge.models.knn:KNNRecommender",
        "ease": "sonic.rouge.models.ease:EASERecommender",
        "elsa": "sonic.rouge.models.elsa:ELSARecommender",
        "snn": "sonic.rouge.models.snn:ShallowNetRecommender",
        "bert4rec": "sonic.rouge.models.bert4rec:BERT4RecRecommender",
    },
    aliases={"bert": "bert4rec"},  # the original SONIC's --model-name for BERT4Rec
)


def load_recommender(directory: str | os.PathLike) -> Recommender:
    """The fitted recommender saved in ``directory`` by its ``save``, whatever its kind."""
    from sonic.rouge.models.state import read_model_name

    name = read_model_name(directory)
    return type(RECOMMENDERS.create(name)).load(directory)


def shuffled(table: EmbeddingTable, seed: int) -> EmbeddingTable:
    """The shuffle control: ``table``'s vectors permuted across its track ids by ``default_rng(seed)``.

    Every track keeps a real vector of the same distribution, but not its own, so a content
    model scoring as well on this table as on the original does not use the content. The
    manifest records the seed under ``"shuffled"``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise SonicError(f"shuffle seed must be an integer, got {seed!r}")
    permutation = np.random.default_rng(int(seed)).permutation(len(table.track_ids))
    manifest = {**table.manifest, "shuffled": {"seed": int(seed), "note": "vectors permuted across track ids"}}
    return EmbeddingTable(table.track_ids.copy(), table.vectors[permutation].copy(), manifest)
