"""Former home of :func:`embed_folder`; it lives in :mod:`sonic.tails.runner` (kept so old imports work)."""

from sonic.tails.runner import EmbedResult, embed_folder

__all__ = ["EmbedResult", "embed_folder"]
