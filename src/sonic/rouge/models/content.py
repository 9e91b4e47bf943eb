"""The catalogue of a content model: the train tracks that have a vector, and those vectors."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sonic.errors import DataError
from sonic.rouge.shared import SeenTracks
from sonic.tails.table import EmbeddingTable


def content_catalogue(
    train: pd.DataFrame, table: EmbeddingTable, *, standardise: bool = True
) -> tuple[SeenTracks, np.ndarray]:
    """(seen tracks over the train tracks with a vector, sorted; their vectors (n, d) float32).

    With ``standardise`` every dimension is scaled to zero mean and unit variance over the catalogue
    (MFCC dimensions differ by orders of magnitude; a network's first layer should not have to learn
    that). A table holding none of the train tracks is a :class:`DataError`.
    """
    train_tracks = np.sort(train["track_id"].astype(str).unique())
    rows, found = table.lookup(train_tracks)
    if not found.any():
        raise DataError(
            f"none of the {len(train_tracks)} train tracks (e.g. '{train_tracks[0]}') has a vector in the "
            "embedding table; does the table embed the tracks of this split?"
        )
    vectors = table.vectors[rows[found]].astype(np.float64)
    if standardise:
        spread = vectors.std(axis=0)
        vectors = (vectors - vectors.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    seen = SeenTracks.from_train(train, track_ids=np.asarray(train_tracks[found], dtype=object))
    return seen, vectors.astype(np.float32)
