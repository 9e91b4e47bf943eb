"""The shallow net (SNN) of REFERENCE section 4, with its best weights restored.

Users get a trainable vector initialised with the mean of their train tracks' (standardised) content
vectors; tracks keep their content vectors, fixed. One shared ``Linear + ReLU`` maps both into a common
space, and a pair scores the cosine there. Training minimises :func:`hinge_loss` (margin 0.2) of every
train pair against ``negatives`` tracks drawn uniformly from the catalogue, with Adam (1e-3) in batches
of 10,000 pairs, ``ReduceLROnPlateau`` (patience 5) and early stopping (patience 16) on the validation
loss: the same loss on the validation pairs against negatives drawn once with the seed. When training
stops, the weights of the best validation epoch are loaded back (the seed project never did, and its
published numbers came from an untrained net). Without validation events the train loss is watched.

Cold start: a track is scored from its vector alone, so ``recommend(..., candidates=ids)`` ranks any
track of the embedding table, played or not: a track without train events is standardised with the
catalogue's numbers and goes through the same shared layer as a train track (a cold copy of a train
track, the same vector under a new id, gets exactly its original's score).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from sonic.errors import DataError, SonicError
from sonic.rouge.shared import (
    SeenTracks,
    check_k,
    check_train,
    empty_lists,
    make_config,
    rows_in,
    top_k_unseen,
)
from sonic.rouge.models.content import candidate_items, content_items
from sonic.rouge.models.state import read_state, write_state
from sonic.rouge.models.training import (
    Curve,
    EarlyStopping,
    TorchTraining,
    device_for,
    require_torch,
    seeded_generator,
    torch_threads,
)
from sonic.tails.table import EmbeddingTable

_USERS_PER_BATCH = 512
#: The most (users x tracks) cosines a training batch computes as one matrix (2^25 float32: 128 MB).
_SCORE_MATRIX_CELLS = 1 << 25
#: How :meth:`pair_loss` maps a batch's rows through the shared layer (see there).
PAIR_PATHS = ("matrix", "tracks", "rows")


@dataclass(frozen=True)
class SNNConfig:
    """``hidden``: width of the shared layer (None: the embedding size). ``margin``, ``negatives``: the
    hinge loss. ``lr``, ``batch_size`` (train pairs per step), ``max_epochs``, ``patience`` (early
    stopping), ``lr_patience`` (reduce-on-plateau, factor 0.1). ``standardise``: scale each content
    dimension to zero mean and unit variance over the catalogue before anything else."""

    hidden: int | None = None
    margin: float = 0.2
    negatives: int = 20
    lr: float = 1e-3
    batch_size: int = 10_000
    max_epochs: int = 200
    patience: int = 16
    lr_patience: int = 5
    standardise: bool = True

    threads: int = 0

    def __post_init__(self) -> None:
        for name in ("negatives", "batch_size", "max_epochs", "patience", "lr_patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SonicError(f"snn {name} must be a positive integer, got {value!r}")
        if self.hidden is not None and (not isinstance(self.hidden, int) or self.hidden < 1):
            raise SonicError(f"snn hidden must be a positive integer or None, got {self.hidden!r}")
        if not float(self.lr) > 0 or not float(self.margin) >= 0:
            raise SonicError(f"snn lr must be positive and margin non-negative, got {self.lr!r}, {self.margin!r}")


def hinge_loss(positive: Any, negative: Any, margin: float) -> Any:
    """Mean over pairs and negatives of max(0, margin - s(u, i) + s(u, j)).

    ``positive`` (b,) scores of the true pairs, ``negative`` (b, m) scores of m sampled tracks per
    pair -> scalar tensor.
    """
    return (margin - positive[:, None] + negative).clamp(min=0).mean()


def pair_path(n_users: int, n_items: int, batch: int, negatives: int) -> str:
    """How :meth:`pair_loss` scores a batch of ``batch`` pairs with ``negatives`` each: ``"matrix"`` when the
    cosines of the batch's users (or of every user, when there are fewer users than pairs) with every
    track fit in :data:`_SCORE_MATRIX_CELLS`; else ``"tracks"`` when the batch samples more track rows
    than the catalogue holds (each track is mapped once, then picked); else ``"rows"`` (every sampled row
    is mapped)."""
    if min(n_users, batch) * n_items <= _SCORE_MATRIX_CELLS:
        return "matrix"
    return "tracks" if batch * (1 + negatives) > n_items else "rows"


def _network(n_users: int, dim: int, hidden: int, users: Any, items: Any) -> Any:
    torch = require_torch("snn")

    class ShallowNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.users = torch.nn.Parameter(torch.as_tensor(users, dtype=torch.float32).clone())  # (U, d)
            self.register_buffer("items", torch.as_tensor(items, dtype=torch.float32).clone())  # (I, d)
            self.shared = torch.nn.Linear(dim, hidden)

        def user_space(self, rows: Any = None) -> Any:  # (b,) -> (b, hidden), unit length; None: every user
            vectors = self.users if rows is None else self.users[rows]
            return torch.nn.functional.normalize(torch.relu(self.shared(vectors)), dim=-1)

        def item_space(self, rows: Any = None) -> Any:  # (...,) -> (..., hidden), unit length
            return self.map_vectors(self.items if rows is None else self.items[rows])

        def map_vectors(self, vectors: Any) -> Any:  # (..., d) standardised track vectors -> (..., hidden)
            return torch.nn.functional.normalize(torch.relu(self.shared(vectors)), dim=-1)

        def pair_loss(self, users: Any, positives: Any, negatives: Any, margin: float, path: str | None = None) -> Any:
            """:func:`hinge_loss` of users (b,) with their positives (b,) against negatives (b, m), all rows.

            ``path`` (default :func:`pair_path`'s choice) only changes the work, not the values: ``"matrix"``
            maps each user and track through the shared layer once and scores them all in one product;
            ``"tracks"`` maps every track once and picks the sampled ones (at the journal's scale a batch
            of 10,000 pairs with 20 negatives samples 210,000 rows of a 55,000-track catalogue); ``"rows"``
            maps every sampled row.
            """
            every_user = len(self.users) < len(users)
            path = path or pair_path(len(self.users), len(self.items), len(users), negatives.shape[1])
            if path == "matrix":
                scores = self.user_space(None if every_user else users) @ self.item_space().T  # (U or b, I)
                at = users if every_user else torch.arange(len(users), device=users.device)
                return hinge_loss(scores[at, positives], scores[at[:, None], negatives], margin)
            u = self.user_space(users)  # (b, h)
            if path == "tracks":
                tracks = self.item_space()  # (I, h)
                positive_rows, negative_rows = tracks[positives], tracks[negatives]
            else:
                positive_rows, negative_rows = self.item_space(positives), self.item_space(negatives)
            pos = (u * positive_rows).sum(-1)  # (b,)
            neg = torch.einsum("bh,bmh->bm", u, negative_rows)  # (b, m)
            return hinge_loss(pos, neg, margin)

    return ShallowNet()


def _mean_track_vectors(user_rows: np.ndarray, track_rows: np.ndarray, vectors: np.ndarray, n_users: int) -> np.ndarray:
    """(n_users, d) float64: each user's mean of ``vectors`` over their (user, track) pairs; zeros without any.

    One sparse product: a gather of every pair's vector first would need pairs x d floats (16 GB at
    the journal's 5.4 M pairs of 768-d vectors).
    """
    import scipy.sparse

    pairs = scipy.sparse.csr_matrix(
        (np.ones(len(user_rows)), (user_rows, track_rows)), shape=(n_users, len(vectors))
    )
    sums = pairs @ vectors.astype(np.float64)
    return sums / np.maximum(np.bincount(user_rows, minlength=n_users), 1)[:, None]


class ShallowNetRecommender(TorchTraining):
    """The SNN over the train tracks that have a content vector; see the module docstring."""

    name = "snn"
    content = True
    cold_start = True

    def __init__(self, **options: Any) -> None:
        self.config = make_config(SNNConfig, options, self.name)
        self._seen: SeenTracks | None = None
        self._net: Any = None
        self._has_vector = np.zeros(0, bool)
        self._other_ids, self._other_vectors = np.zeros(0, str), np.zeros((0, 0), np.float32)
        self._candidates: tuple[np.ndarray, SeenTracks, Any] | None = None
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
        """Train on ``train``, stop on ``validation``'s loss and restore the best epoch's weights."""
        torch = require_torch(self.name)
        if item_embeddings is None:
            raise SonicError("snn needs --embedding: a table of track vectors (it is a content model)")
        check_train(train)
        items = content_items(train, item_embeddings, standardise=self.config.standardise)
        seen, vectors = items.seen, items.vectors
        self._other_ids, self._other_vectors, self._candidates = items.other_ids, items.other_vectors, None
        chosen = device_for(device)
        generator = seeded_generator(seed)
        user_rows, track_rows = np.divmod(seen.seen_keys, seen.n_tracks)
        users = _mean_track_vectors(user_rows, track_rows, vectors, len(seen.user_ids))
        hidden = self.config.hidden or vectors.shape[1]
        net = _network(len(seen.user_ids), vectors.shape[1], hidden, users, vectors).to(chosen)
        self._seen, self._net, self._has_vector = seen, net, seen.seen_counts > 0
        self._seed = int(seed)
        val_pairs = self._pairs(validation, "validation")
        optimiser = torch.optim.Adam(net.parameters(), lr=self.config.lr)
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, patience=self.config.lr_patience)
        stopper = EarlyStopping(self.config.patience, mode="min")
        curve = Curve()
        train_users = torch.as_tensor(user_rows, device=chosen)
        train_tracks = torch.as_tensor(track_rows, device=chosen)
        for epoch in range(1, self.config.max_epochs + 1):
            net.train()
            order = torch.randperm(len(train_users), generator=generator).to(chosen)
            total = 0.0
            for start in range(0, len(order), self.config.batch_size):
                batch = order[start : start + self.config.batch_size]
                negatives = torch.randint(seen.n_tracks, (len(batch), self.config.negatives), generator=generator).to(
                    chosen
                )
                loss = net.pair_loss(train_users[batch], train_tracks[batch], negatives, self.config.margin)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
            train_loss = total / len(order)
            val_loss = self._loss(*val_pairs) if val_pairs is not None else None
            watched = train_loss if val_loss is None else val_loss
            plateau.step(watched)
            curve.add(epoch, train_loss=train_loss, val_loss=val_loss, lr=optimiser.param_groups[0]["lr"])
            if stopper.step(watched, epoch, net):
                break
        stopper.restore(net)
        net.eval()
        self.curve = curve.frame()
        self._facts = {
            "best_epoch": stopper.best_epoch,
            "best_watched_loss": stopper.best_value,
            "watched": "val_loss" if val_pairs is not None else "train_loss",
            "epochs_run": epoch,
            "device": str(chosen),
            "seed": int(seed),
            "hidden": hidden,
            "train_tracks_without_vector": int(train["track_id"].astype(str).nunique() - seen.n_tracks),
        }
        return self

    def loss_on(self, events: pd.DataFrame) -> float:
        """The hinge loss on ``events`` (pairs of known users and catalogue tracks) against negatives
        drawn with the fit seed: for the validation events, the value early stopping watched."""
        pairs = self._pairs(events, "validation")
        if pairs is None:
            raise DataError("no event pairs a known user with a catalogue track; there is no loss to compute")
        return self._loss(*pairs)

    def recommend(
        self,
        users: Sequence[str],
        k: int,
        *,
        exclude_seen: bool = True,
        history: pd.DataFrame | None = None,
        candidates: Sequence[str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``ids`` (n, k) object and ``scores`` (n, k) float32 cosines; ``history`` widens the exclusion only
        (user vectors are trained). A user with no embedded train track gets an empty (padded) list.
        ``candidates``: the track ids to rank (any track of the embedding table, played or not; one
        without a vector is left out); None ranks the train catalogue."""
        with torch_threads(self.config.threads):
            return self._recommend(users, k, exclude_seen, history, candidates)

    def _recommend(
        self, users: Sequence[str], k: int, exclude_seen: bool, history: pd.DataFrame | None,
        candidates: Sequence[str] | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        torch = require_torch(self.name)
        if candidates is None:
            seen, items = self._fitted(), None
        else:
            seen, items = self._among(candidates)
        seen = seen.extended(history)
        k, rows = check_k(k), seen.user_rows(users)
        ids, scores = empty_lists(len(rows), k)
        if seen.n_tracks == 0:
            return ids, scores
        device = next(self._net.parameters()).device
        with torch.no_grad():
            items = self._net.item_space() if items is None else items  # (I, h)
            for start in range(0, len(rows), _USERS_PER_BATCH):
                batch = rows[start : start + _USERS_PER_BATCH]
                block = (self._net.user_space(torch.as_tensor(batch, device=device)) @ items.T).float().cpu().numpy()
                block[~self._has_vector[batch]] = -np.inf
                ids[start : start + len(batch)], scores[start : start + len(batch)] = top_k_unseen(
                    block, batch, seen, k, exclude_seen=exclude_seen
                )
        return ids, scores

    def _among(self, candidates: Sequence[str]) -> tuple[SeenTracks, Any]:
        """The users over ``candidates`` (those with a vector, in their order) and the candidates in the
        shared space (c, hidden); the last set asked is kept (run_model asks chunk after chunk)."""
        torch = require_torch(self.name)
        candidates = np.asarray(candidates, dtype=object)
        cached = self._candidates
        if cached is not None and len(cached[0]) == len(candidates) and np.array_equal(cached[0], candidates):
            return cached[1], cached[2]
        seen = self._fitted()
        chosen = candidate_items(seen.track_ids, self._net.items.cpu().numpy(), self._other_ids, self._other_vectors,
                                 candidates)
        device = next(self._net.parameters()).device
        with torch.no_grad():
            items = self._net.map_vectors(torch.as_tensor(chosen.vectors, device=device))
        self._candidates = (candidates, seen.among(chosen.track_ids), items)
        return self._candidates[1], items

    def describe(self) -> dict[str, Any]:
        seen = self._fitted()
        warnings = []
        if self._facts.get("train_tracks_without_vector"):
            warnings.append(f"{self._facts['train_tracks_without_vector']} train tracks have no vector; left out")
        return {
            "name": self.name,
            "config": asdict(self.config),
            "n_train_users": len(seen.user_ids),
            "n_catalogue_tracks": seen.n_tracks,
            "n_other_tracks_with_vector": len(self._other_ids),
            **self._facts,
            "warnings": warnings,
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the fitted model to ``directory`` (weights as safetensors); :meth:`load` reads it back."""
        seen = self._fitted()
        arrays = {**seen.to_arrays(), "has_vector": self._has_vector, "other_ids": self._other_ids.astype(str),
                  "other_vectors": self._other_vectors}
        return write_state(
            directory, self.name, self.config, facts=self._facts, arrays=arrays, tensors=self._net.state_dict()
        )

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Self:
        saved = read_state(directory, cls.name)
        model = cls(**saved.config)
        tensors = saved.tensors or {}
        if "users" not in tensors or "items" not in tensors:
            raise DataError(f"model folder '{directory}' has no snn weights; save the model again")
        dim = tensors["items"].shape[1]
        net = _network(tensors["users"].shape[0], dim, int(saved.facts["hidden"]), tensors["users"], tensors["items"])
        net.load_state_dict(tensors)
        net.eval()
        model._seen, model._net, model._has_vector = (
            SeenTracks.from_arrays(saved.arrays),
            net,
            saved.arrays["has_vector"],
        )
        model._facts, model._seed = saved.facts, int(saved.facts["seed"])
        model._other_ids = np.asarray(saved.arrays.get("other_ids", np.zeros(0, str))).astype(str)  # older saves: none
        model._other_vectors = np.asarray(saved.arrays.get("other_vectors", np.zeros((0, dim), np.float32)))
        return model

    def _pairs(self, events: pd.DataFrame | None, what: str) -> tuple[Any, Any, Any] | None:
        """(users, tracks, negatives) tensors of ``events``' known pairs; negatives from the fit seed."""
        torch = require_torch(self.name)
        if events is None or len(events) == 0:
            return None
        seen = self._fitted()
        users = rows_in(seen.user_ids, events["user_id"].astype(str))
        tracks = rows_in(seen.track_ids, events["track_id"].astype(str))
        known = (users >= 0) & (tracks >= 0)
        if not known.any():
            return None
        rng = np.random.default_rng([self._seed, 1])
        negatives = rng.integers(0, seen.n_tracks, (int(known.sum()), self.config.negatives))
        device = next(self._net.parameters()).device
        return tuple(torch.as_tensor(a, device=device) for a in (users[known], tracks[known], negatives))

    def _loss(self, users: Any, tracks: Any, negatives: Any) -> float:
        torch = require_torch(self.name)
        self._net.eval()
        with torch.no_grad():
            total = 0.0
            for start in range(0, len(users), self.config.batch_size):
                part = slice(start, start + self.config.batch_size)
                loss = self._net.pair_loss(users[part], tracks[part], negatives[part], self.config.margin)
                total += float(loss) * len(users[part])
        return total / len(users)

    def _fitted(self) -> SeenTracks:
        if self._seen is None or self._net is None:
            raise RuntimeError("snn recommender: call fit before recommend, describe or save")
        return self._seen

