"""EASE (Steck, WWW '19): the closed-form linear autoencoder, a collaborative ceiling.

With X the binary (users x tracks) train matrix and P = (X^T X + l2 * I)^-1, the item-item weights
are B = I - P diag(1 / diag(P)), so diag(B) = 0, and a user's scores are x_u B: every track scored by
the tracks the user has heard. The dense (tracks x tracks) inverse costs O(n^3) time and 8 n^2 bytes;
``max_tracks`` refuses catalogues beyond it (use ``elsa``).
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
from sonic.rouge.models.state import read_state, write_state
from sonic.tails.table import EmbeddingTable

_USERS_PER_BATCH = 512


@dataclass(frozen=True)
class EASEConfig:
    """``l2``: the ridge penalty on B (larger: smoother). ``max_tracks``: the largest catalogue accepted.
    ``min_listeners``: only train tracks with at least this many listeners form the catalogue (1: all);
    rarer tracks are neither scored nor read from a user's history."""

    l2: float = 500.0
    max_tracks: int = 20_000
    min_listeners: int = 1

    def __post_init__(self) -> None:
        if not float(self.l2) > 0:
            raise SonicError(f"ease l2 must be positive, got {self.l2!r}")
        if isinstance(self.min_listeners, bool) or not isinstance(self.min_listeners, int) or self.min_listeners < 1:
            raise SonicError(f"ease min_listeners must be a positive integer, got {self.min_listeners!r}")
        if int(self.max_tracks) < 1:
            raise SonicError(f"ease max_tracks must be a positive integer, got {self.max_tracks!r}")


class EASERecommender:
    """Scores x_u B over the train catalogue; ``history`` rows join x_u at prediction time."""

    name = "ease"
    content = False
    cold_start = False  # a track with no train events has no row in its item-item model
    curve = None

    def __init__(self, **options: Any) -> None:
        self.config = make_config(EASEConfig, options, self.name)
        self._seen: SeenTracks | None = None
        self._weights: np.ndarray | None = None  # (n_tracks, n_tracks) float32, zero diagonal

    def fit(
        self,
        train: pd.DataFrame,
        *,
        validation: pd.DataFrame | None = None,
        item_embeddings: EmbeddingTable | None = None,
        device: str = "auto",
        seed: int = 0,
    ) -> Self:
        """Solve for B on the train pairs; the other inputs are unused (the solution is exact)."""
        from scipy import sparse

        seen = SeenTracks.from_train(train)
        if self.config.min_listeners > 1:
            listeners = np.bincount(seen.seen_keys % max(seen.n_tracks, 1), minlength=seen.n_tracks)
            kept = seen.track_ids[listeners >= self.config.min_listeners]
            if len(kept) == 0:
                raise SonicError(f"no train track has {self.config.min_listeners} listeners; lower ease min_listeners")
            seen = SeenTracks.from_train(train, track_ids=kept)
        if seen.n_tracks > self.config.max_tracks:
            raise SonicError(
                f"ease needs a dense {seen.n_tracks} x {seen.n_tracks} matrix, above max_tracks "
                f"{self.config.max_tracks}; use elsa, or raise max_tracks if memory allows"
            )
        users, tracks = np.divmod(seen.seen_keys, seen.n_tracks)
        matrix = sparse.csr_matrix(
            (np.ones(len(users), np.float64), (users, tracks)), shape=(len(seen.user_ids), seen.n_tracks)
        )
        gram = (matrix.T @ matrix).toarray()
        gram[np.diag_indices_from(gram)] += float(self.config.l2)
        precision = _symmetric_inverse(gram)  # in place: one n x n float64 matrix in memory
        diagonal = np.diag(precision).copy()
        precision /= -diagonal[None, :]
        precision[np.diag_indices_from(precision)] = 0.0
        self._weights = precision.astype(np.float32)
        self._seen = seen
        return self

    def recommend(
        self, users: Sequence[str], k: int, *, exclude_seen: bool = True, history: pd.DataFrame | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``ids`` (n, k) object and ``scores`` (n, k) float32; see :class:`sonic.rouge.base.Recommender`."""
        seen, weights = self._fitted()
        seen = seen.extended(history)
        k, rows = check_k(k), seen.user_rows(users)
        ids, scores = empty_lists(len(rows), k)
        for start in range(0, len(rows), _USERS_PER_BATCH):
            batch = rows[start : start + _USERS_PER_BATCH]
            block = seen.seen_mask(batch).astype(np.float32) @ weights  # (b, n_tracks)
            ids[start : start + len(batch)], scores[start : start + len(batch)] = top_k_unseen(
                block, batch, seen, k, exclude_seen=exclude_seen
            )
        return ids, scores

    def describe(self) -> dict[str, Any]:
        seen, _ = self._fitted()
        return {
            "name": self.name,
            "config": asdict(self.config),
            "n_train_users": len(seen.user_ids),
            "n_catalogue_tracks": seen.n_tracks,
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the fitted model to ``directory``; :meth:`load` reads it back."""
        seen, weights = self._fitted()
        return write_state(directory, self.name, self.config, arrays={**seen.to_arrays(), "weights": weights})

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Self:
        saved = read_state(directory, cls.name)
        model = cls(**saved.config)
        model._seen, model._weights = SeenTracks.from_arrays(saved.arrays), saved.arrays["weights"]
        return model

    def _fitted(self) -> tuple[SeenTracks, np.ndarray]:
        if self._seen is None or self._weights is None:
            raise RuntimeError("ease recommender: call fit before recommend, describe or save")
        return self._seen, self._weights


def _symmetric_inverse(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite float64 ``matrix`` (n, n), computed in its place
    (LAPACK Cholesky ``potrf`` then ``potri``: half the work of a general inverse, no second n x n array).

    The factorisation runs on one BLAS thread (:func:`_one_blas_thread`): OpenBLAS 0.3.31's
    multithreaded ``dpotrf`` in its SkylakeX kernels (AVX-512 CPUs) crashes the process with a
    segmentation fault from about 16,000 x 16,000 (REFERENCE section 12). ``potri`` keeps every thread.
    """
    from scipy.linalg import lapack

    # A C-ordered symmetric matrix is its own transpose, a Fortran-ordered view LAPACK can overwrite.
    matrix = matrix.T if matrix.flags.c_contiguous else matrix
    with _one_blas_thread():
        factor, info = lapack.dpotrf(matrix, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise SonicError(f"ease: X^T X + l2 I is not positive definite (LAPACK info {info}); raise l2")
    inverse, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise SonicError(f"ease: the inverse failed (LAPACK info {info}); raise l2")
    block = 1024  # potri fills the upper triangle: mirror it down, a block of rows at a time
    for start in range(0, len(inverse), block):
        stop = min(start + block, len(inverse))
        inverse[start:stop, :start] = inverse[:start, start:stop].T
        part = inverse[start:stop, start:stop]
        part[np.tril_indices(stop - start, -1)] = part.T[np.tril_indices(stop - start, -1)]
    return inverse


def _one_blas_thread():
    """A context in which every BLAS library loaded in this process uses one thread."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
