"""SONIC: content-based music recommendation.

Three parts, each a subpackage, also reachable under the project's own names:

- ``sonic.CREAM`` (:mod:`sonic.cream`): audio decoding, listening data, time splits.
- ``sonic.TAILS`` (:mod:`sonic.tails`): embedders and embedding tables.
- ``sonic.ROUGE`` (:mod:`sonic.rouge`): recommenders and evaluation.

Subpackages load on first use, so ``import sonic`` stays quick.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PARTS = {"CREAM": "sonic.cream", "TAILS": "sonic.tails", "ROUGE": "sonic.rouge",
          "cream": "sonic.cream", "tails": "sonic.tails", "rouge": "sonic.rouge", "demo": "sonic.demo"}

__all__ = ["CREAM", "TAILS", "ROUGE", "SonicError", "__version__"]


def __getattr__(name: str):
    if name in _PARTS:
        module = importlib.import_module(_PARTS[name])
        globals()[name] = module
        return module
    if name == "SonicError":
        from sonic.errors import SonicError

        return SonicError
    raise AttributeError(f"module 'sonic' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PARTS, "SonicError"])
