"""SONIC: content-based music recommendation.

Three parts, each a subpackage, also reachable under the project's own names:

- ``sonic.CREAM`` (:mod:`sonic.cream`): audio decoding, listening data, time splits.
- ``sonic.TAILS`` (:mod:`sonic.tails`): embedders and embedding tables.
- ``sonic.ROUGE`` (:mod:`sonic.rouge`): recommenders and evaluation.

Subpackages load on first use, so ``import sonic`` stays quick.
"""

from __future__ import annotations

from sonic._lazy import lazy_getattr

__version__ = "0.1.0"

_PARTS = {"CREAM": "sonic.cream", "TAILS": "sonic.tails", "ROUGE": "sonic.rouge"}

__all__ = ["CREAM", "TAILS", "ROUGE", "SonicError", "__version__"]

__getattr__ = lazy_getattr(__name__, globals(), {"SonicError": "sonic.errors"}, modules=_PARTS)
