"""TAILS embedder families, one module each; the registry in :mod:`sonic.tails.base` names them."""
