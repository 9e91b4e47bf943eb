"""Every name in a study checked against the registries before anything runs.

:func:`check_study` resolves each embedder name exactly as :data:`sonic.tails.base.EMBEDDERS`
does (``mfcc_0104`` is the embedder ``mfcc_104``, and its table is ``mfcc_104.parquet``),
builds each recommender with its options through :data:`sonic.rouge.base.RECOMMENDERS`
(an unknown option lists the valid ones), checks the protocol and its dates, the modes, the
list lengths, the seeds and that the data files exist. Every problem is a
:class:`~sonic.errors.SonicError`; nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sonic.errors import SonicError, UnknownNameError
from sonic.study.config import Study
from sonic.study.search import check_search

#: Split files a run may be evaluated on.
MODES = ("val", "test", "cold_test")
#: Embedder modalities the study embeds from the audio folder; the others read [data] music4all.
AUDIO_MODALITIES = ("audio", "image")


@dataclass(frozen=True)
class Resolved:
    """A checked study: resolved embedder names, fusions with their parts, which recommenders use content."""

    study: Study
    embedders: tuple[str, ...]
    fusions: tuple[tuple[str, tuple[str, ...]], ...]
    content: dict[str, bool]  # recommender label -> needs an item embedding
    # (the tables of a recommender restricted by its ``embeddings``, by label, as resolved; others run on all)
    descriptions: dict[str, dict[str, Any]]  # embedder name -> its describe()
    modalities: dict[str, str]  # embedder name -> its modality
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # embedder name -> the study's options
    windows: dict[str, tuple[float, float | None]] = field(default_factory=dict)  # audio window per embedder
    #: embedder name / recommender label -> the sonic modules of its class and base classes (its code)
    embedder_modules: dict[str, tuple[str, ...]] = field(default_factory=dict)
    recommender_modules: dict[str, tuple[str, ...]] = field(default_factory=dict)
    restricted: dict[str, tuple[str, ...]] = field(default_factory=dict)  # label -> its tables, when restricted

    @property
    def tables(self) -> tuple[str, ...]:
        """Every embedding table a content recommender runs on: the embedders, then the fusions."""
        return (*self.embedders, *(name for name, _ in self.fusions))

    def tables_of(self, label: str) -> tuple[str, ...]:
        """The tables the recommender ``label`` runs on: its ``embeddings`` (resolved), else every table."""
        return self.restricted.get(label, self.tables)


def check_study(study: Study) -> Resolved:
    """Check ``study`` (see the module docstring) and return its resolved names."""
    where = f"study file '{study.source}'" if study.source is not None else "the study"
    _check_split(study, where)
    _check_evaluation(study, where)
    embedders, descriptions, modalities, embedder_modules = _resolve_embedders(study, where)
    written = dict(zip(embedders, study.embeddings.names))  # resolved name -> as written in the file
    options = {name: study.embeddings.options_for(written[name]) for name in embedders}
    windows = {name: study.embeddings.window_for(written[name]) for name in embedders}
    fusions = _resolve_fusions(study, embedders, where)
    content, recommender_modules = _check_recommenders(study, where)
    if any(content.values()) and not (embedders or fusions):
        users = ", ".join(label for label, uses in content.items() if uses)
        raise SonicError(f"{where}: {users} need item embeddings, but [embeddings] names is empty")
    restricted = _restricted_tables(study, written, fusions, content, where)
    _check_data(study, where, needs_audio=any(m in AUDIO_MODALITIES for m in modalities.values()),
                needs_music4all=any(m not in AUDIO_MODALITIES for m in modalities.values()))
    from sonic.rouge.metrics import METRIC_NAMES

    if study.report.metric not in METRIC_NAMES:
        known = ", ".join(METRIC_NAMES)
        raise UnknownNameError(f"{where}: unknown report metric '{study.report.metric}'; known: {known}")
    if study.report.k not in study.evaluation.ks:
        ks = list(study.evaluation.ks)
        raise SonicError(f"{where}: report k = {study.report.k} is not one of the evaluation ks {ks}")
    _check_search_objective(study, where)
    if study.report.gallery_tracks < 0:
        raise SonicError(f"{where}: report gallery_tracks must be 0 or more, got {study.report.gallery_tracks}")
    if study.report.listening_users < 0:
        raise SonicError(f"{where}: report listening_users must be 0 or more, got {study.report.listening_users}")
    return Resolved(study, embedders, fusions, content, descriptions, modalities, options, windows,
                    embedder_modules, recommender_modules, restricted)


def _check_split(study: Study, where: str) -> None:
    from sonic.cream.data import PROTOCOLS, SplitConfig

    split = study.split
    if split.protocol not in PROTOCOLS:
        known = ", ".join(sorted(PROTOCOLS))
        raise UnknownNameError(f"{where}: unknown split protocol '{split.protocol}'; known: {known}")
    SplitConfig.for_protocol(split.protocol, start_date=split.start_date, test_date=split.test_date,
                             end_date=split.end_date, seed=split.seed if split.seed is not None else 0)
    if "cold_test" in study.evaluation.modes and not PROTOCOLS[split.protocol].keep_cold:
        cold = ", ".join(name for name, protocol in sorted(PROTOCOLS.items()) if protocol.keep_cold)
        raise SonicError(
            f"{where}: mode 'cold_test' needs a protocol with a cold test ({cold}), not '{split.protocol}'"
        )


def _check_evaluation(study: Study, where: str) -> None:
    from sonic.rouge.evaluate import check_ks

    evaluation = study.evaluation
    for mode in evaluation.modes:
        if mode not in MODES:
            raise UnknownNameError(f"{where}: unknown evaluation mode '{mode}'; known: {', '.join(MODES)}")
    if not evaluation.modes:
        raise SonicError(f"{where}: [evaluation] modes is empty; name at least one of {', '.join(MODES)}")
    check_ks(evaluation.ks)
    if not evaluation.seeds or any(seed < 0 for seed in evaluation.seeds):
        seeds = list(evaluation.seeds)
        raise SonicError(f"{where}: [evaluation] seeds must be one or more non-negative integers, got {seeds}")
    if len(set(evaluation.seeds)) != len(evaluation.seeds):
        raise SonicError(f"{where}: [evaluation] seeds lists a seed twice: {list(evaluation.seeds)}")
    from sonic.rouge.run import COLD_CANDIDATES

    if evaluation.cold_candidates not in COLD_CANDIDATES:
        raise SonicError(f"{where}: [evaluation] cold_candidates must be one of {', '.join(COLD_CANDIDATES)}, "
                         f"got {evaluation.cold_candidates!r}")


def _resolve_embedders(study: Study, where: str) -> tuple[tuple[str, ...], dict, dict, dict]:
    """Each name built through the registry: (resolved names in file order, descriptions, modalities, modules)."""
    from sonic.tails.base import EMBEDDERS

    resolved: dict[str, str] = {}
    descriptions, modalities, modules = {}, {}, {}
    for name, _ in study.embeddings.options:
        if name not in study.embeddings.names:
            raise SonicError(f"{where}: [embeddings.options] names '{name}', which is not in [embeddings] names; "
                             f"known: {', '.join(study.embeddings.names) or 'none'}")
    for name in study.embeddings.names:
        # an unknown name raises "unknown embedder ...; known: ...", an unknown option lists the known ones
        embedder = EMBEDDERS.create(name, **study.embeddings.options_for(name))
        if embedder.name in resolved:
            raise SonicError(f"{where}: embedders '{resolved[embedder.name]}' and '{name}' are both '{embedder.name}'")
        resolved[embedder.name] = name
        descriptions[embedder.name] = embedder.describe()
        modalities[embedder.name] = embedder.modality
        modules[embedder.name] = tuple(dict.fromkeys((*_catalogue_module(embedder.name), *class_modules(embedder))))
    return tuple(resolved), descriptions, modalities, modules


def _resolve_fusions(study: Study, embedders: tuple[str, ...], where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each fusion's parts, by the names the registry gave them (a part is written as in names, or resolved)."""
    resolved = dict(zip(study.embeddings.names, embedders)) | {name: name for name in embedders}
    fusions = []
    for fusion in study.embeddings.fusions:
        parts = fusion.split("+")
        for part in parts:
            if part not in resolved:
                raise SonicError(
                    f"{where}: fusion '{fusion}' joins '{part}', which is not in [embeddings] names; "
                    f"known: {', '.join(embedders) or 'none'}"
                )
        if len(parts) < 2:
            raise SonicError(
                f"{where}: fusion '{fusion}' must join two or more embedders with '+', e.g. 'mfcc_104+lyrics'"
            )
        names = tuple(resolved[part] for part in parts)
        fusions.append(("+".join(names), names))
    return tuple(fusions)


def _check_recommenders(study: Study, where: str) -> tuple[dict[str, bool], dict[str, tuple[str, ...]]]:
    from sonic.rouge.base import RECOMMENDERS

    if not study.recommenders:
        known = ", ".join(RECOMMENDERS.names())
        raise SonicError(f"{where} names no recommender; add [[recommenders]] with name = one of {known}")
    content, modules = {}, {}
    for spec in study.recommenders:
        if spec.label in content:
            raise SonicError(f"{where}: two recommenders have the label '{spec.label}'; give each a unique label")
        model = RECOMMENDERS.create(spec.name, **spec.option_dict)  # unknown names and options raise here
        check_search(spec, where)
        content[spec.label] = bool(model.content)
        modules[spec.label] = class_modules(model)
    return content, modules


def _check_search_objective(study: Study, where: str) -> None:
    """A search maximises an accuracy metric at one of the study's ks (set or not, it is checked when given)."""
    from sonic.rouge.metrics import METRIC_NAMES

    evaluation = study.evaluation
    if evaluation.search_metric is not None and evaluation.search_metric not in METRIC_NAMES:
        raise UnknownNameError(f"{where}: unknown search_metric '{evaluation.search_metric}' (a search maximises "
                               f"an accuracy metric); known: {', '.join(METRIC_NAMES)}")
    metric, k = study.search_objective()
    if any(spec.search is not None for spec in study.recommenders) and k not in evaluation.ks:
        raise SonicError(f"{where}: a search maximises {metric}@{k} on val, but {k} is not one of the evaluation "
                         f"ks {list(evaluation.ks)}; set [evaluation] search_k to one of them")


def _catalogue_module(name: str) -> tuple[str, ...]:
    """The module the embedder catalogue loads for ``name`` (none for a name registered outside it)."""
    from sonic.tails.base import CATALOGUE

    for entry in CATALOGUE:
        if entry.name == name or (entry.family and name.rpartition("_")[0] == entry.name.removesuffix("_<N>")):
            return (entry.module,)
    return ()


def class_modules(part: Any) -> tuple[str, ...]:
    """The sonic modules defining ``part``'s class and its base classes (the code a registry entry runs)."""
    return tuple(dict.fromkeys(cls.__module__ for cls in type(part).__mro__
                               if cls.__module__.split(".")[0] == "sonic"))


def _restricted_tables(study: Study, written: dict[str, str], fusions, content: dict[str, bool],
                       where: str) -> dict[str, tuple[str, ...]]:
    """Each recommender's ``embeddings``, resolved to table names (as written in names, or as resolved)."""
    names = {as_written: name for name, as_written in written.items()} | {name: name for name in written}
    for fusion, parts in fusions:
        names[fusion] = fusion
    for fusion in study.embeddings.fusions:  # a fusion as written in the file
        resolved = "+".join(names.get(part, part) for part in fusion.split("+"))
        if resolved in names:
            names[fusion] = resolved
    restricted = {}
    for spec in study.recommenders:
        if not spec.embeddings:
            continue
        if not content[spec.label]:
            raise SonicError(f"{where}: recommender '{spec.label}' uses no embedding, so it takes no embeddings = [...]")
        for name in spec.embeddings:
            if name not in names:
                raise SonicError(f"{where}: recommender '{spec.label}' names embedding '{name}', which is not in "
                                 f"[embeddings] names or fusions; known: {', '.join(dict.fromkeys(names.values()))}")
        restricted[spec.label] = tuple(dict.fromkeys(names[name] for name in spec.embeddings))
    return restricted


def _check_data(study: Study, where: str, *, needs_audio: bool, needs_music4all: bool) -> None:
    data = study.data
    if not data.events.is_file():
        raise SonicError(f"{where}: events file '{data.events}' does not exist")
    if needs_audio:
        if data.audio is None:
            raise SonicError(f"{where}: audio embedders need [data] audio = the folder of audio files")
        if not data.audio.is_dir():
            raise SonicError(f"{where}: audio folder '{data.audio}' does not exist")
    if needs_music4all and data.music4all is None:
        raise SonicError(f"{where}: lyrics and metadata embedders need [data] music4all = the Music4All folder")
    if data.music4all is not None and not data.music4all.is_dir():
        raise SonicError(f"{where}: Music4All folder '{data.music4all}' does not exist")
    if data.exclude is not None and not data.exclude.is_file():
        raise SonicError(f"{where}: exclude file '{data.exclude}' does not exist")
