"""A recommender's search space in a study file: which options are chosen on validation, and how.

In a ``[[recommenders]]`` entry, ``search`` names the options to choose; each is a list of choices
or a range::

    search = { hidden = [256, 512], lr = { low = 1e-4, high = 1e-2, log = true } }
    sampler = "tpe"        # the default; or "grid"
    trials = 12            # how many settings to try (tpe: required; grid: at most, default the whole grid)
    search_seed = 0        # the sampler's seed (default 0)

A **list** is categorical: the values tried as they are (``"none"`` stands for None in the list of an
option that may be None, e.g. knn's ``recency_half_life_days = ["none", 30.0]``). A **range** is ``{ low, high }`` with
``log = true`` (sampled on a log scale; low > 0) or ``step = s`` (only ``low + i * s`` up to high);
it is an integer range when the option is an integer, else a float range. Every name is an option of
the recommender's options dataclass, every value has its field's type, and the model accepts it
(low and high, every choice); an option set in ``options`` is not searched. ``grid`` tries every
combination of choices and stepped ranges (a range without ``step`` has no grid). Each mistake is
one :class:`~sonic.errors.SonicError` sentence naming the file, the entry and what would be valid.
The trials themselves run in :mod:`sonic.study.tuning`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from sonic.errors import SonicError

SAMPLERS = ("tpe", "grid")
#: In a list, the value standing for None (TOML has no null) for an option that may be None.
NONE = "none"
#: Trials TPE samples at random before it models good and bad settings (Optuna's default, 10, would
#: leave a study's small searches random throughout).
TPE_STARTUP_TRIALS = 5
#: Keys of a ``[[recommenders]]`` entry that belong to its search.
SEARCH_KEYS = ("search", "sampler", "trials", "search_seed")
_RANGE_KEYS = ("low", "high", "log", "step")


@dataclass(frozen=True)
class Choice:
    """A categorical option: the values tried, in the file's order."""

    values: tuple[Any, ...]

    def plain(self) -> list[Any]:
        return list(self.values)

    def grid(self) -> tuple[Any, ...]:
        return self.values


@dataclass(frozen=True)
class Range:
    """``low``..``high`` (both included), sampled on a ``log`` scale or in steps of ``step``; ``integer``:
    the file wrote whole numbers (an integer option needs them; a float option takes them as floats)."""

    low: float
    high: float
    integer: bool = False
    log: bool = False
    step: float | None = None

    def plain(self) -> dict[str, Any]:
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out

    def grid(self) -> tuple[Any, ...] | None:
        """The stepped values ``low, low + step, ...`` up to ``high`` (None without a step)."""
        if self.step is None:
            return None
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        if self.integer:
            return tuple(int(self.low + number * self.step) for number in range(count))
        return tuple(round(self.low + number * self.step, 12) for number in range(count))


Dimension = Choice | Range


@dataclass(frozen=True)
class SearchSpec:
    """The options a recommender's settings are chosen from: ``space`` (option -> dimension, sorted by
    name), the ``sampler``, the number of ``trials`` and the sampler's ``seed``."""

    space: tuple[tuple[str, Dimension], ...]
    sampler: str = "tpe"
    trials: int = 0
    seed: int = 0

    @property
    def dimensions(self) -> dict[str, Dimension]:
        return dict(self.space)

    def grid(self) -> dict[str, tuple[Any, ...]] | None:
        """Every option's grid values (None when some range has no step)."""
        values = {name: dimension.grid() for name, dimension in self.space}
        return None if any(value is None for value in values.values()) else values

    def grid_size(self) -> int | None:
        grid = self.grid()
        return None if grid is None else math.prod(len(values) for values in grid.values())

    def sampler_settings(self) -> dict[str, Any]:
        """The sampler as a step's identity records it: name, seed and, for tpe, its random start."""
        return {"name": self.sampler, "seed": self.seed,
                **({"startup_trials": TPE_STARTUP_TRIALS} if self.sampler == "tpe" else {})}

    def plain_space(self) -> dict[str, Any]:
        """The space as the study file writes it."""
        return {name: dimension.plain() for name, dimension in self.space}

    def to_dict(self) -> dict[str, Any]:
        """The entry's search keys, TOML-ready."""
        return {"search": self.plain_space(), "sampler": self.sampler, "trials": self.trials,
                "search_seed": self.seed}  # fmt: skip


def parse_search(table: dict[str, Any], where: str, context: str) -> SearchSpec | None:
    """The search of a ``[[recommenders]]`` table (None when it has none); shapes and types only:
    the options are checked against the recommender by :func:`check_search`."""
    if "search" not in table:
        stray = [key for key in SEARCH_KEYS if key in table]
        if stray:
            raise SonicError(f"{where}: {context} sets {stray[0]} but has no search = {{ option = [...] }} to use it")
        return None
    space = table["search"]
    example = "e.g. search = { l2 = [100.0, 1000.0] } or { l2 = { low = 10.0, high = 10000.0, log = true } }"
    if not isinstance(space, dict) or not space:
        raise SonicError(f"{where}: {context} search must be a table of options to choose, {example}")
    dimensions = tuple((name, _dimension(value, where, f"{context} search {name}", example))
                       for name, value in sorted(space.items()))  # fmt: skip
    sampler = table.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise SonicError(f"{where}: {context} sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    trials = table.get("trials")
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        raise SonicError(f"{where}: {context} trials must be a positive integer, got {trials!r}")
    seed = table.get("search_seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SonicError(f"{where}: {context} search_seed must be a non-negative integer, got {seed!r}")
    spec = SearchSpec(dimensions, sampler, trials or 0, seed)
    if sampler == "grid":
        size = spec.grid_size()
        if size is None:
            unstepped = next(name for name, dimension in spec.space if dimension.grid() is None)
            raise SonicError(f"{where}: {context} sampler 'grid' needs lists or ranges with a step; "
                             f"search {unstepped} is a range without step (add step = ..., or use sampler 'tpe')")
        if trials is not None and trials > size:
            raise SonicError(f"{where}: {context} asks for {trials} trials, but the grid has only {size} settings")
        return dataclasses.replace(spec, trials=trials or size)
    if trials is None:
        raise SonicError(f"{where}: {context} needs trials = N, the number of settings sampler 'tpe' tries")
    return spec


def _dimension(value: Any, where: str, context: str, example: str) -> Dimension:
    if isinstance(value, list):
        if not value:
            raise SonicError(f"{where}: {context} is an empty list; list the values to try")
        if not all(isinstance(item, (str, int, float, bool)) for item in value):
            raise SonicError(f"{where}: {context} values must be strings, numbers or true/false, got {value!r}")
        if len({(type(item), item) for item in value}) != len(value):
            raise SonicError(f"{where}: {context} lists a value twice: {value!r}")
        return Choice(tuple(value))
    if not isinstance(value, dict):
        raise SonicError(f"{where}: {context} must be a list of values or a range {{ low = ..., high = ... }}, "
                         f"{example}")
    unknown = [key for key in value if key not in _RANGE_KEYS]
    if unknown:
        raise SonicError(f"{where}: unknown key '{unknown[0]}' in {context}; known: {', '.join(_RANGE_KEYS)}")
    for key in ("low", "high"):
        if key not in value:
            raise SonicError(f"{where}: {context} range needs {key} = a number")
    low, high, step, log = value["low"], value["high"], value.get("step"), value.get("log", False)
    for key, number in (("low", low), ("high", high), ("step", step)):
        if number is not None and (isinstance(number, bool) or not isinstance(number, (int, float))
                                   or not math.isfinite(number)):  # fmt: skip
            raise SonicError(f"{where}: {context} {key} must be a number, got {number!r}")
    if not isinstance(log, bool):
        raise SonicError(f"{where}: {context} log must be true or false, got {log!r}")
    if not low < high:
        raise SonicError(f"{where}: {context} needs low < high, got low = {low!r}, high = {high!r}")
    if log and step is not None:
        raise SonicError(f"{where}: {context} takes log = true or a step, not both")
    if log and not low > 0:
        raise SonicError(f"{where}: {context} log = true needs low > 0, got {low!r}")
    if step is not None and not step > 0:
        raise SonicError(f"{where}: {context} step must be positive, got {step!r}")
    if step is not None and abs((high - low) / step - round((high - low) / step)) > 1e-9:
        raise SonicError(f"{where}: {context} high must be low plus a whole number of steps, got low = {low!r}, "
                         f"high = {high!r}, step = {step!r}")
    integer = all(isinstance(number, int) for number in (low, high, step) if number is not None)
    return Range(low, high, integer, log, step)


def check_search(spec: Any, where: str) -> None:
    """Check the search of ``spec`` (a :class:`~sonic.study.config.RecommenderSpec`) against its
    recommender: every option known, of its field's type, accepted by the model (low, high, choices)."""
    from sonic.rouge.base import RECOMMENDERS

    search: SearchSpec | None = getattr(spec, "search", None)
    if search is None:
        return
    context = f"recommender '{spec.label}' search"
    model = RECOMMENDERS.create(spec.name, **spec.option_dict)
    config = getattr(model, "config", None)
    if not dataclasses.is_dataclass(config):
        raise SonicError(f"{where}: {context}: {spec.name} has no options to search")
    hints = typing.get_type_hints(type(config))
    known = [item.name for item in dataclasses.fields(config)]
    for name, dimension in search.space:
        if name not in known:
            raise SonicError(f"{where}: {context} names unknown option '{name}' of {spec.name}; "
                             f"known: {', '.join(known)}")
        if name in spec.option_dict:
            raise SonicError(f"{where}: {context} searches '{name}', which options also sets; set it in one place")
        kind = base_type(hints[name])
        if isinstance(dimension, Range):
            if kind not in (int, float):
                raise SonicError(f"{where}: {context} {name} is a range, but {spec.name}'s {name} is "
                                 f"{_type_name(kind)}; list its values instead")
            if kind is int and not dimension.integer:
                raise SonicError(f"{where}: {context} {name} must be a range of integers "
                                 f"({spec.name}'s {name} is an integer), got {dimension.plain()!r}")
            values: tuple[Any, ...] = (dimension.low, dimension.high)
        else:
            values = dimension.values
            for value in values:
                if not _fits(value, hints[name]):
                    allowed = _literal_choices(hints[name])
                    what = f"one of {', '.join(map(str, allowed))}" if allowed else _type_name(kind)
                    what += f' or "{NONE}"' if _optional(hints[name]) else ""
                    raise SonicError(f"{where}: {context} {name} value {value!r} is not {what} "
                                     f"({spec.name}'s {name} must be {what})")
        for value in values:
            try:
                RECOMMENDERS.create(spec.name, **{**spec.option_dict, name: typed_value(value, hints[name])})
            except SonicError as error:
                raise SonicError(f"{where}: {context} {name} = {value!r} is refused: {error}") from None


def typed_value(value: Any, hint: Any) -> Any:
    """``value`` as its option's type (an integer for a float option becomes a float; ``"none"`` for an
    option that may be None is None)."""
    if value == NONE and _optional(hint) and not _fits(value, _without_none(hint)):
        return None
    if base_type(hint) is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def base_type(hint: Any) -> Any:
    """``X`` of ``X | None``; a ``Literal`` of strings is ``str``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [option for option in typing.get_args(hint) if option is not type(None)]
        hint = options[0] if len(options) == 1 else hint
    if typing.get_origin(hint) is typing.Literal:
        return type(typing.get_args(hint)[0])
    return hint


def _literal_choices(hint: Any) -> tuple[Any, ...]:
    """The choices of a ``Literal`` option (or ``Literal | None``); () for any other type."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return tuple(choice for option in typing.get_args(hint) for choice in _literal_choices(option))
    return typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else ()


def _optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def _without_none(hint: Any) -> Any:
    options = [option for option in typing.get_args(hint) if option is not type(None)]
    return options[0] if len(options) == 1 else typing.Union[tuple(options)]


def _fits(value: Any, hint: Any) -> bool:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return (value == NONE and _optional(hint)) or any(
            _fits(value, option) for option in typing.get_args(hint) if option is not type(None))
    if typing.get_origin(hint) is typing.Literal:
        return value in typing.get_args(hint) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(hint, type) and isinstance(value, hint)


def _type_name(kind: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        kind, getattr(kind, "__name__", str(kind)))


def grid_points(spec: SearchSpec) -> list[dict[str, Any]]:
    """Every setting of a grid search, options in name order (the grid's full product)."""
    grid = spec.grid() or {}
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[name] for name in names))]
