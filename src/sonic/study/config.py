"""The study file: one TOML file that states a whole grid, read into typed frozen sections.

A study file (see ``examples/``) has these tables; paths are relative to the file's folder::

    title = "..."                       # optional
    [data]        events, audio, music4all, exclude
    [split]       protocol, start_date, test_date, end_date, seed
    [embeddings]  names, fusions, offset_seconds, duration_seconds, batch_size,
                  engine ("local" or "ray"), ray_address, gpus_per_actor
    [embeddings.options]  one table per embedder named in names: its options (checkpoint = "...", ...), and
                  offset_seconds / duration_seconds: the audio window of that embedder alone
    [[recommenders]]  name, label, options = { ... }, shuffle, embeddings   (one table per recommender)
                  search = { option = [...] or { low, high, log, step } }, sampler, trials, search_seed:
                  the options chosen on validation (:mod:`sonic.study.search`)
    [evaluation]  modes, ks, seeds, cold_candidates, search_metric, search_k
    [report]      metric, k, gallery_tracks, listening_users, notes

Reading checks shapes and types only: an unknown key or a value of the wrong type is a
:class:`~sonic.errors.SonicError` naming the file, the table and the valid keys.
Names (protocol, embedders, recommenders and their options) are checked against the
registries by :func:`sonic.study.check.check_study`, also before anything runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from sonic.errors import SonicError
from sonic.study.search import SEARCH_KEYS, SearchSpec, parse_search


@dataclass(frozen=True)
class DataSection:
    """Where the data is: the listening events file, the audio folder, a Music4All root, an exclude table."""

    events: Path
    audio: Path | None = None
    music4all: Path | None = None
    exclude: Path | None = None


@dataclass(frozen=True)
class SplitSection:
    """The split protocol and its dates (``None``: the protocol's own).

    ``seed``: the seed of the val/test user draw. ``None`` (the default) draws one split per
    seed of :class:`EvaluationSection`, so intervals over seeds include the user draw.
    """

    protocol: str = "sonic"
    start_date: str | None = None
    test_date: str | None = None
    end_date: str | None = None
    seed: int | None = None


#: Keys of an embedder's options that set the audio window it reads rather than the embedder itself.
WINDOW_KEYS = ("offset_seconds", "duration_seconds")


@dataclass(frozen=True)
class EmbeddingsSection:
    """Embedders by registered name, fusions (``"a+b"``), and the audio window each embedder reads."""

    names: tuple[str, ...] = ()
    fusions: tuple[str, ...] = ()
    offset_seconds: float = 0.0
    duration_seconds: float | None = None
    batch_size: int = 16
    engine: str = "local"  # "ray": embed on a Ray cluster, and send the runs there (sonic.study.on_ray)
    ray_address: str | None = None  # the cluster (None: a local Ray for the study; "auto": this node's)
    gpus_per_actor: float = 0.0  # GPUs per model actor when embedding on Ray
    options: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()  # embedder (as in names) -> its options

    def options_for(self, name: str) -> dict[str, Any]:
        """The options the study gives embedder ``name`` (as written in ``names``), window keys aside: {} when none."""
        return {key: value for key, value in dict(self.options).get(name, ()) if key not in WINDOW_KEYS}

    def window_for(self, name: str) -> tuple[float, float | None]:
        """``(offset_seconds, duration_seconds)`` of audio embedder ``name``: its options', else the section's."""
        own = dict(dict(self.options).get(name, ()))
        return (float(own.get("offset_seconds", self.offset_seconds)),
                own.get("duration_seconds", self.duration_seconds))


@dataclass(frozen=True)
class RecommenderSpec:
    """One recommender: its registered ``name``, a unique ``label`` (default: the name), its options,
    ``shuffle`` (the control: its embedding's vectors permuted across tracks), for a content model
    ``embeddings``: the tables it runs on (embedders or fusions of the study; empty: every one), and
    ``search``: the options chosen on validation (None: its options are fixed)."""

    name: str
    label: str = ""
    options: tuple[tuple[str, Any], ...] = ()
    shuffle: bool = False
    embeddings: tuple[str, ...] = ()
    search: SearchSpec | None = None

    @property
    def option_dict(self) -> dict[str, Any]:
        return dict(self.options)


@dataclass(frozen=True)
class EvaluationSection:
    """The slices every run is evaluated on (split files: val, test, cold_test), the list lengths, the seeds,
    and what the cold test ranks: ``cold_candidates`` ``"cold"`` (its own new tracks) or ``"all"`` (every
    track of the split); see :mod:`sonic.rouge.run`. ``search_metric``/``search_k``: what a search maximises
    on val (None: the report's metric and k)."""

    modes: tuple[str, ...] = ("val", "test")
    ks: tuple[int, ...] = (10, 50)
    seeds: tuple[int, ...] = (42,)
    cold_candidates: str = "cold"
    search_metric: str | None = None
    search_k: int | None = None


@dataclass(frozen=True)
class ReportSection:
    """The report's headline metric and list length, how many tracks its picture gallery shows, how many
    users of each test slice its listening section shows, and ``notes``: sentences the report shows first
    (what the study left out and why, say)."""

    metric: str = "NDCG"
    k: int = 10
    gallery_tracks: int = 3
    listening_users: int = 3
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Study:
    """A whole study file, read. ``source`` is the file it came from (None when built in Python)."""

    data: DataSection
    split: SplitSection = SplitSection()
    embeddings: EmbeddingsSection = EmbeddingsSection()
    recommenders: tuple[RecommenderSpec, ...] = ()
    evaluation: EvaluationSection = EvaluationSection()
    report: ReportSection = ReportSection()
    title: str = "SONIC study"
    source: Path | None = field(default=None, compare=False)

    def split_seeds(self) -> tuple[int, ...]:
        """The seeds of the distinct splits: the fixed split seed, or one per run seed."""
        if self.split.seed is not None:
            return (self.split.seed,)
        return self.evaluation.seeds

    def split_seed_for(self, seed: int) -> int:
        """The seed of the split a run with ``seed`` uses."""
        return seed if self.split.seed is None else self.split.seed

    def search_objective(self) -> tuple[str, int]:
        """``(metric, k)`` a search maximises on val: ``[evaluation]`` search_metric/search_k, else the report's."""
        evaluation = self.evaluation
        return (evaluation.search_metric or self.report.metric,
                evaluation.search_k if evaluation.search_k is not None else self.report.k)

    def to_dict(self) -> dict[str, Any]:
        """Plain TOML-ready values (paths as strings, ``None`` left out), in the file's layout."""
        return {
            "title": self.title,
            "data": _plain(self.data),
            "split": _plain(self.split),
            "embeddings": _embeddings_plain(self.embeddings),
            "recommenders": [
                {"name": spec.name, "label": spec.label, **({"options": spec.option_dict} if spec.options else {}),
                 **({"shuffle": True} if spec.shuffle else {}),
                 **({"embeddings": list(spec.embeddings)} if spec.embeddings else {}),
                 **(spec.search.to_dict() if spec.search is not None else {})}
                for spec in self.recommenders
            ],
            "evaluation": _plain(self.evaluation),
            "report": _plain(self.report),
        }


_SECTIONS = {
    "data": DataSection,
    "split": SplitSection,
    "embeddings": EmbeddingsSection,
    "evaluation": EvaluationSection,
    "report": ReportSection,
}
_TOP_KEYS = ("title", *_SECTIONS, "recommenders")


def read_study(path: str | os.PathLike) -> Study:
    """Read and type-check a study file; relative paths are taken from the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise SonicError(f"study file '{path}' does not exist")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SonicError(f"study file '{path}' is not valid TOML: {error}") from None
    return parse_study(document, base_dir=path.parent.resolve(), source=path)


def parse_study(document: dict[str, Any], *, base_dir: str | os.PathLike = ".", source: Path | None = None) -> Study:
    """A :class:`Study` from a parsed TOML document; ``where`` in errors is ``source`` (or 'the study')."""
    where = f"study file '{source}'" if source is not None else "the study"
    base_dir = Path(base_dir)
    _reject_unknown(document, _TOP_KEYS, where, "at the top level")
    if "data" not in document:
        raise SonicError(f"{where} has no [data] table; it needs at least data.events (the listening events file)")
    sections: dict[str, Any] = {}
    for key, section_type in _SECTIONS.items():
        table = document.get(key, {})
        if not isinstance(table, dict):
            raise SonicError(f"{where}: '{key}' must be a table ([{key}]), got {type(table).__name__}")
        if key == "embeddings" and "options" in table:
            options = _embedder_options(table["options"], where)
            table = {name: value for name, value in table.items() if name != "options"}
            sections[key] = dataclasses.replace(_build(section_type, table, where, f"[{key}]", base_dir),
                                                options=options)
            continue
        sections[key] = _build(section_type, table, where, f"[{key}]", base_dir)
    recommenders = document.get("recommenders", [])
    if not isinstance(recommenders, list) or not all(isinstance(item, dict) for item in recommenders):
        raise SonicError(f"{where}: recommenders must be an array of tables ([[recommenders]] with name = ...)")
    specs = tuple(_recommender(item, where, number) for number, item in enumerate(recommenders, start=1))
    title = document.get("title", Study.title)
    if not isinstance(title, str):
        raise SonicError(f"{where}: title must be a string, got {title!r}")
    return Study(recommenders=specs, title=title, source=source, **sections)


def _embedder_options(table: Any, where: str) -> tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]:
    """``[embeddings.options]``: a table of tables, embedder name -> its options (sorted, hashable)."""
    example = 'e.g. [embeddings.options] dino_vits16 = { checkpoint = "dino/" }'
    if not isinstance(table, dict) or not all(isinstance(value, dict) for value in table.values()):
        raise SonicError(f"{where}: [embeddings] options must be a table of one table per embedder, {example}")
    for name, values in table.items():
        for key in WINDOW_KEYS:
            value = values.get(key)
            if key in values and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise SonicError(f"{where}: [embeddings.options] {name} {key} must be a number of seconds >= 0, "
                                 f"got {value!r}")
    return tuple((name, tuple(sorted(values.items()))) for name, values in table.items())


def _recommender(table: dict[str, Any], where: str, number: int) -> RecommenderSpec:
    context = f"[[recommenders]] number {number}"
    _reject_unknown(table, ("name", "label", "options", "shuffle", "embeddings", *SEARCH_KEYS), where,
                    f"in {context}")
    name = table.get("name")
    if not isinstance(name, str) or not name:
        raise SonicError(f"{where}: {context} needs name = \"...\" (a registered recommender)")
    label = table.get("label", name)
    if not isinstance(label, str) or not label or "/" in label:
        raise SonicError(f"{where}: {context} label must be a non-empty string without '/', got {label!r}")
    options = table.get("options", {})
    if not isinstance(options, dict):
        raise SonicError(f"{where}: {context} options must be a table, e.g. options = {{ catalogue = \"all\" }}")
    shuffle = table.get("shuffle", False)
    if not isinstance(shuffle, bool):
        raise SonicError(f"{where}: {context} shuffle must be true or false, got {shuffle!r}")
    embeddings = table.get("embeddings", [])
    if not isinstance(embeddings, list) or not all(isinstance(item, str) and item for item in embeddings):
        raise SonicError(f"{where}: {context} embeddings must be a list of embedding names, e.g. "
                         f"embeddings = [\"mfcc_104\"], got {embeddings!r}")
    return RecommenderSpec(name=name, label=label, options=tuple(sorted(options.items())), shuffle=shuffle,
                           embeddings=tuple(embeddings),
                           search=parse_search(table, where, f"{context} ('{label}')"))


def _build(section_type: type, table: dict[str, Any], where: str, context: str, base_dir: Path) -> Any:
    hints = typing.get_type_hints(section_type)
    names = [f.name for f in fields(section_type)]
    _reject_unknown(table, names, where, f"in {context}")
    values = {}
    for name in names:
        if name in table:
            values[name] = _typed(table[name], hints[name], where, f"{context} {name}", base_dir)
    required = [f.name for f in fields(section_type) if f.default is MISSING and f.name not in values]
    if required:
        raise SonicError(f"{where}: {context} needs {required[0]} = ...")
    return section_type(**values)


def _typed(value: Any, hint: Any, where: str, context: str, base_dir: Path) -> Any:
    """``value`` checked against ``hint`` (str, int, float, Path, tuple[X, ...], X | None)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    target = next(option for option in options if option is not type(None))
    if typing.get_origin(target) is tuple:
        item_type = typing.get_args(target)[0]
        if not isinstance(value, list):
            raise SonicError(f"{where}: {context} must be a list, e.g. [{_example(item_type)}], got {value!r}")
        return tuple(_typed(item, item_type, where, context, base_dir) for item in value)
    if target is Path:
        if not isinstance(value, str) or not value:
            raise SonicError(f"{where}: {context} must be a path string, got {value!r}")
        path = Path(value).expanduser()
        return path if path.is_absolute() else base_dir / path
    if target is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, target) or (target is int and isinstance(value, bool)):
        raise SonicError(f"{where}: {context} must be {_type_name(target)}, got {value!r}")
    return value


def _reject_unknown(table: dict[str, Any], known: tuple[str, ...] | list[str], where: str, context: str) -> None:
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise SonicError(f"{where}: unknown key '{key}' {context}{hint}; known: {', '.join(known)}")


def _type_name(target: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(target, target.__name__)


def _example(item_type: type) -> str:
    return {str: '"a", "b"', int: "10, 50", float: "0.5"}.get(item_type, "...")


def _embeddings_plain(embeddings: EmbeddingsSection) -> dict[str, Any]:
    """The [embeddings] table with its options as a table of tables (left out when there are none)."""
    plain = {key: value for key, value in _plain(embeddings).items() if key != "options"}
    if embeddings.options:
        plain["options"] = {name: dict(values) for name, values in embeddings.options}
    return plain


def _plain(section: Any) -> dict[str, Any]:
    out = {}
    for item in fields(section):
        value = getattr(section, item.name)
        if value is None:
            continue
        out[item.name] = str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value
    return out
