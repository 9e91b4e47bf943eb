"""Content KNN (REFERENCE section 4): a user is the (weighted) mean of their train tracks' vectors.

Score(user, track) = cosine(user vector, the track's embedding), where the user vector is
sum_i w_i e_i / sum_i w_i over the user's unique train tracks i with a vector. The weight w_i is
1 by default (the published model); ``count_weight`` makes it the play count c_i (``"count"``)
or 1 + ln c_i (``"log"``); ``recency_half_life_days`` multiplies it by 0.5 ** (a_i / h), a_i
the days between the user's last train event and their last event with track i.

Cold start: every track of the embedding table has a vector, played or not, so ``recommend(...,
candidates=ids)`` ranks any tracks of the table (a cold test's new tracks, say) by the same cosine;
the catalogue (``catalogue``) is what is ranked when no candidates are given.

Full ranking over the whole catalogue, blocks of users at a time: a dense (users, tracks)
float32 score block from one matrix product, seen tracks set to -inf, top k by partition
(``search="dense"``). For catalogues too large for such a block, an exact FAISS inner-product
index searches past each block's longest history instead (``search="faiss"``); ``"auto"``
picks dense when a block of ``batch_size`` users fits in ``max_block_mb``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd

from sonic.errors import DataError, SonicError
from sonic.rouge.shared import (
    SeenTracks,
    batches_by_history,
    check_k,
    check_train,
    empty_lists,
    first_k_kept,
    make_config,
    sorted_codes,
    unique_keys,
)
from sonic.tails.table import EmbeddingTable

_DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class KNNConfig:
    """``catalogue``: ``"train"`` recommends train tracks that have a vector; ``"all"`` every
    track of the embedding table (cold start). ``batch_size``: users per score block.
    ``count_weight``: ``"none"``, ``"count"`` or ``"log"`` (see the module). ``recency_half_life_days``:
    ``None`` (off) or a positive number of days. ``search``: ``"auto"``, ``"dense"`` or ``"faiss"``.
    ``max_block_mb``: the largest dense score block ``"auto"`` accepts. ``threads``: dense blocks
    scored at once (each holds a block in memory)."""

    catalogue: Literal["train", "all"] = "train"
    batch_size: int = 1024
    count_weight: Literal["none", "count", "log"] = "none"
    recency_half_life_days: float | None = None
    search: Literal["auto", "dense", "faiss"] = "auto"
    max_block_mb: int = 512
    threads: int = 2

    def __post_init__(self) -> None:
        choices = {"catalogue": ("train", "all"), "count_weight": ("none", "count", "log"),
                   "search": ("auto", "dense", "faiss")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise SonicError(f"knn {name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name in ("batch_size", "max_block_mb", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SonicError(f"knn {name} must be a positive integer, got {value!r}")
        half_life = self.recency_half_life_days
        if half_life is not None and (isinstance(half_life, bool) or not half_life > 0):
            raise SonicError(f"knn recency_half_life_days must be a positive number of days, got {half_life!r}")


@dataclass(frozen=True)
class _Fitted:
    seen: SeenTracks  # catalogue = the rows of item_vectors
    mean_operator: Any  # scipy CSR (n_users, n_tracks) float64: each user's weights, summing to 1
    raw_vectors: np.ndarray  # (n_tracks, dim) float64: the catalogue's table vectors
    item_vectors: np.ndarray  # (n_tracks, dim) float32, unit length or zero
    train_tracks_without_vector: int
    n_train_tracks: int
    other_ids: np.ndarray  # (m,) str sorted: the table's tracks outside the catalogue (cold-start candidates)
    other_vectors: np.ndarray  # (m, dim) their table vectors (float32 or float64)
    raw_is_float32: bool = False  # raw_vectors hold float32 values (a table's): saved as float32, losing nothing

    @property
    def has_vector(self) -> np.ndarray:
        return self.seen.seen_counts > 0

    def user_vectors(self, user_rows: np.ndarray) -> np.ndarray:
        """(b, dim) float32 unit user vectors (zero without a vector), computed for these users only."""
        return _unit_rows(self.mean_operator[user_rows] @ self.raw_vectors).astype(np.float32)


class KNNRecommender:
    """Cosine nearest tracks to the weighted mean vector of the user's train tracks.

    Train tracks without a vector are left out of user means and of the catalogue; how many is
    reported by :meth:`describe` (``train_tracks_without_vector``, and a ``warnings`` line).
    A user none of whose train tracks has a vector gets an empty (padded) list, also counted.
    The dense score blocks of :meth:`recommend` (``threads`` of them) are kept for its next call.
    """

    name = "knn"
    content = True
    cold_start = True
    curve = None

    def __init__(self, **options: Any) -> None:
        self.config = make_config(KNNConfig, options, self.name)
        self._fitted: _Fitted | None = None
        self._index: Any = None
        self._blocks: _Blocks | None = None
        self._candidates: tuple[np.ndarray, _Fitted] | None = None

    def fit(
        self,
        train: pd.DataFrame,
        *,
        validation: pd.DataFrame | None = None,
        item_embeddings: EmbeddingTable | None = None,
        device: str = "auto",
        seed: int = 0,
    ) -> Self:
        """Build user vectors; ``validation``, ``device`` and ``seed`` are unused (no training, deterministic)."""
        from scipy import sparse

        if item_embeddings is None:
            raise SonicError("knn needs --embedding: a table of track vectors to average into user vectors")
        check_train(train)
        track_codes, train_tracks = sorted_codes(train["track_id"].astype(str))
        table_rows, found = item_embeddings.lookup(train_tracks.astype(str))
        if not found.any():
            raise DataError(
                f"none of the {len(train_tracks)} train tracks (e.g. '{train_tracks[0]}') has a vector in the "
                "embedding table; does the table embed the tracks of this split?"
            )
        if self.config.catalogue == "train":
            catalogue_ids, catalogue_rows = train_tracks[found], table_rows[found]
            code_to_row = np.where(found, np.cumsum(found) - 1, -1)
        else:
            order = np.argsort(item_embeddings.track_ids)
            catalogue_ids, catalogue_rows = np.asarray(item_embeddings.track_ids[order], dtype=object), order
            code_to_row = np.where(found, np.argsort(order)[np.maximum(table_rows, 0)], -1)
        pairs = _user_track_pairs(train, code_to_row[track_codes], len(catalogue_ids), self.config)
        n_users, n_tracks = len(pairs.user_ids), len(catalogue_ids)
        user_rows, track_rows = np.divmod(pairs.keys, max(n_tracks, 1))
        counts = np.bincount(user_rows, minlength=n_users).astype(np.int64)
        seen = SeenTracks(pairs.user_ids, catalogue_ids, pairs.keys, counts)
        totals = np.bincount(user_rows, weights=pairs.weights, minlength=n_users)
        weights = np.divide(pairs.weights, totals[user_rows], out=np.zeros(len(pairs.weights)),
                            where=totals[user_rows] > 0)  # each user's weights sum to 1: a weighted mean
        # the pairs are sorted by (user, track): the CSR arrays directly, as csr_matrix((w, (u, t))) would sort them
        index_type = np.int32 if max(len(weights), n_users, n_tracks) < 2**31 else np.int64
        row_starts = np.zeros(n_users + 1, index_type)
        np.cumsum(counts, out=row_starts[1:])
        vectors = item_embeddings.vectors[catalogue_rows].astype(np.float64)  # (n_tracks, dim)
        outside = np.ones(len(item_embeddings.track_ids), dtype=bool)
        outside[catalogue_rows] = False
        others = np.flatnonzero(outside)
        others = others[np.argsort(item_embeddings.track_ids[others])]
        self._fitted = _Fitted(
            seen=seen,
            mean_operator=sparse.csr_matrix((weights, track_rows.astype(index_type), row_starts),
                                            shape=(n_users, n_tracks)),
            raw_vectors=vectors,
            item_vectors=_unit_rows_float32(vectors),
            train_tracks_without_vector=int((~found).sum()),
            n_train_tracks=len(train_tracks),
            other_ids=np.asarray(item_embeddings.track_ids[others]).astype(str),
            other_vectors=item_embeddings.vectors[others],
            raw_is_float32=item_embeddings.vectors.dtype == np.float32,
        )
        self._index = self._candidates = None
        self._blocks = None
        return self

    def recommend(
        self,
        users: Sequence[str],
        k: int,
        *,
        exclude_seen: bool = True,
        history: pd.DataFrame | None = None,
        candidates: Sequence[str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``ids`` (n, k) object and ``scores`` (n, k) float32 cosines; see :class:`sonic.rouge.base.Recommender`.

        ``history`` widens the exclusion only: user vectors stay the means of train tracks. ``candidates``:
        the track ids to rank (any track of the table, played or not; one without a vector is left out);
        None ranks the catalogue.
        """
        fitted = self._require_fitted()
        index = self._index
        scoring = fitted if candidates is None else self._among(candidates)
        if scoring is not fitted:
            index = None
        seen = scoring.seen.extended(history)
        k, rows = check_k(k), seen.user_rows(users)
        ids, scores = empty_lists(len(rows), k)
        if seen.n_tracks == 0:
            return ids, scores
        dense = self._uses_dense(seen.n_tracks)
        with_vector = np.flatnonzero(fitted.has_vector[rows])  # the others keep their empty lists
        batches = [with_vector[b] for b in batches_by_history(seen.seen_counts[rows[with_vector]],
                                                              self.config.batch_size)]

        if dense and (self._blocks is None or self._blocks.shape[1] != seen.n_tracks):
            self._blocks = _Blocks((self.config.batch_size, seen.n_tracks))
        if not dense and index is None:
            index = _faiss_index(scoring.item_vectors)
            if scoring is fitted:
                self._index = index

        def top(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            if dense:
                with self._blocks.lend(len(batch)) as (block, mask):
                    track_rows, similarities, keep = _dense_top(scoring, seen, rows[batch], k, exclude_seen,
                                                                block, mask)
            else:
                track_rows, similarities, keep = _faiss_top(index, scoring, seen, rows[batch], k, exclude_seen)
            return first_k_kept(track_rows, similarities, keep, k, seen.track_ids)

        if dense and self.config.threads > 1 and len(batches) > 1:
            # numpy and BLAS release the GIL: one block's selection overlaps the next block's product
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.config.threads) as pool:
                for batch, (batch_ids, batch_scores) in zip(batches, pool.map(top, batches)):
                    ids[batch], scores[batch] = batch_ids, batch_scores
        else:
            for batch in batches:
                ids[batch], scores[batch] = top(batch)
        return ids, scores

    def _uses_dense(self, n_tracks: int | None = None) -> bool:
        if self.config.search != "auto":
            return self.config.search == "dense"
        n_tracks = self._require_fitted().seen.n_tracks if n_tracks is None else n_tracks
        return self.config.batch_size * n_tracks * 4 <= self.config.max_block_mb * 2**20

    def _among(self, candidates: Sequence[str]) -> _Fitted:
        """The fitted model with ``candidates`` (those with a vector, in their order) as its catalogue."""
        from sonic.rouge.models.content import candidate_items

        fitted = self._require_fitted()
        candidates = np.asarray(candidates, dtype=object)
        cached = self._candidates
        if cached is not None and len(cached[0]) == len(candidates) and np.array_equal(cached[0], candidates):
            return cached[1]
        chosen = candidate_items(fitted.seen.track_ids, fitted.item_vectors, fitted.other_ids,
                                 _unit_rows(np.asarray(fitted.other_vectors, np.float64)).astype(np.float32),
                                 np.asarray(candidates, dtype=object))
        scoring = dataclasses.replace(fitted, seen=fitted.seen.among(chosen.track_ids), item_vectors=chosen.vectors)
        self._candidates = (candidates, scoring)  # run_model asks for one candidate set chunk after chunk
        return scoring

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
            "search": "dense" if self._uses_dense() else "faiss",
            "n_train_users": len(fitted.seen.user_ids),
            "n_catalogue_tracks": fitted.seen.n_tracks,
            "n_other_tracks_with_vector": len(fitted.other_ids),
            "train_tracks_without_vector": fitted.train_tracks_without_vector,
            "users_without_vector": users_without,
            "warnings": warnings,
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the fitted model to ``directory`` (:mod:`sonic.rouge.models.state`: JSON and a pickle-free npz)."""
        from sonic.rouge.models.state import write_state

        fitted = self._require_fitted()
        operator = fitted.mean_operator
        raw = fitted.raw_vectors
        narrow = raw.astype(np.float32)  # the table's float32 values: half the file, read back exactly
        if not (fitted.raw_is_float32 or np.array_equal(narrow, raw)):
            narrow = raw
        arrays = {**fitted.seen.to_arrays(), "weights": operator.data, "weight_columns": operator.indices,
                  "weight_rows": operator.indptr, "raw_vectors": narrow, "other_ids": fitted.other_ids.astype(str),
                  "other_vectors": fitted.other_vectors}
        facts = {"train_tracks_without_vector": fitted.train_tracks_without_vector,
                 "n_train_tracks": fitted.n_train_tracks}
        return write_state(directory, self.name, self.config, facts=facts, arrays=arrays)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Self:
        """A fitted model from :meth:`save`'s folder; a missing or foreign folder is a :class:`DataError`."""
        from scipy import sparse

        from sonic.rouge.models.state import read_state

        saved = read_state(directory, cls.name)
        model = cls(**saved.config)
        seen = SeenTracks.from_arrays(saved.arrays)
        shape = (len(seen.user_ids), len(seen.track_ids))
        operator = sparse.csr_matrix(
            (saved.arrays["weights"], saved.arrays["weight_columns"], saved.arrays["weight_rows"]), shape=shape
        )
        narrow = saved.arrays["raw_vectors"]
        raw = narrow.astype(np.float64)  # saved as float32 when that loses nothing
        dim = raw.shape[1]
        other_ids = np.asarray(saved.arrays.get("other_ids", np.zeros(0, str))).astype(str)  # older saves have none
        other_vectors = np.asarray(saved.arrays.get("other_vectors", np.zeros((0, dim), np.float32)))
        model._fitted = _Fitted(seen, operator, raw, _unit_rows_float32(raw),
                                int(saved.facts["train_tracks_without_vector"]), int(saved.facts["n_train_tracks"]),
                                other_ids, other_vectors, raw_is_float32=narrow.dtype == np.float32)
        return model

    def _require_fitted(self) -> _Fitted:
        if self._fitted is None:
            raise RuntimeError("knn recommender: call fit before recommend or describe")
        return self._fitted


def _faiss_index(item_vectors: np.ndarray) -> Any:
    """An exact inner-product FAISS index of ``item_vectors`` (n, dim) float32."""
    import faiss

    index = faiss.IndexFlatIP(item_vectors.shape[1])
    index.add(item_vectors)
    return index


def _faiss_top(index: Any, fitted: _Fitted, seen: SeenTracks, user_rows: np.ndarray, k: int, exclude_seen: bool):
    """Top candidates of ``user_rows`` by ``index`` (over ``fitted.item_vectors``): (track_rows, scores, keep)."""
    # Search past the batch's longest history so k unseen tracks remain when possible.
    extra = int(seen.seen_counts[user_rows].max()) if exclude_seen else 0
    width = min(seen.n_tracks, k + extra)
    similarities, found = index.search(fitted.user_vectors(user_rows), width)  # (b, width) each
    keep = found >= 0
    track_rows = np.where(keep, found, 0)
    if exclude_seen:
        keep &= ~seen.is_seen(user_rows, track_rows)
    return track_rows, similarities, keep


def _dense_top(fitted: _Fitted, seen: SeenTracks, user_rows: np.ndarray, k: int, exclude_seen: bool,
               block: np.ndarray, mask: np.ndarray):
    """Top ``min(k, n_tracks)`` of a dense score block: (track_rows, scores, keep), each (b, width), best first.

    ``block`` (b, n_tracks) float32 and ``mask`` (b, n_tracks) bool: room for the scores and the candidates.

    A threshold no higher than each row's width-th best score is the width-th best of an evenly
    strided sample of the row's columns (``np.partition`` on a small copy, no index array); every
    score at or above it is a candidate (about width * n_tracks / sample of them, always the true
    top width among them), and the candidates are sorted, best first, ties by catalogue row.
    """
    n_tracks = seen.n_tracks
    scores = np.matmul(fitted.user_vectors(user_rows), fitted.item_vectors.T, out=block)  # (b, n_tracks) float32
    if exclude_seen:
        scores[_seen_positions(seen, user_rows)] = -np.inf
    width = min(k, n_tracks)
    step = max(1, n_tracks // max(16 * width, n_tracks // 8))  # sample >= 16 width columns and >= 1/8 of them
    sample = scores[:, ::step]
    threshold = np.partition(sample, sample.shape[1] - width, axis=1)[:, sample.shape[1] - width]  # (b,)
    # every row's top width, and more; flatnonzero is about 10x faster than a 2-d nonzero
    flat = np.flatnonzero(np.greater_equal(scores, threshold[:, None], out=mask))
    values = scores.reshape(-1)[flat]
    rows, columns = np.divmod(flat, n_tracks)
    # flatnonzero lists candidates by (row, column): one stable sort on row + (1 - score) in [0, 3] orders them
    # by row, then best score, then column. float64 keeps float32 scores apart (row < 2**20).
    if len(user_rows) < 2**20:
        order = np.argsort(rows * 4.0 + (1.0 - np.maximum(values.astype(np.float64), -2.0)), kind="stable")
    else:
        order = np.lexsort((columns, -values, rows))
    rows, columns, values = rows[order], columns[order], values[order]
    starts = np.searchsorted(rows, np.arange(len(user_rows)))
    rank = np.arange(len(rows)) - starts[rows]
    kept = rank < width
    top = np.zeros((len(user_rows), width), dtype=np.int64)
    top_scores = np.full((len(user_rows), width), -np.inf, dtype=np.float32)
    top[rows[kept], rank[kept]] = columns[kept]
    top_scores[rows[kept], rank[kept]] = values[kept]
    return top, top_scores, np.isfinite(top_scores)


class _Blocks:
    """Dense score blocks (float32) and candidate masks (bool) of ``shape``, lent to one batch at a time and
    kept for the next: a fresh 200 MB block per batch pays its page faults (zeroed by the kernel) every time."""

    def __init__(self, shape: tuple[int, int]) -> None:
        import queue

        self.shape = shape
        self._free: queue.SimpleQueue = queue.SimpleQueue()

    @contextmanager
    def lend(self, n_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The first ``n_rows`` rows of a free block and mask (made when none is free), returned afterwards."""
        import queue

        try:
            block, mask = self._free.get_nowait()
        except queue.Empty:
            block, mask = np.empty(self.shape, np.float32), np.empty(self.shape, bool)
        if n_rows > len(block):
            block, mask = np.empty((n_rows, self.shape[1]), np.float32), np.empty((n_rows, self.shape[1]), bool)
        try:
            yield block[:n_rows], mask[:n_rows]
        finally:
            self._free.put((block, mask))


def _seen_positions(seen: SeenTracks, user_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(batch row, catalogue row) of every seen pair of ``user_rows`` (b,)."""
    stride = max(seen.n_tracks, 1)
    starts = np.searchsorted(seen.seen_keys, user_rows * stride)
    ends = np.searchsorted(seen.seen_keys, (user_rows + 1) * stride)
    lengths = ends - starts
    batch_rows = np.repeat(np.arange(len(user_rows)), lengths)
    key_index = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    return batch_rows, seen.seen_keys[key_index] % stride


@dataclass(frozen=True)
class _Pairs:
    user_ids: np.ndarray  # (n_users,) str sorted: every train user
    keys: np.ndarray  # (n_pairs,) sorted int64 user_row * n_tracks + track_row, catalogue tracks only
    weights: np.ndarray  # (n_pairs,) float64


def _user_track_pairs(train: pd.DataFrame, track_rows: np.ndarray, n_tracks: int, config: KNNConfig) -> _Pairs:
    """Unique (user, catalogue track) pairs of ``train`` with their weights, by sorting (no hashing).

    Equal weights need only the distinct pairs (:func:`unique_keys`); play counts and recency need
    each pair's rows, grouped by one stable argsort of the pair keys.
    """
    user_codes, user_ids = sorted_codes(train["user_id"].astype(str))
    in_catalogue = track_rows >= 0
    if config.count_weight == "none" and config.recency_half_life_days is None:
        unique = unique_keys(user_codes[in_catalogue], track_rows[in_catalogue], len(user_ids), n_tracks)
        return _Pairs(np.asarray(user_ids, dtype=object), unique, np.ones(len(unique)))
    keys = user_codes[in_catalogue].astype(np.int64) * max(n_tracks, 1) + track_rows[in_catalogue]
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, np.int64)
    pair_keys = keys[starts]
    weights = np.ones(len(pair_keys))
    if config.count_weight != "none":
        if "count" in train.columns:
            plays = train["count"].to_numpy(np.float64)[in_catalogue][order]
        else:
            plays = np.ones(len(keys))
        totals = np.add.reduceat(plays, starts) if len(keys) else plays
        weights = totals if config.count_weight == "count" else 1.0 + np.log(np.maximum(totals, 1.0))
    if config.recency_half_life_days is not None:
        if "timestamp" not in train.columns:
            raise DataError("knn recency_half_life_days needs a 'timestamp' column in the train events")
        times = train["timestamp"].to_numpy("datetime64[ns]")[in_catalogue][order]
        last = np.maximum.reduceat(times.view(np.int64), starts).view("datetime64[ns]")
        pair_users = pair_keys // max(n_tracks, 1)
        user_last = np.full(len(user_ids), np.iinfo(np.int64).min)
        np.maximum.at(user_last, pair_users, last.view(np.int64))
        age_days = (user_last[pair_users].view("datetime64[ns]") - last) / _DAY
        weights = weights * 0.5 ** (age_days / config.recency_half_life_days)
    return _Pairs(np.asarray(user_ids, dtype=object), pair_keys, weights)


def _unit_rows_float32(vectors: np.ndarray, *, block: int = 4096) -> np.ndarray:
    """``_unit_rows(vectors).astype(np.float32)``, ``block`` rows at a time: the same values without
    full-size float64 temporaries."""
    unit = np.empty(vectors.shape, np.float32)
    for start in range(0, len(vectors), block):
        unit[start : start + block] = _unit_rows(vectors[start : start + block])
    return unit


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows stay zero. (n, dim) -> (n, dim)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
