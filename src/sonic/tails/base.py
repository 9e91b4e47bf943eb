"""The embedder protocol and the registry of embedders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sonic.registry import Registry


@runtime_checkable
class Embedder(Protocol):
    """What every embedder declares and does.

    ``embed`` takes a batch of inputs of the embedder's ``modality`` (for ``audio``: mono
    float32 waveforms of shape (samples,) at ``sample_rate`` Hz, lengths may differ) and
    returns a float32 array of shape (n, dim), one row per input, in order.
    """

    name: str
    dim: int
    sample_rate: int
    modality: str

    def embed(self, batch: Sequence[np.ndarray]) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]:
        """Parameters for the manifest: model, checkpoint, layer, window, pooling..."""
        ...


#: Every embedder, by name. Targets are imported only when their name is asked for.
EMBEDDERS: Registry[Embedder] = Registry(
    "embedder",
    families={
        "mfcc": "sonic.tails.mfcc:MFCCEmbedder.from_name",
        "mert-v1-95m": "sonic.tails.models.mert:from_name",
        "mert-v1-330m": "sonic.tails.models.mert:from_name",
        "music2vec-v1": "sonic.tails.models.music2vec:from_name",
        "muq": "sonic.tails.models.muq:from_name",
        "muq-mulan": "sonic.tails.models.muq:from_name",
        "musicfm": "sonic.tails.models.musicfm:from_name",
        "encodecmae-base": "sonic.tails.models.encodecmae:from_name",
    },
)
