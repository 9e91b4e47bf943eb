"""One experiment run: fit a recommender on a split, recommend, evaluate, write the run folder.

The run folder (interfaces.md) holds ``config.json`` (model, options, embedding, shuffle, seed,
split folder and its settings, evaluated slices, ks, versions), ``recommendations.parquet``
(user_id, track_id, rank, score), ``per_user.parquet`` (user_id, metric, k, value, slice),
``metrics.json`` (``{"metrics": [{metric, k, slice, mean, ci_low, ci_high, n_users}, ...]}``,
accuracy and beyond-accuracy), ``curve.csv`` when the model trains, ``model/`` when the model
can save itself, and ``warnings.txt`` when there is something to warn about. Slices after the
validation period are predicted with the validation events as ``history`` (the protocol's keyword);
when a run holds lists made both ways, ``recommendations.parquet`` adds a bool ``history`` column.
Each slice ranks an explicit candidate set, recorded under ``slices`` in ``config.json``: val and the
hot test rank the model's train catalogue; a cold slice (:data:`COLD_SLICES`) ranks its cold tracks
(``cold_candidates="cold"``: the tracks of the slice, none of them in train) or every track of the split
(``"all"``), and a model that cannot score a track without train events (``cold_start`` False: the
collaborative models) is *unable* there: its metrics rows say ``status = "unable"`` with no value, never
a zero. When a run ranks several candidate sets, ``recommendations.parquet`` adds a ``candidates`` column.
The run folder is claimed before any data is read (:func:`sonic.files.output_folder`, kind ``run``:
new, empty, or a run folder sonic wrote; one writer; a read-only folder or a full disk refused at
once) and written whole under a temporary name, then swapped in (:func:`sonic.files.atomic_folder`),
so a killed run leaves no half folder and a file sonic did not write is never deleted.
:func:`run_models` runs several embeddings and seeds into a folder of kind ``runs``, skips runs
already finished with the same request (a rerun resumes; Ctrl-C says how many are kept), and adds
the over-seeds aggregate.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sonic.cream.data import read_split_folder
from sonic.errors import DataError, Interrupted, SonicError
from sonic.files import atomic_folder, atomic_path, output_folder, write_json
from sonic.manifest import base_manifest
from sonic.rouge.base import RECOMMENDERS, shuffled
from sonic.rouge.beyond import HEAD_FRACTION
from sonic.rouge.embeddings import load_embedding
from sonic.rouge.evaluate import MetricsReport, check_ks
from sonic.rouge.scoring import Catalogue, Scores, long_frame, over_seeds, score_lists
from sonic.rouge.shared import empty_lists

#: Users recommended for at once: a model's dense score block is (chunk, n_tracks).
CHUNK_USERS = 4096
#: What a run folder holds; anything else in it is refused rather than deleted when it is replaced.
RUN_FILES = frozenset({"config.json", "recommendations.parquet", "per_user.parquet", "metrics.json", "curve.csv",
                       "model", "warnings.txt"})  # fmt: skip
#: The kinds of output folder of one run, and of several (``OUT/<embedding>/seed-<seed>/``).
RUN_KIND, RUNS_KIND = "run", "runs"
#: Slices of tracks nobody played in train (tamm2025's cold test), and what their candidates can be.
COLD_SLICES = ("cold_test",)
COLD_CANDIDATES = ("cold", "all")
#: The ``status`` of a slice's metrics rows: scored, or unable (the model cannot rank the slice's tracks).
SCORED, UNABLE = "scored", "unable"


@dataclass(frozen=True)
class RunResult:
    """A finished run folder: its ``config``, aggregates (``metrics``) and ``per_user`` values."""

    out_dir: Path
    config: dict[str, Any]
    metrics: pd.DataFrame
    per_user: pd.DataFrame
    warnings: tuple[str, ...] = ()
    model_info: dict[str, Any] = field(default_factory=dict)

    @property
    def slices(self) -> list[str]:
        """The evaluated slices that were scored (an *unable* slice has no per-user values)."""
        unable = {name for name, info in self.config.get("slices", {}).items() if info.get("status") == UNABLE}
        return [name for name in self.config["modes"] if name not in unable]

    @cached_property
    def reports(self) -> dict[str, MetricsReport]:
        """The accuracy :class:`MetricsReport` of each slice, rebuilt from the per-user values."""
        from sonic.rouge.metrics import METRIC_NAMES

        ks = tuple(self.config["ks"])
        reports = {}
        for slice_name in self.slices:
            rows = self.per_user[(self.per_user["slice"] == slice_name) & self.per_user["metric"].isin(METRIC_NAMES)]
            wide = rows.pivot(index="user_id", columns=["metric", "k"], values="value").sort_index()
            values = {f"{name}@{k}": wide[(name, k)].to_numpy(np.float64) for name in METRIC_NAMES for k in ks}
            reports[slice_name] = MetricsReport(user_ids=wide.index.to_numpy(dtype=object), ks=ks, values=values)
        return reports

    @property
    def report(self) -> MetricsReport:
        """The report of the first evaluated slice."""
        return self.reports[self.slices[0]]


def run_model(
    model_name: str,
    split_dir: str | os.PathLike,
    *,
    embedding: str | os.PathLike | None = None,
    embeddings_dir: str | os.PathLike | None = None,
    mode: str | Sequence[str] = "val",
    ks: Iterable[int] = (10, 50),
    out_dir: str | os.PathLike,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    shuffle: bool = False,
    device: str = "auto",
    diversity_embedding: str | os.PathLike | None = None,
    beyond: bool = True,
    save_model: bool = True,
    cold_candidates: str = "cold",
) -> RunResult:
    """Fit ``model_name`` on the split's train events and evaluate it on each ``mode`` (slice).

    ``mode``: one split file stem or several (``val``, ``test``, ``cold_test``, any file of the
    split folder but train). ``embedding``: a ``.parquet`` path, a name in ``embeddings_dir``, or
    a fusion ``a+b``. ``options``: the model's options (typed values, or strings typed by its
    dataclass). ``shuffle``: permute the vectors across tracks (seeded by ``seed``), the control
    of a content model. ILD is measured in ``diversity_embedding``'s space, by default the
    (unshuffled) run embedding. ``beyond=False`` scores the accuracy metrics only (no coverage, novelty,
    ARP, long-tail share or ILD). Every evaluated user gets ``max(ks)`` tracks, train tracks excluded.
    ``save_model`` False leaves ``model/`` out of the folder (a study's search trials keep only their scores).
    ``cold_candidates``: what a cold slice ranks, ``"cold"`` (its own tracks, as the journal did) or
    ``"all"`` (every track of the split); see the module docstring.
    """
    request = _request(model_name, split_dir, embedding, embeddings_dir, mode, ks, seed, options, shuffle,
                       device, diversity_embedding, beyond, cold_candidates)
    model = _create_model(model_name, request["options"])
    if shuffle:
        _check_shuffle(model_name, model, embedding)
    with run_folder(out_dir):  # before any data is read
        return _run(model, model_name, request, split_dir, embedding=embedding, embeddings_dir=embeddings_dir,
                    seed=seed, shuffle=shuffle, device=device, diversity_embedding=diversity_embedding,
                    out_dir=Path(out_dir), save_model=save_model)


def run_folder(out_dir: str | os.PathLike):
    """Claim ``out_dir`` for one run (:func:`sonic.files.output_folder`, kind ``run``): new, empty, a run
    folder sonic wrote, or an older sonic's unmarked one (nothing but :data:`RUN_FILES`)."""
    return output_folder(out_dir, RUN_KIND, adopt=lambda entry: entry.name in RUN_FILES)


def _run(model, model_name, request, split_dir, *, embedding, embeddings_dir, seed, shuffle, device,
         diversity_embedding, out_dir: Path, save_model: bool = True) -> RunResult:
    """The body of :func:`run_model`, in its claimed folder."""
    beyond = request["beyond"]
    # Independent work overlaps on a second thread (Arrow, numpy and torch release the GIL): the split
    # is read while the embedding table is, and the evaluation catalogue built while the model fits.
    with ThreadPoolExecutor(1) as background:
        reading = background.submit(read_split_parts, split_dir, request["modes"])
        table = diversity = None
        if embedding is not None:
            table, embedding_info = load_embedding(embedding, embeddings_dir)
            diversity = table
        if shuffle:
            table = shuffled(table, seed)
        if diversity_embedding is not None:
            diversity, _ = load_embedding(diversity_embedding, embeddings_dir)
        train, parts, split_settings = reading.result()

        fit_validation = parts.get("val")
        if fit_validation is None and "val" in (folder := read_split_folder(split_dir)).paths:
            fit_validation = folder.read("val")
        wanted = beyond or request["cold_candidates"] == "all"  # the split's tracks: beyond metrics, all candidates
        counting = background.submit(Catalogue.from_split, train, list(parts.values())) if wanted else None
        model.fit(train, validation=fit_validation, item_embeddings=table, device=device, seed=seed)
        catalogue = None if counting is None else counting.result()

    train_users = pd.Index(np.sort(train["user_id"].astype(str).unique()))
    slices = _candidate_sets(model, parts, catalogue, table, request["cold_candidates"])
    lists, scored, warnings = [], [], []
    for group, history in _history_groups({name: parts[name] for name in parts if slices[name].ids is not False},
                                          fit_validation):
        for rule in dict.fromkeys(slices[name].rule for name in group):
            truths = {name: parts[name] for name in group if slices[name].rule == rule}
            candidates = slices[next(iter(truths))].ids
            users = np.sort(pd.unique(pd.concat([truth["user_id"] for truth in truths.values()]).astype(str)))
            known_history = None
            if history is not None:
                known_history = history[history["user_id"].astype(str).isin(users)]
                known_history = None if known_history.empty else known_history
            ids, scores, group_warnings = _recommend(model, users, train_users.get_indexer(users) >= 0,
                                                     max(request["ks"]), known_history, candidates)
            frame = long_frame(users, ids, scores)
            lists.append(frame.assign(history=known_history is not None, candidates=rule))
            scored.append(score_lists(users, ids, scores, truths, request["ks"], catalogue, diversity=diversity,
                                      beyond=beyond, recommendations=frame))
            warnings += group_warnings
    for name, chosen in slices.items():
        warnings += chosen.warnings
    if not lists:  # every slice unable: no list at all
        lists.append(long_frame(np.zeros(0, object), *empty_lists(0, 1)).assign(history=False, candidates=""))
    recommendations = pd.concat(lists, ignore_index=True)
    if not recommendations["history"].any():
        recommendations = recommendations.drop(columns="history")
    if recommendations["candidates"].nunique() < 2:
        recommendations = recommendations.drop(columns="candidates")
    scored = _with_unable(scored, [name for name, chosen in slices.items() if chosen.ids is False],
                          request["ks"], parts)

    model_info = model.describe()
    warnings = [*model_info.get("warnings", []), *warnings]
    config = base_manifest(
        "run",
        **request,
        embedding=None if embedding is None else embedding_info,
        split={"dir": str(split_dir), "settings": split_settings},
        long_tail={"head_fraction": HEAD_FRACTION, "popularity": "distinct train users per track"},
        model_info=model_info,
        n_users={name: int(truth["user_id"].nunique()) for name, truth in parts.items()},
        slices={name: chosen.record(model_info) for name, chosen in slices.items()},
    )
    _write_run_folder(out_dir, config, recommendations, scored, model, warnings, save_model=save_model)
    return RunResult(out_dir, config, scored.aggregates, scored.per_user, tuple(warnings), model_info)


@dataclass(frozen=True)
class RunSet:
    """The runs of :func:`run_models` and, per embedding with several seeds, the over-seeds aggregate."""

    runs: list[RunResult]
    over_seeds: dict[str, pd.DataFrame]


def run_models(
    model_name: str,
    split_dir: str | os.PathLike,
    *,
    embeddings: Sequence[str | os.PathLike | None] = (None,),
    seeds: Sequence[int] = (0,),
    out_dir: str | os.PathLike,
    **settings: Any,
) -> RunSet:
    """:func:`run_model` for every embedding and seed; ``settings`` are its other keywords.

    One embedding and one seed: ``out_dir`` is the run folder. Otherwise each run goes to
    ``out_dir/<embedding>/seed-<seed>/`` and, with several seeds, ``out_dir/<embedding>/over_seeds.csv``
    holds the mean over seeds with its t-interval. A run folder whose config already records the
    same request is read back instead of run again, so a killed batch resumes where it stopped.
    """
    embeddings, seeds = list(embeddings) or [None], list(dict.fromkeys(seeds)) or [0]
    single = len(embeddings) == 1 and len(seeds) == 1
    if single:
        return _run_models(model_name, split_dir, embeddings, seeds, single, out_dir, settings)
    with output_folder(out_dir, RUNS_KIND, adopt=_is_runs_entry):
        return _run_models(model_name, split_dir, embeddings, seeds, single, out_dir, settings)


def _is_runs_entry(entry: Path) -> bool:
    """Whether ``entry`` of an unmarked folder is an older sonic's ``<embedding>/`` of ``seed-<seed>/`` runs."""
    return entry.is_dir() and all(child.name == "over_seeds.csv" or (child.is_dir() and child.name.startswith("seed-"))
                                  for child in entry.iterdir())  # fmt: skip


def _run_models(model_name, split_dir, embeddings, seeds, single, out_dir, settings) -> RunSet:
    runs, aggregates = [], {}
    total = len(embeddings) * len(seeds)
    for embedding in embeddings:
        label = "none" if embedding is None else Path(str(embedding)).name.removesuffix(".parquet")
        group = []
        for seed in seeds:
            folder = Path(out_dir) if single else Path(out_dir) / label / f"seed-{seed}"
            wanted = _request(model_name, split_dir, embedding, settings.get("embeddings_dir"),
                              settings.get("mode", "val"), settings.get("ks", (10, 50)), seed,
                              settings.get("options"), settings.get("shuffle", False), settings.get("device", "auto"),
                              settings.get("diversity_embedding"), settings.get("beyond", True),
                              settings.get("cold_candidates", "cold"))
            done = read_run(folder) if _finished_with(folder, wanted) else None
            try:
                group.append(done or run_model(model_name, split_dir, embedding=embedding, seed=seed, out_dir=folder,
                                               **settings))
            except KeyboardInterrupt:
                if single:
                    raise
                finished = len(runs) + len(group)
                raise Interrupted(f"{finished} of {total} runs are finished in '{out_dir}'; run the same command "
                                  f"again to continue") from None
        runs += group
        if len(seeds) > 1:
            aggregate = over_seeds([run.metrics for run in group])
            _write_csv(Path(out_dir) / label / "over_seeds.csv", aggregate)
            aggregates[label] = aggregate
    return RunSet(runs=runs, over_seeds=aggregates)


def read_run(run_dir: str | os.PathLike) -> RunResult:
    """Read a run folder written by :func:`run_model`; a missing or partial folder is a :class:`DataError`."""
    run_dir = Path(run_dir)
    needed = ("config.json", "metrics.json", "per_user.parquet")
    missing = [name for name in needed if not (run_dir / name).is_file()]
    if missing:
        raise DataError(f"'{run_dir}' is not a run folder (no {missing[0]}); write one with `sonic run-model`")
    try:
        config = json.loads((run_dir / "config.json").read_text())
        metrics = pd.DataFrame(json.loads((run_dir / "metrics.json").read_text())["metrics"])
        per_user = pd.read_parquet(run_dir / "per_user.parquet")
    except (ValueError, KeyError, OSError) as error:
        raise DataError(f"run folder '{run_dir}' is damaged ({type(error).__name__}: {error})") from None
    warnings_path = run_dir / "warnings.txt"
    warnings = tuple(warnings_path.read_text().splitlines()) if warnings_path.is_file() else ()
    metrics[["mean", "ci_low", "ci_high"]] = metrics[["mean", "ci_low", "ci_high"]].astype(np.float64)
    return RunResult(run_dir, config, metrics, per_user, warnings, config.get("model_info", {}))


def read_split_parts(
    split_dir: str | os.PathLike, modes: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], dict[str, Any]]:
    """(train events, {mode: events}, the split's ``split.json``) of a split folder
    (:func:`sonic.cream.data.read_split_folder`).

    Any split file but train can be evaluated (``cold_test`` included); an absent one is a
    :class:`DataError` naming the files the folder holds.
    """
    folder = read_split_folder(split_dir)
    if "train" not in folder.paths:
        raise DataError(f"split folder '{folder.directory}' has no train.parquet; write it with `sonic data-split`")
    for mode in modes:
        if mode == "train" or mode not in folder.paths:
            choices = ", ".join(name for name in folder.parts if name != "train") or "none"
            raise DataError(f"split folder '{folder.directory}' has no {mode} events to evaluate; it holds: {choices}")
    return folder.read("train"), {mode: folder.read(mode) for mode in modes}, folder.settings


def _request(model_name, split_dir, embedding, embeddings_dir, mode, ks, seed, options, shuffle, device,
             diversity_embedding, beyond=True, cold_candidates="cold") -> dict[str, Any]:
    """What defines a run (checked before any work): the config's identity for resuming."""
    modes = [mode] if isinstance(mode, str) else list(dict.fromkeys(mode))
    if not modes:
        raise SonicError("name at least one split file to evaluate (--mode val, test, cold_test...)")
    if cold_candidates not in COLD_CANDIDATES:
        raise SonicError(f"cold candidates must be one of {', '.join(COLD_CANDIDATES)}, got {cold_candidates!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise SonicError(f"seed must be an integer, got {seed!r}")
    return {
        "model": RECOMMENDERS.resolve(model_name),  # an alias (bert) is recorded as the name it stands for
        "options": _typed_model_options(model_name, options or {}),
        "embedding_name": None if embedding is None else str(embedding),
        "embeddings_dir": None if embeddings_dir is None else str(embeddings_dir),
        "shuffle": bool(shuffle),
        "seed": int(seed),
        "device": device,
        "split_dir": str(split_dir),
        "modes": modes,
        "ks": list(check_ks(ks)),
        "diversity_embedding": None if diversity_embedding is None else str(diversity_embedding),
        "beyond": bool(beyond),
        "cold_candidates": cold_candidates,
    }


def _typed_model_options(model_name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Options typed by the model's dataclass (string values converted); unknown keys listed."""
    from dataclasses import asdict, is_dataclass

    from sonic.rouge.options import typed_options

    default = RECOMMENDERS.create(model_name)  # an unknown model name fails here, listing the known ones
    config = getattr(default, "config", None)
    if not is_dataclass(config):
        if options:
            raise SonicError(f"{model_name} takes no options; got {', '.join(options)}")
        return {}
    strings = {key: value for key, value in options.items() if isinstance(value, str)}
    typed = {**options, **typed_options(type(config), strings, model_name)}
    RECOMMENDERS.create(model_name, **typed)  # the dataclass checks the values
    return {key: value for key, value in asdict(type(config)(**typed)).items() if key in typed}


def _create_model(model_name: str, options: Mapping[str, Any]) -> Any:
    return RECOMMENDERS.create(model_name, **options)


def _check_shuffle(model_name: str, model: Any, embedding: Any) -> None:
    """Refuse ``--shuffle`` without an embedding, or for a model that uses none (before any work)."""
    if not getattr(model, "content", False):
        raise SonicError(f"--shuffle is a control for content models; {model_name} does not use embeddings")
    if embedding is None:
        raise SonicError(f"--shuffle permutes embeddings across tracks; {model_name} was given no --embedding")


def _history_groups(
    parts: Mapping[str, pd.DataFrame], validation: pd.DataFrame | None
) -> list[tuple[list[str], pd.DataFrame | None]]:
    """The slices scored without history (val) and those scored with the validation events as history.

    A slice after the validation period (test, cold_test) is predicted from train plus the user's
    validation events (leave-last-out's second-to-last track); where val and test users differ
    (the Tamm protocols), no test user has validation events and nothing changes.
    """
    plain = [name for name in parts if validation is None or name == "val"]
    later = [name for name in parts if name not in plain]
    return [(group, history) for group, history in ((plain, None), (later, validation)) if group]


@dataclass(frozen=True)
class _CandidateSet:
    """What one slice ranks: ``rule`` train (the model's catalogue: ``ids`` None), cold or all (``ids`` the
    tracks), or ``ids`` False: the model cannot rank the slice (unable); ``n_with_vector``: how many of
    ``ids`` the model can score; ``warnings`` to report."""

    rule: str
    ids: np.ndarray | None | bool
    n_with_vector: int | None = None
    warnings: tuple[str, ...] = ()

    def record(self, model_info: Mapping[str, Any]) -> dict[str, Any]:
        """The slice's entry in ``config.json``: candidates, their counts and the status."""
        if self.ids is False:
            return {"candidates": self.rule, "status": UNABLE,
                    "reason": "the model cannot score a track without train events"}
        if self.ids is None:
            return {"candidates": self.rule, "status": SCORED, "n_candidates": model_info.get("n_catalogue_tracks")}
        return {"candidates": self.rule, "status": SCORED, "n_candidates": len(self.ids),
                "n_candidates_scorable": self.n_with_vector}


def _candidate_sets(model: Any, parts: Mapping[str, pd.DataFrame], catalogue: Catalogue, table: Any,
                    rule: str) -> dict[str, _CandidateSet]:
    """Each evaluated slice's :class:`_CandidateSet` (see the module docstring)."""
    sets = {}
    for name, truth in parts.items():
        if name not in COLD_SLICES:
            sets[name] = _CandidateSet("train", None)
            continue
        if not getattr(model, "cold_start", False):
            sets[name] = _CandidateSet(rule, False)
            continue
        if rule == "cold":
            ids = np.sort(truth["track_id"].astype(str).unique()).astype(object)
        else:
            ids = np.asarray(catalogue.track_ids, dtype=object)
        with_vector = len(ids)
        warnings: tuple[str, ...] = ()
        if getattr(model, "content", False) and table is not None:
            with_vector = int(table.lookup(ids.astype(str))[1].sum())
            if with_vector < len(ids):
                warnings = (f"{len(ids) - with_vector} of the {len(ids)} {name} candidates ({rule}) have no vector "
                            "in the embedding table; they are never recommended",)
        sets[name] = _CandidateSet(rule, ids, with_vector, warnings)
    return sets


def _with_unable(scored: list[Scores], unable: Sequence[str], ks: Sequence[int],
                 parts: Mapping[str, pd.DataFrame]) -> Scores:
    """The slices' scores in one, every aggregate row with its ``status``; each unable slice gets a row per
    metric and k (those of the scored slices, else the accuracy metrics) with no value and status unable."""
    from sonic.rouge.metrics import METRIC_NAMES
    from sonic.rouge.scoring import AGGREGATE_COLUMNS, PER_USER_COLUMNS

    per_user = [s.per_user for s in scored] or [pd.DataFrame(columns=list(PER_USER_COLUMNS))]
    aggregates = pd.concat([s.aggregates for s in scored], ignore_index=True) if scored else pd.DataFrame(
        columns=list(AGGREGATE_COLUMNS))
    aggregates = aggregates.assign(status=SCORED)
    cells = list(dict.fromkeys(zip(aggregates["metric"], aggregates["k"].astype(int))))
    cells = cells or [(name, int(k)) for name in METRIC_NAMES for k in ks]
    rows = [(name, k, slice_name, np.nan, np.nan, np.nan, 0, UNABLE) for slice_name in unable for name, k in cells]
    if rows:
        aggregates = pd.concat([aggregates, pd.DataFrame(rows, columns=[*AGGREGATE_COLUMNS, "status"])],
                               ignore_index=True)
    return Scores(pd.concat(per_user, ignore_index=True), aggregates,
                  {name: report for s in scored for name, report in s.reports.items()})


def _recommend(
    model: Any, users: np.ndarray, known: np.ndarray, k: int, history: pd.DataFrame | None,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Lists for ``users`` (n,) in chunks of :data:`CHUNK_USERS`; users absent from train get empty lists.
    ``candidates``: the tracks to rank (None: the model's catalogue)."""
    ids, scores = empty_lists(len(users), k)
    rows = np.flatnonzero(known)
    extra = {} if history is None else {"history": history}
    if candidates is not None:
        extra["candidates"] = candidates
    for start in range(0, len(rows), CHUNK_USERS):
        chunk = rows[start : start + CHUNK_USERS]
        ids[chunk], scores[chunk] = model.recommend(users[chunk], k, exclude_seen=True, **extra)
    warnings = []
    if not known.all():
        warnings.append(f"{int((~known).sum())} of {len(users)} evaluated users have no train events "
                        f"(e.g. '{users[~known][0]}'); they get empty lists and score 0")
    return ids, scores, warnings


def _write_run_folder(out: Path, config, recommendations, scored, model, warnings, *, save_model: bool = True) -> None:
    """Everything into a temporary folder beside ``out``, then swapped in whole (:func:`sonic.files.atomic_folder`)."""
    with atomic_folder(out, allowed=RUN_FILES, what="run") as partial:
        write_json(partial / "config.json", config)
        recommendations.to_parquet(partial / "recommendations.parquet", index=False)
        scored.per_user.to_parquet(partial / "per_user.parquet", index=False)
        records = scored.aggregates.astype(object).where(scored.aggregates.notna(), None).to_dict("records")
        write_json(partial / "metrics.json", {"metrics": records})
        curve = getattr(model, "curve", None)
        if isinstance(curve, pd.DataFrame):
            curve.to_csv(partial / "curve.csv", index=False)
        if save_model and callable(getattr(model, "save", None)):
            model.save(partial / "model")
        if warnings:
            (partial / "warnings.txt").write_text("\n".join(warnings) + "\n")


def _finished_with(folder: Path, request: Mapping[str, Any]) -> bool:
    """Whether ``folder`` is a complete run folder made for exactly ``request``."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    # a folder from before the beyond switch scored the beyond-accuracy metrics
    same = all(config.get(key, True if key == "beyond" else None) == value for key, value in request.items())
    return same and (folder / "metrics.json").is_file() and (folder / "per_user.parquet").is_file()


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False)
