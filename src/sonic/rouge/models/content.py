"""The items of a content model: the train tracks that have a vector (its catalogue), the other tracks of the
table (the cold-start candidates: no train events, a vector all the same), and a slice's candidate set.

A content model scores a track from its vector alone, so it can rank a track nobody has played: an unseen
track goes through the same learned map as a seen one. :func:`content_items` keeps both groups, standardised
with the catalogue's statistics; :func:`candidate_items` picks a slice's candidates among them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sonic.errors import DataError
from sonic.rouge.shared import SeenTracks, rows_in
from sonic.tails.table import EmbeddingTable


@dataclass(frozen=True)
class ContentItems:
    """``seen``: train users over the catalogue (the train tracks with a vector, sorted); ``vectors`` (n, d)
    float32 their vectors; ``other_ids`` (m,) str sorted, the table's tracks outside the catalogue, and
    ``other_vectors`` (m, d) float32 theirs, standardised with the catalogue's mean and spread."""

    seen: SeenTracks
    vectors: np.ndarray
    other_ids: np.ndarray
    other_vectors: np.ndarray


@dataclass(frozen=True)
class Candidates:
    """A slice's candidates a content model can score: ``track_ids`` (c,) object in the order asked,
    ``vectors`` (c, d) float32, ``catalogue_rows`` (c,) int64 (-1: a track outside the train catalogue)."""

    track_ids: np.ndarray
    vectors: np.ndarray
    catalogue_rows: np.ndarray


def content_items(train: pd.DataFrame, table: EmbeddingTable, *, standardise: bool = True) -> ContentItems:
    """The catalogue and the other tracks of ``table`` (see :class:`ContentItems`).

    With ``standardise`` every dimension is scaled to zero mean and unit variance over the catalogue
    (MFCC dimensions differ by orders of magnitude; a network's first layer should not have to learn
    that), and the other tracks by the same numbers. A table holding none of the train tracks is a
    :class:`DataError`.
    """
    train_tracks = np.sort(train["track_id"].astype(str).unique())
    rows, found = table.lookup(train_tracks)
    if not found.any():
        raise DataError(
            f"none of the {len(train_tracks)} train tracks (e.g. '{train_tracks[0]}') has a vector in the "
            "embedding table; does the table embed the tracks of this split?"
        )
    vectors = table.vectors[rows[found]].astype(np.float64)
    in_catalogue = np.zeros(len(table.track_ids), dtype=bool)
    in_catalogue[rows[found]] = True
    order = np.argsort(table.track_ids.astype(str))
    others = order[~in_catalogue[order]]
    other_vectors = table.vectors[others].astype(np.float64)
    if standardise:
        centre, spread = vectors.mean(axis=0), vectors.std(axis=0)
        spread = np.where(spread > 0, spread, 1.0)
        vectors, other_vectors = (vectors - centre) / spread, (other_vectors - centre) / spread
    seen = SeenTracks.from_train(train, track_ids=np.asarray(train_tracks[found], dtype=object))
    return ContentItems(seen, vectors.astype(np.float32), np.asarray(table.track_ids[others], dtype=object).astype(str),
                        other_vectors.astype(np.float32))


def content_catalogue(
    train: pd.DataFrame, table: EmbeddingTable, *, standardise: bool = True
) -> tuple[SeenTracks, np.ndarray]:
    """(seen tracks over the train tracks with a vector, sorted; their vectors (n, d) float32): the
    catalogue part of :func:`content_items`."""
    items = content_items(train, table, standardise=standardise)
    return items.seen, items.vectors


def candidate_items(
    catalogue_ids: np.ndarray, catalogue_vectors: np.ndarray, other_ids: np.ndarray, other_vectors: np.ndarray,
    candidates: np.ndarray,
) -> Candidates:
    """The ``candidates`` (ids) that have a vector, in their order, with their vectors and catalogue rows.

    A candidate in the catalogue (``catalogue_ids`` (n,), ``catalogue_vectors`` (n, d)) takes its
    catalogue vector, one outside it its vector among ``other_ids`` (m,) / ``other_vectors`` (m, d); a
    candidate in neither has no vector and is left out.
    """
    candidates = pd.unique(np.asarray(candidates, dtype=object).astype(str))
    rows = rows_in(np.asarray(catalogue_ids, dtype=object), candidates)
    others = rows_in(np.asarray(other_ids, dtype=object), candidates)
    keep = (rows >= 0) | (others >= 0)
    rows, others = rows[keep], others[keep]
    dim = catalogue_vectors.shape[1]
    vectors = np.zeros((len(rows), dim), dtype=np.float32)
    vectors[rows >= 0] = catalogue_vectors[rows[rows >= 0]]
    if len(other_vectors):
        vectors[rows < 0] = other_vectors[others[rows < 0]]
    return Candidates(np.asarray(candidates[keep], dtype=object), vectors, rows.astype(np.int64))
