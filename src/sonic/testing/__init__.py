"""Test fixtures, apart from the code they test: tiny random-weight checkpoints in each model's published
format, and the embedder contract's fixture for every registered embedder.

Imported by the tests and benchmarks only; nothing in ``src/sonic`` outside this package imports it
(``tests/test_layout.py`` checks). The writers: :mod:`sonic.testing.tiny` (torch models),
:mod:`sonic.testing.musicnn_tiny` (TensorFlow checkpoints), :mod:`sonic.testing.vit_tiny` (timm ViTs);
the contract's fixtures: :mod:`sonic.testing.embedders`.
"""

from __future__ import annotations

from sonic.testing.embedders import EMBEDDER_FIXTURES, NEEDS_NO_FIXTURE, EmbedderFixture, embedder_fixture

__all__ = ["EMBEDDER_FIXTURES", "NEEDS_NO_FIXTURE", "EmbedderFixture", "embedder_fixture"]
