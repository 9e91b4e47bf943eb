"""Content KNN (REFERENCE section 4): a user is the mean of their train tracks' vectors.

Score(user, track) = cosine(mean of the embeddings of the user's unique train tracks, the
track's embedding). Users and tracks are L2-normalised and searched exactly with a FAISS
inner-product index, in batches of users.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd

from sonic.errors import DataError, SonicError
from sonic.rouge.base import (
    SeenTracks,
    batches_by_history,
    check_k,
    check_train,
    empty_lists,
    first_k_kept,
    make_config,
)
from sonic.tails.table import EmbeddingTable


@dataclass(frozen=True)
class KNNConfig:
    """``catalogue``: ``"train"`` recommends train tracks that have a vector; ``"all"`` every
    track of the embedding table (cold start). ``batch_size``: users per FAISS search."""

    catalogue: Literal["train", "all"] = "train"
    batch_size: int = 1024

    def __post_init__(self) -> None:
        if self.catalogue not in ("train", "all"):
            raise SonicError(f"knn catalogue must be 'train' or 'all', got {self.catalogue!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise SonicError(f"knn batch_size must be a positive integer, got {self.batch_size!r}")


@dataclass(frozen=True)
class _Fitted:
    seen: SeenTracks  # catalogue = the tracks of the index, in index order
    user_vectors: np.ndarray  # (n_users, dim) float32, unit length or zero
    has_vector: np.ndarray  # (n_users,) bool: the user has at least one embedded train track
    index: Any  # faiss.IndexFlatIP over the unit catalogue vectors
    train_tracks_without_vector: int
    n_train_tracks: int


class KNNRecommender:
    """Cosine nearest tracks to the mean vector of the user's train tracks.

    Train tracks without a vector are left out of user means and of the catalogue; how many is
    reported by :meth:`describe` (``train_tracks_without_vector``, and a ``warnings`` line).
    A user none of whose train tracks has a vector gets an empty (padded) list, also counted.
    """

    name = "knn"
    content = True
    curve = None

    def __init__(self, **options: Any) -> None:
        self.config = make_config(KNNConfig, options, self.name)
        self._fitted: _Fitted | None = None

    def fit(
        self,
        train: pd.DataFrame,
        *,
        validation: pd.DataFrame | None = None,
        item_embeddings: EmbeddingTable | None = None,
        device: str = "auto",
        seed: int = 0,
    ) -> Self:
        """Build user vectors and the track index; ``validation``, ``device`` and ``seed`` are unused."""
        import faiss
        from scipy import sparse

        if item_embeddings is None:
            raise SonicError("knn needs --embedding: a table of track vectors to average into user vectors")
        check_train(train)
        train_tracks = np.sort(train["track_id"].astype(str).unique())
        table_rows, found = item_embeddings.lookup(train_tracks.astype(str))
        if not found.any():
            example = train_tracks[0]
            raise DataError(
                f"none of the {len(train_tracks)} train tracks (e.g. '{example}') has a vector in the "
                "embedding table; does the table embed the tracks of this split?"
            )
        if self.config.catalogue == "train":
            catalogue_ids, catalogue_rows = train_tracks[found], table_rows[found]
        else:
            order = np.argsort(item_embeddings.track_ids)
            catalogue_ids, catalogue_rows = item_embeddings.track_ids[order], order
        item_vectors = _unit_rows(item_embeddings.vectors[catalogue_rows].astype(np.float64))
        seen = SeenTracks.from_train(train, track_ids=np.asarray(catalogue_ids, dtype=object))

        # Every embedded train track is in the catalogue, so the seen pairs are exactly the
        # (user, unique embedded train track) pairs to average: a (n_users, n_catalogue) mean operator.
        user_rows, track_rows = np.divmod(seen.seen_keys, seen.n_tracks)
        weights = 1.0 / seen.seen_counts[user_rows]
        mean_operator = sparse.csr_matrix((weights, (user_rows, track_rows)), shape=(len(seen.user_ids), seen.n_tracks))
        raw_means = mean_operator @ item_embeddings.vectors[catalogue_rows].astype(np.float64)  # (n_users, dim)
        index = faiss.IndexFlatIP(item_embeddings.dim)
        index.add(np.ascontiguousarray(item_vectors, dtype=np.float32))
        self._fitted = _Fitted(
            seen=seen,
            user_vectors=np.ascontiguousarray(_unit_rows(raw_means), dtype=np.float32),
            has_vector=seen.seen_counts > 0,
            index=index,
            train_tracks_without_vector=int((~found).sum()),
            n_train_tracks=len(train_tracks),
        )
        return self

    def recommend(
        self, users: Sequence[str], k: int, *, exclude_seen: bool = True, history: pd.DataFrame | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``ids`` (n, k) object and ``scores`` (n, k) float32 cosines; see :class:`sonic.rouge.base.Recommender`.

        ``history`` widens the exclusion only: user vectors stay the means of train tracks.
        """
        fitted = self._require_fitted()
        seen = fitted.seen.extended(history)
        k, rows = check_k(k), seen.user_rows(users)
        ids, scores = empty_lists(len(rows), k)
        for batch in batches_by_history(seen.seen_counts[rows], self.config.batch_size):
            user_rows = rows[batch]
            # Search past the batch's longest history so k unseen tracks remain when possible.
            extra = int(seen.seen_counts[user_rows].max()) if exclude_seen else 0
            width = min(seen.n_tracks, k + extra)
            similarities, found = fitted.index.search(fitted.user_vectors[user_rows], width)  # (b, width) each
            keep = (found >= 0) & fitted.has_vector[user_rows][:, None]
            track_rows = np.where(found >= 0, found, 0)
            if exclude_seen:
                keep &= ~seen.is_seen(user_rows, track_rows)
            ids[batch], scores[batch] = first_k_kept(track_rows, similarities, keep, k, seen.track_ids)
        return ids, scores

    def describe(self) -> dict[str, Any]:
        """Options, catalogue size and the coverage counts, with a ``warnings`` line for each gap."""
        fitted = self._require_fitted()
        users_without = int((~fitted.has_vector).sum())
        warnings = []
        if fitted.train_tracks_without_vector:
            warnings.append(
                f"{fitted.train_tracks_without_vector} of {fitted.n_train_tracks} train tracks have no vector "
                "in the embedding table; they are left out of user vectors and of the catalogue"
            )
        if users_without:
            warnings.append(f"{users_without} train users have no track with a vector and get empty lists")
        return {
            "name": self.name,
            "config": asdict(self.config),
            "n_train_users": len(fitted.seen.user_ids),
            "n_catalogue_tracks": fitted.seen.n_tracks,
            "train_tracks_without_vector": fitted.train_tracks_without_vector,
            "users_without_vector": users_without,
            "warnings": warnings,
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the fitted model to ``directory``; :meth:`load` reads it back (the index is rebuilt)."""
        from sonic.rouge.models.state import write_state

        fitted = self._require_fitted()
        arrays = {
            **fitted.seen.to_arrays(),
            "user_vectors": fitted.user_vectors,
            "has_vector": fitted.has_vector,
            "item_vectors": fitted.index.reconstruct_n(0, fitted.index.ntotal),
        }
        facts = {
            "train_tracks_without_vector": fitted.train_tracks_without_vector,
            "n_train_tracks": fitted.n_train_tracks,
        }
        return write_state(directory, self.name, self.config, facts=facts, arrays=arrays)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Self:
        import faiss

        from sonic.rouge.models.state import read_state

        saved = read_state(directory, cls.name)
        model = cls(**saved.config)
        items = np.ascontiguousarray(saved.arrays["item_vectors"], dtype=np.float32)
        index = faiss.IndexFlatIP(items.shape[1])
        index.add(items)
        model._fitted = _Fitted(
            seen=SeenTracks.from_arrays(saved.arrays),
            user_vectors=saved.arrays["user_vectors"],
            has_vector=saved.arrays["has_vector"],
            index=index,
            train_tracks_without_vector=int(saved.facts["train_tracks_without_vector"]),
            n_train_tracks=int(saved.facts["n_train_tracks"]),
        )
        return model

    def _require_fitted(self) -> _Fitted:
        if self._fitted is None:
            raise RuntimeError("knn recommender: call fit before recommend or describe")
        return self._fitted


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows stay zero. (n, dim) -> (n, dim)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
