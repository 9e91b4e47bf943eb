"""Lazy exports for package ``__init__`` modules: names import on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(
    package: str,
    namespace: dict[str, Any],
    attributes: Mapping[str, str],
    modules: Mapping[str, str] | None = None,
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``.

    ``attributes`` maps an exported name to the module defining it; ``modules`` maps an
    exported name to a module that is itself the value. Each is imported on first access
    and then cached in ``namespace``.
    """
    modules = dict(modules or {})

    def __getattr__(name: str) -> Any:
        if name in modules:
            value = importlib.import_module(modules[name])
        elif name in attributes:
            value = getattr(importlib.import_module(attributes[name]), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    return __getattr__
