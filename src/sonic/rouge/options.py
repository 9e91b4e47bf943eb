"""Model options from the command line: ``key=value`` strings typed by the model's frozen dataclass.

Each recommender keeps its options in a frozen dataclass (``model.config``). A string value is
converted to the type its field declares (bool, int, float, str, a ``Literal`` of choices, an
optional ``X | None``, a tuple); a key the dataclass lacks is an error listing the known ones.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from sonic.errors import SonicError

_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}
_NONE = {"none", "null"}


def split_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a pair without ``=`` is a :class:`SonicError`."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SonicError(f"option {pair!r} is not key=value (e.g. --option catalogue=all)")
        options[key.strip()] = value.strip()
    return options


def typed_options(config_type: type, raw: Mapping[str, str], owner: str) -> dict[str, Any]:
    """Convert ``raw`` string values to the field types of the dataclass ``config_type``."""
    if not dataclasses.is_dataclass(config_type):
        raise TypeError(f"{owner}'s options are not a dataclass: {config_type!r}")
    hints = typing.get_type_hints(config_type)
    known = [f.name for f in dataclasses.fields(config_type)]
    typed = {}
    for key, text in raw.items():
        if key not in known:
            raise SonicError(f"unknown option {key!r} for {owner}; known: {', '.join(known) or 'none'}")
        typed[key] = _convert(text, hints[key], f"option {key!r} of {owner}")
    return typed


def _convert(text: str, hint: Any, what: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.lower() in _NONE:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(text, arg, what)
            except SonicError as error:
                errors.append(str(error))
        raise SonicError(errors[0] if errors else f"{what} cannot be {text!r}")
    if origin is typing.Literal:
        for choice in args:
            if str(choice).lower() == text.lower():
                return choice
        raise SonicError(f"{what} must be one of {', '.join(map(str, args))}, got {text!r}")
    if hint is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise SonicError(f"{what} must be true or false, got {text!r}")
    if hint in (int, float):
        try:
            return hint(text)
        except ValueError:
            raise SonicError(f"{what} must be {'an integer' if hint is int else 'a number'}, got {text!r}") from None
    if hint is str:
        return text
    if origin in (tuple, list):
        items = [item for item in text.split(",") if item.strip()]
        inner = args[0] if args else str
        return origin(_convert(item.strip(), inner, what) for item in items)
    try:  # anything else: a JSON value
        return json.loads(text)
    except ValueError:
        raise SonicError(f"{what} must be a JSON value, got {text!r}") from None
