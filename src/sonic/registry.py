"""Explicit name-to-factory registries, one at the edge of each part.

A registry maps a name to a factory, given either as a callable or as a lazy
``"module:attribute"`` path that is imported only when that name is asked for (so a
heavy model's dependencies load only when it is used). A *family* entry such as
``mfcc`` also answers parametric names ``mfcc_<N>``; its factory receives the full name.

Names are matched without regard to case (``KNN`` is ``knn``). An *alias* is another name for a
registered one (``MFCC`` for ``mfcc_104``, the names the original SONIC used): it resolves to its
canonical name, which is what the part is called and what its outputs are named by.
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

    def __init__(
        self,
        kind: str,
        entries: Mapping[str, Factory] = (),
        families: Mapping[str, Factory] = (),
        aliases: Mapping[str, str] = (),
    ) -> None:
        self.kind = kind
        self._entries: dict[str, Factory] = {}
        self._families: dict[str, Factory] = {}
        self._aliases: dict[str, tuple[str, str]] = {}  # lower-case alias -> (alias as written, canonical name)
        for name, factory in dict(entries).items():
            self.add(name, factory)
        for name, factory in dict(families).items():
            self.add(name, factory, family=True)
        for alias, name in dict(aliases).items():
            self.alias(alias, name)

    def add(self, name: str, factory: Factory, *, family: bool = False) -> None:
        """Register ``factory`` under ``name`` (a family answers ``name_<suffix>`` too)."""
        key = name.lower()
        if any(key == known.lower() for known in (*self._entries, *self._families)) or key in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        (self._families if family else self._entries)[name] = factory

    def alias(self, alias: str, name: str) -> None:
        """Let ``alias`` (in any case) stand for the registered ``name``, a plain name or a family's member.

        An alias may be a family's own name (``mfcc`` for ``mfcc_104``): the bare family name names no part.
        """
        key = alias.lower()
        if key in self._aliases or any(key == known.lower() for known in self._entries):
            raise ValueError(f"{self.kind} alias {alias!r} is already a name")
        if self._canonical(name) != name:
            raise ValueError(f"{self.kind} alias {alias!r} names {name!r}, which is not a registered name")
        self._aliases[key] = (alias, name)

    def names(self) -> list[str]:
        """Every known name; families are shown as ``<name>_<N>``."""
        return sorted([*self._entries, *(f"{name}_<N>" for name in self._families)])

    def aliases(self) -> dict[str, str]:
        """Every alias, as written, with the name it stands for."""
        return dict(sorted(self._aliases.values(), key=lambda pair: pair[0].lower()))

    def resolve(self, name: str) -> str:
        """The registered name ``name`` stands for: itself, its registered spelling, or an alias's target.

        A family's member is returned in lower case (``MFCC_104`` -> ``mfcc_104``); its factory
        decides whether the number is valid. An unknown name lists the known ones and the aliases.
        """
        canonical = self._canonical(name)
        if canonical is None:
            raise UnknownNameError(self._unknown(name))
        return canonical

    def create(self, name: str, /, **options: Any) -> T:
        """Build the part called ``name`` (or an alias of it); an unknown name lists the known ones."""
        canonical = self.resolve(name)
        if canonical in self._entries:
            return _load(self._entries[canonical])(**options)
        family = canonical if canonical in self._families else canonical.rpartition("_")[0]
        return _load(self._families[family])(canonical, **options)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._canonical(name) is not None

    def _canonical(self, name: str) -> str | None:
        if name in self._entries:
            return name
        key = name.lower()
        if key in self._aliases:
            return self._aliases[key][1]
        for entry in self._entries:
            if entry.lower() == key:
                return entry
        if key in self._families or key.rpartition("_")[0] in self._families:
            return key
        return None

    def _unknown(self, name: str) -> str:
        aliases = "; aliases: " + ", ".join(f"{alias} = {target}" for alias, target in self.aliases().items())
        return f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}" + (aliases if self._aliases else "")


def _load(factory: Factory) -> Callable[..., Any]:
    if callable(factory):
        return factory
    module_name, _, attribute = factory.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target
