"""``metadata``: a track's audio features from Music4All's metadata, scaled, with optional genre/tag blocks.

The vector is ``[scaled features | genres block | tags block]``:

- features (``features``; default danceability, energy, valence, tempo, the published four; any
  numeric column by name): scaled with parameters fitted on the whole table (:meth:`MetadataEmbedder.fit`),
  ``zscore`` ``(x - mean) / std`` (population std; a constant column gives 0) or ``minmax``
  ``(x - min) / (max - min)`` (a constant column gives 0). A missing value is the fitted mean
  (0 after z-scoring) and is counted;
- genres and tags (``genres``, ``tags``): ``multi-hot`` (1 for each label the track has) or ``tfidf``
  (each label weighted by ``idf = ln((1 + n) / (1 + df)) + 1`` over the ``n`` tracks, the block scaled to
  unit length), over the labels on at least ``min_count`` tracks of the fitted table, sorted. A row's
  labels are a list or tuple, or one comma-separated string (as in ``id_genres.csv``).

The scaling parameters, the label vocabularies and the counts are in :meth:`MetadataEmbedder.describe`,
hence in the table's manifest. :func:`embed_metadata` fits and embeds a whole table in one call, joining
Music4All's genres and tags to its metadata by track id.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from sonic.errors import DataError, SonicError, UnknownNameError
from sonic.manifest import base_manifest
from sonic.tails.table import EmbeddingTable

#: The published features (REFERENCE.md §3).
DEFAULT_FEATURES = ("danceability", "energy", "valence", "tempo")
SCALINGS = ("zscore", "minmax")
LABEL_BLOCKS = ("none", "multi-hot", "tfidf")


@dataclass(frozen=True)
class MetadataOptions:
    """Options of :class:`MetadataEmbedder`; ``features`` may also be given as ``"a,b,c"``."""

    features: tuple[str, ...] = DEFAULT_FEATURES
    scaling: str = "zscore"
    genres: str = "none"
    tags: str = "none"
    min_count: int = 1

    def __post_init__(self) -> None:
        features = self.features.split(",") if isinstance(self.features, str) else self.features
        features = tuple(str(name).strip() for name in features if str(name).strip())
        if not features:
            raise SonicError("metadata features must name at least one column, e.g. danceability,energy")
        if len(set(features)) != len(features):
            raise SonicError(f"metadata features name a column twice: {', '.join(features)}")
        object.__setattr__(self, "features", features)
        if self.scaling not in SCALINGS:
            raise SonicError(f"unknown metadata scaling {self.scaling!r}; known: {', '.join(SCALINGS)}")
        for block in ("genres", "tags"):
            if getattr(self, block) not in LABEL_BLOCKS:
                raise SonicError(f"unknown {block} block {getattr(self, block)!r}; known: {', '.join(LABEL_BLOCKS)}")
        if not (isinstance(self.min_count, int) and self.min_count >= 1):
            raise SonicError(f"metadata min_count must be a positive integer, got {self.min_count!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> MetadataOptions:
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise SonicError(f"unknown metadata option {unknown[0]!r}; known: {', '.join(known)}")
        return cls(**options)


class MetadataEmbedder:
    """``metadata``: rows (mappings of column -> value) to scaled vectors; :meth:`fit` on the whole table first."""

    modality: ClassVar[str] = "tabular"
    runs_in_workers: ClassVar[bool] = False
    sample_rate: ClassVar[int] = 0

    def __init__(self, options: MetadataOptions = MetadataOptions(), *, name: str = "metadata") -> None:
        self.name, self.options = name, options
        self._scale: dict[str, tuple[float, float]] | None = None  # feature -> (offset, divisor)
        self._vocab: dict[str, list[str]] = {}
        self._idf: dict[str, np.ndarray] = {}
        self._fitted_rows = 0
        self.missing_values = 0

    @classmethod
    def from_name(cls, name: str, **options: Any) -> MetadataEmbedder:
        if name != "metadata":
            raise UnknownNameError(f"unknown embedder {name!r}; the tabular embedder is called 'metadata'")
        return cls(MetadataOptions.from_options(options), name=name)

    @property
    def blocks(self) -> list[str]:
        return [block for block in ("genres", "tags") if getattr(self.options, block) != "none"]

    @property
    def dim(self) -> int:
        """Width: the features, plus each label block's vocabulary (known once fitted)."""
        if self.blocks and self._scale is None:
            raise SonicError("the metadata embedder's width depends on its genre/tag vocabulary: fit it first")
        return len(self.options.features) + sum(len(self._vocab[block]) for block in self.blocks)

    def fit(self, rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> MetadataEmbedder:
        """Fit the scaling and the label vocabularies on every row of the table; returns self."""
        frame = _frame(rows)
        if frame.empty:
            raise DataError("the metadata table has no rows to fit the scaling on")
        self._check_columns(frame)
        scale = {}
        for feature in self.options.features:
            values = _numeric(frame[feature], feature).dropna().to_numpy(dtype=np.float64)
            if values.size == 0:
                raise DataError(f"metadata column {feature!r} holds no numbers")
            if self.options.scaling == "zscore":
                offset, divisor = float(values.mean()), float(values.std())
            else:
                offset, divisor = float(values.min()), float(values.max() - values.min())
            scale[feature] = (offset, divisor)
        for block in self.blocks:
            labels = [_labels(value) for value in frame[block]]
            counts = Counter(label for row in labels for label in set(row))
            vocab = sorted(label for label, count in counts.items() if count >= self.options.min_count)
            self._vocab[block] = vocab
            df = np.array([counts[label] for label in vocab], dtype=np.float64)
            self._idf[block] = np.log((1 + len(frame)) / (1 + df)) + 1
        self._scale, self._fitted_rows = scale, len(frame)
        return self

    def embed(self, batch: Sequence[Mapping[str, Any]] | pd.DataFrame) -> np.ndarray:
        """Vectors (n, dim) float32 of rows; needs :meth:`fit` first."""
        if self._scale is None:
            raise SonicError("the metadata embedder scales with parameters fitted on the whole table: call fit first")
        frame = _frame(batch)
        self._check_columns(frame)
        out = np.zeros((len(frame), self.dim), dtype=np.float32)
        for column, feature in enumerate(self.options.features):
            offset, divisor = self._scale[feature]
            values = _numeric(frame[feature], feature).to_numpy(dtype=np.float64)
            missing = np.isnan(values)
            self.missing_values += int(missing.sum())
            scaled = (values - offset) / divisor if divisor > 0 else np.zeros_like(values)
            if self.options.scaling == "zscore":
                scaled[missing] = 0.0
            else:  # the fitted mean is unknown for min-max: the middle of the range
                scaled[missing] = 0.5 if divisor > 0 else 0.0
            out[:, column] = scaled
        start = len(self.options.features)
        for block in self.blocks:
            vocab, kind = self._vocab[block], getattr(self.options, block)
            index = {label: i for i, label in enumerate(vocab)}
            part = np.zeros((len(frame), len(vocab)))
            for row, value in enumerate(frame[block]):
                for label in set(_labels(value)):
                    if label in index:
                        part[row, index[label]] = 1.0
            if kind == "tfidf":
                part *= self._idf[block]
                part /= np.linalg.norm(part, axis=1, keepdims=True).clip(1e-12)
            out[:, start : start + len(vocab)] = part
            start += len(vocab)
        return out

    def describe(self) -> dict[str, Any]:
        """Manifest entry: the features with their scaling parameters, the label blocks, the counts."""
        names = ("mean", "std") if self.options.scaling == "zscore" else ("min", "range")
        scaling = None if self._scale is None else {
            feature: dict(zip(names, values)) for feature, values in self._scale.items()
        }
        return {
            "model": self.name,
            "features": list(self.options.features),
            "scaling": self.options.scaling,
            "scaling_parameters": scaling,
            "fitted_rows": self._fitted_rows,
            "missing_values": self.missing_values,
            "missing_value_rule": "the fitted mean (z-score 0) / the middle of the range (min-max)",
            "blocks": {block: {"kind": getattr(self.options, block), "labels": self._vocab.get(block),
                               "min_count": self.options.min_count} for block in self.blocks},
            "sample_rate": 0,
        }

    def _check_columns(self, frame: pd.DataFrame) -> None:
        missing = [column for column in (*self.options.features, *self.blocks) if column not in frame.columns]
        if missing:
            found = ", ".join(map(str, frame.columns))
            hint = "" if missing[0] not in ("genres", "tags") else (
                f" (a {missing[0]} block needs a {missing[0]!r} column of comma-separated labels in --metadata-file, "
                f"or embed_metadata() on a Music4All release)")
            raise DataError(f"the metadata table has no column {missing[0]!r}; found: {found}{hint}")


def from_name(name: str, **options: Any) -> MetadataEmbedder:
    """The registry's factory: ``metadata`` with :class:`MetadataOptions` as keywords."""
    return MetadataEmbedder.from_name(name, **options)


def embed_metadata(source: Any, embedder: MetadataEmbedder | None = None) -> EmbeddingTable:
    """Fit ``embedder`` on a whole table and embed every track: an :class:`EmbeddingTable` sorted by track id.

    ``source`` is a :class:`~sonic.cream.data.Music4All` (its ``metadata`` frame, with its ``genres``
    and ``tags`` joined by track id) or a DataFrame with a ``track_id`` column or index.
    """
    embedder = embedder or MetadataEmbedder()
    frame = _music4all_frame(source) if hasattr(source, "metadata") and hasattr(source, "genres") else source
    if not isinstance(frame, pd.DataFrame):
        raise SonicError(f"metadata comes from a Music4All release or a DataFrame, got {type(source).__name__}")
    if "track_id" in frame.columns:
        frame = frame.set_index("track_id")
    frame = frame.set_axis(frame.index.astype(str), axis=0)
    if frame.index.has_duplicates:
        raise DataError(f"the metadata table lists track_id {frame.index[frame.index.duplicated()][0]!r} twice")
    frame = frame.sort_index()
    vectors = embedder.fit(frame).embed(frame)
    manifest = base_manifest("embedding table", name=embedder.name, embedder=embedder.describe(), dim=embedder.dim)
    return EmbeddingTable(track_ids=frame.index.to_numpy(dtype=str), vectors=vectors, manifest=manifest)


def _music4all_frame(music4all: Any) -> pd.DataFrame:
    frame = music4all.metadata.copy()
    for block in ("genres", "tags"):
        labels = getattr(music4all, block)
        frame[block] = [labels.get(track, ()) for track in frame.index]
    return frame


def _frame(rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    return rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))


def _numeric(column: pd.Series, name: str) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() & column.notna() & (column.astype(str).str.strip() != "")
    if bad.any():
        raise DataError(f"metadata column {name!r} holds a value that is not a number: {column[bad].iloc[0]!r}")
    return values.astype(np.float64)


def _labels(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [label.strip() for label in value.split(",") if label.strip()]
    if isinstance(value, Iterable):
        return [str(label).strip() for label in value if str(label).strip()]
    raise DataError(f"genres and tags are lists or comma-separated text, got {value!r}")
