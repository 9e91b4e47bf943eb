"""Embedders for the Ray tests, in a module of their own so that Ray's workers can import them."""

from __future__ import annotations

import time

from sonic.tails.models.mfcc import MFCCConfig, MFCCEmbedder


class ActorMFCC(MFCCEmbedder):
    """MFCC that does not embed where it loads: on Ray its batches go to a model actor."""

    runs_in_workers = False

    def __init__(self, n_mfcc: int = 20) -> None:
        super().__init__(MFCCConfig(n_mfcc=n_mfcc))


class SlowActorMFCC(ActorMFCC):
    """:class:`ActorMFCC` that takes ``seconds`` per batch (time to kill its driver halfway)."""

    def __init__(self, seconds: float = 0.4) -> None:
        super().__init__()
        self.seconds = seconds

    def embed(self, batch):
        time.sleep(self.seconds)
        return super().embed(batch)
