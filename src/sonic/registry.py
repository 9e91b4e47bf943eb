"""Explicit name-to-factory registries, one at the edge of each part.

A registry maps a name to a factory, given either as a callable or as a lazy
``"module:attribute"`` path that is imported only when that name is asked for (so a
heavy model's dependencies load only when it is used). A *family* entry such as
``mfcc`` also answers parametric names ``mfcc_<N>``; its factory receives the full name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from sonic.errors import UnknownNameError

T = TypeVar("T")
Factory = Callable[..., Any] | str


class Registry(Generic[T]):
    """A name-to-factory map for one kind of part (``embedder``, ``recommender``...)."""

    def __init__(self, kind: str, entries: Mapping[str, Factory] = (), families: Mapping[str, Factory] = ()) -> None:
        self.kind = kind
        self._entries: dict[str, Factory] = dict(entries)
        self._families: dict[str, Factory] = dict(families)

    def add(self, name: str, factory: Factory, *, family: bool = False) -> None:
        """Register ``factory`` under ``name`` (a family answers ``name_<suffix>`` too)."""
        table = self._families if family else self._entries
        if name in self._entries or name in self._families:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        table[name] = factory

    def names(self) -> list[str]:
        """Every known name; families are shown as ``<name>_<N>``."""
        return sorted([*self._entries, *(f"{name}_<N>" for name in self._families)])

    def create(self, name: str, /, **options: Any) -> T:
        """Build the part called ``name``; an unknown name lists the known ones."""
        if name in self._entries:
            return _load(self._entries[name])(**options)
        family = name if name in self._families else name.rpartition("_")[0]
        if family in self._families:
            return _load(self._families[family])(name, **options)
        raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name in self._entries or name in self._families or name.rpartition("_")[0] in self._families


def _load(factory: Factory) -> Callable[..., Any]:
    if callable(factory):
        return factory
    module_name, _, attribute = factory.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target
