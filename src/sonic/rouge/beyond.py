"""Beyond-accuracy metrics: coverage, novelty, popularity, long tail, intra-list diversity.

Pure functions over arrays, one row per user, like :mod:`sonic.rouge.metrics`:

- ``rows`` (n_users, width) int64: the catalogue row of the track at each list position, best
  first, ``-1`` for padding (a list shorter than ``width``).
- ``popularity`` (n_catalogue,) int: the number of distinct **train users** who listened to the
  track (0 for a track absent from train). With the compressed splits of the Tamm protocols (one
  row per user and track) this is the track's number of train rows.

Each per-user function takes ``k`` (default: ``width``) and scores the first ``k`` positions;
a user whose cut list is empty gets NaN (the mean over users leaves them out).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BEYOND_NAMES = ("Coverage", "Novelty", "ARP", "LongTailShare", "ILD")

#: The head is this fraction of the train tracks, by popularity; the rest is the long tail.
HEAD_FRACTION = 0.2


def coverage(rows: np.ndarray, n_catalogue: int, *, k: int | None = None) -> float:
    """Catalogue coverage@k = |distinct tracks in the first k positions of all lists| / n_catalogue.

    ``rows`` (n_users, width) int64 with ``-1`` padding; a row outside ``[0, n_catalogue)`` is not
    counted. NaN for an empty catalogue.
    """
    rows = _prefix(rows, k)
    if n_catalogue <= 0:
        return float("nan")
    listed = np.zeros(n_catalogue, dtype=bool)
    listed[rows[(rows >= 0) & (rows < n_catalogue)]] = True  # a mask, not np.unique's sort or hash
    return float(np.count_nonzero(listed) / n_catalogue)


def novelty(rows: np.ndarray, popularity: np.ndarray, n_train_users: int, *, k: int | None = None) -> np.ndarray:
    """Novelty@k = mean over the user's first k tracks of the self-information -log2 p(i).

    p(i) = (popularity(i) + 1) / (n_train_users + 1): the share of train users who listened to
    the track, with one pseudo-user so that a track absent from train has finite novelty
    log2(n_train_users + 1). (n_users, width) -> (n_users,) float64 bits.
    """
    popularity = np.asarray(popularity, dtype=np.float64)
    information = np.log2(n_train_users + 1.0) - np.log2(popularity + 1.0)
    return _list_mean(rows, information, k)


def average_popularity(rows: np.ndarray, popularity: np.ndarray, *, k: int | None = None) -> np.ndarray:
    """ARP@k (average recommendation popularity) = mean popularity(i) over the user's first k tracks.

    (n_users, width) -> (n_users,) float64, in train users per track.
    """
    return _list_mean(rows, np.asarray(popularity, dtype=np.float64), k)


def tail_mask(popularity: np.ndarray, *, head_fraction: float = HEAD_FRACTION) -> np.ndarray:
    """Which catalogue tracks are in the long tail: (n_catalogue,) bool.

    The head is the ``ceil(head_fraction * m)`` most popular of the m tracks with train listeners,
    plus any track as popular as the least popular of them (ties are not split arbitrarily). Every
    other track, tracks without train listeners included, is the tail.
    """
    if not 0.0 <= head_fraction <= 1.0:
        raise ValueError(f"head_fraction must lie in [0, 1], got {head_fraction}")
    popularity = np.asarray(popularity)
    listened = popularity[popularity > 0]
    n_head = int(np.ceil(head_fraction * len(listened)))
    if n_head == 0:
        return np.ones(len(popularity), dtype=bool)
    threshold = np.sort(listened)[::-1][n_head - 1]
    return ~((popularity >= threshold) & (popularity > 0))


def long_tail_share(rows: np.ndarray, is_tail: np.ndarray, *, k: int | None = None) -> np.ndarray:
    """LongTailShare@k = (tail tracks among the user's first k) / (tracks in the cut list).

    ``is_tail`` (n_catalogue,) bool from :func:`tail_mask`. (n_users, width) -> (n_users,) float64.
    """
    return _list_mean(rows, np.asarray(is_tail, dtype=np.float64), k)


def intra_list_diversity(
    vectors: np.ndarray, valid: np.ndarray, *, k: int | None = None, unit: bool = False
) -> np.ndarray:
    """ILD@k = mean cosine distance 1 - cos(v_i, v_j) over the pairs i < j of the user's first k tracks.

    ``vectors`` (n_users, width, dim) float, ``valid`` (n_users, width) bool (a position with a
    track that has a vector). Only valid positions count; a user with fewer than two gets NaN.
    Computed without forming the pairs: for m unit vectors, sum_{i<j} cos = (|sum v|^2 - m) / 2.
    Zero vectors have no direction and count as invalid. ``unit``: the caller promises every
    vector is unit length or zero (normalisation skipped; float32 input stays float32).
    -> (n_users,) float64.
    """
    valid = _prefix(np.asarray(valid, dtype=bool), k)
    vectors = np.asarray(vectors)[:, : valid.shape[1]]
    if not np.issubdtype(vectors.dtype, np.floating):
        vectors = vectors.astype(np.float64)
    norms_squared = np.einsum("uwd,uwd->uw", vectors, vectors)
    valid = valid & (norms_squared > 0)
    if unit:
        unit_vectors = np.where(valid[..., None], vectors, 0)
    else:
        norms = np.sqrt(norms_squared)[..., None]
        unit_vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=valid[..., None])
    m = valid.sum(axis=1).astype(np.float64)
    summed = unit_vectors.sum(axis=1, dtype=np.float64)  # (n_users, dim)
    pair_cosines = (np.einsum("ud,ud->u", summed, summed) - m) / 2.0
    n_pairs = m * (m - 1.0) / 2.0
    mean_cosine = np.divide(pair_cosines, n_pairs, out=np.full(len(m), np.nan), where=n_pairs > 0)
    return 1.0 - mean_cosine


def intra_list_diversity_of_rows(rows: np.ndarray, unit_vectors: np.ndarray, *, k: int | None = None) -> np.ndarray:
    """:func:`intra_list_diversity` of ``unit_vectors[rows]``: :func:`intra_list_diversities` at one k."""
    rows = np.asarray(rows)
    k = rows.shape[1] if k is None and rows.ndim == 2 else k
    return intra_list_diversities(rows, unit_vectors, [k], unit=True)[k]


def intra_list_diversities(
    rows: np.ndarray,
    vectors: np.ndarray,
    ks: Sequence[int],
    *,
    unit: bool = False,
    chunk_users: int = 32,
    threads: int = 1,
) -> dict[int, np.ndarray]:
    """ILD@k of ``vectors[rows]`` for every k in ``ks``, in one pass over the lists: ``{k: (n_users,) float64}``.

    ``rows`` (n_users, width) int64: rows of ``vectors`` (n, dim), ``-1`` for a position without a
    vector. Each gathered vector is divided by its L2 norm (in the table's precision, each row's
    norm computed once); a zero vector has no direction and counts as invalid. ``unit``: the caller
    promises unit-length or zero rows (no scaling). The identity of :func:`intra_list_diversity`
    on each user's sum of vectors, summed in float64 position range by position range (the sum at
    k=10 is on the way to k=50). ``chunk_users`` lists at a time are gathered into one reused
    buffer small enough to stay in cache while it is scaled and summed; ``threads`` workers take
    a share of the users each (numpy's gathers and sums release the GIL). No copy of the table is made.
    """
    rows = np.asarray(rows, dtype=np.int64)
    vectors = np.asarray(vectors)
    if not np.issubdtype(vectors.dtype, np.floating):
        vectors = vectors.astype(np.float64)
    ks = sorted(set(ks))
    for k in ks:
        _prefix(rows, k)  # checks the shape and the k
    width = ks[-1]
    rows = rows[:, :width]
    if unit:
        lengths = np.einsum("nd,nd->n", vectors, vectors)
    else:  # each row's norm, a block of rows at a time (no full-size temporary)
        lengths = np.empty(len(vectors), vectors.dtype)
        for start in range(0, len(vectors), 4096):
            lengths[start : start + 4096] = np.linalg.norm(vectors[start : start + 4096], axis=1)
    usable = np.isfinite(lengths) & (lengths > 0)
    safe = np.maximum(rows, 0)
    valid = (rows >= 0) & usable[safe] if len(vectors) else np.zeros(rows.shape, bool)
    scale = np.where(valid, lengths[safe], 1) if len(vectors) and not unit else None
    squared = {k: np.zeros(len(rows)) for k in ks}

    def add_users(share: slice) -> None:  # fills squared[k][share] for every k
        gathered = np.empty((chunk_users, width, vectors.shape[1]), vectors.dtype)
        for start in range(share.start, share.stop, chunk_users):
            chunk = slice(start, min(start + chunk_users, share.stop))
            block = gathered[: chunk.stop - chunk.start]
            np.take(vectors, safe[chunk], axis=0, out=block, mode="clip")  # rows are in range: clip skips a check
            if scale is not None:  # a plain division (a masked one is half as fast); invalid ones are zeroed next
                block /= scale[chunk][..., None]
            block[~valid[chunk]] = 0
            summed, done = np.zeros((len(block), vectors.shape[1])), 0
            for k in ks:
                summed += block[:, done:k].sum(axis=1, dtype=np.float64)
                squared[k][chunk] = np.einsum("ud,ud->u", summed, summed)
                done = k

    n_users = len(rows) if len(vectors) else 0
    bounds = np.linspace(0, n_users, max(1, min(threads, n_users // chunk_users)) + 1).astype(int)
    shares = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    if len(shares) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(shares)) as pool:
            list(pool.map(add_users, shares))
    else:
        for share in shares:
            add_users(share)
    diversities = {}
    for k in ks:
        m = valid[:, :k].sum(axis=1).astype(np.float64)
        pair_cosines = (squared[k] - m) / 2.0
        n_pairs = m * (m - 1.0) / 2.0
        mean_cosine = np.divide(pair_cosines, n_pairs, out=np.full(len(m), np.nan), where=n_pairs > 0)
        diversities[k] = 1.0 - mean_cosine
    return diversities


def _list_mean(rows: np.ndarray, per_track: np.ndarray, k: int | None) -> np.ndarray:
    """Mean of ``per_track[row]`` over each user's first k non-padding positions; NaN if none."""
    rows = _prefix(rows, k)
    shown = rows >= 0
    values = np.where(shown, per_track[np.where(shown, rows, 0)], 0.0)
    counts = shown.sum(axis=1)
    return np.divide(values.sum(axis=1), counts, out=np.full(len(rows), np.nan), where=counts > 0)


def _prefix(array: np.ndarray, k: int | None) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"per-position arrays must be (n_users, width), got shape {array.shape}")
    if k is None:
        return array
    if not 1 <= k <= array.shape[1]:
        raise ValueError(f"k must be between 1 and the array width {array.shape[1]}, got {k}")
    return array[:, :k]
