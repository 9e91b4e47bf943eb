"""A study as steps in dependency order, each identified by a hash of what it is made of.

Steps: one **split** per split seed, one **embed** per embedder, one **search** per (recommender with a
``search``, embedding, split) whose **trial** steps choose its options on val (:mod:`sonic.study.tuning`),
and one **run** per (seed, recommender, embedding or fusion), evaluated on every mode. A step's **identity**
is its kind, its settings, the fingerprints of the files it reads (size and modification time), the hashes of the steps
it needs, sonic's version and the sha256 of every source file its code reaches (:mod:`sonic.study.code`);
its hash is the sha256 of that identity. Changing anything upstream, or the code a step runs, redoes
everything downstream and nothing else. When a step finishes, its record
``OUT/steps/<kind>.<name>.json`` (hash, identity, status, seconds, warnings) is written last,
atomically: a step whose record holds the same hash and status done is done and is skipped; when the
hashes differ, :func:`why_redone` says why from the two identities.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sonic.study.check import AUDIO_MODALITIES, Resolved
from sonic.study.code import SourceGraph, step_code
from sonic.study.layout import STEPS_DIR, record_path

NO_EMBEDDING = "-"
__all__ = ["NO_EMBEDDING", "STEPS_DIR", "Step", "fingerprint", "plan_steps", "read_record", "run_name",
           "search_name", "step_hash", "step_identity", "why_redone"]


@dataclass(frozen=True)
class Step:
    """One unit of work. ``key`` is unique in the study (``run/knn-mfcc_104-seed42``)."""

    kind: str  # split, embed, search, trial or run
    name: str
    needs: tuple[str, ...]  # keys of the steps whose output this one reads
    settings: dict[str, Any] = field(hash=False)
    inputs: tuple[Path, ...] = ()  # files (or folders) read directly, fingerprinted into the hash
    modules: tuple[str, ...] = ()  # sonic modules of the part it builds (its embedder's or recommender's classes)

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    def record_path(self, out_dir: Path) -> Path:
        return record_path(out_dir, self.kind, self.name)


def run_name(label: str, embedding: str, seed: int) -> str:
    """The readable id of a run: ``<label>-<embedding>-seed<seed>`` (``-`` when no embedding)."""
    return f"{label}-{embedding}-seed{seed}"


def search_name(label: str, embedding: str, split_seed: int) -> str:
    """The readable id of a search: ``<label>-<embedding>-split<split seed>``."""
    return f"{label}-{embedding}-split{split_seed}"


def plan_steps(resolved: Resolved) -> list[Step]:
    """Every step of the study, each after the steps it needs.

    A run fits one recommender on one split with one embedding (or none) and one seed, and is
    evaluated on every mode of ``[evaluation]`` (val, test, cold_test) at once. A recommender with a
    ``search`` has its options chosen once per embedding and split, by a search step placed before its
    first run (its trials fit with that run's seed); every run on that split needs the search and runs
    with the chosen options (:func:`sonic.study.tuning.resolve_run`).
    """
    study = resolved.study
    data, embeddings, evaluation = study.data, study.embeddings, study.evaluation
    steps = []
    for split_seed in study.split_seeds():
        settings = {**_plain(study.split), "seed": split_seed}
        inputs = tuple(path for path in (data.events, data.exclude) if path is not None)
        steps.append(Step("split", f"seed-{split_seed}", (), settings, inputs))
    for name in resolved.embedders:
        audio = resolved.modalities[name] in AUDIO_MODALITIES
        offset, duration = resolved.windows.get(name, (embeddings.offset_seconds, embeddings.duration_seconds))
        window = {"offset_seconds": offset, "duration_seconds": duration}
        settings = {"embedder": name, "describe": resolved.descriptions[name], **(window if audio else {}),
                    **({"options": resolved.options[name]} if resolved.options.get(name) else {})}
        inputs = tuple(path for path in (data.audio if audio else data.music4all, data.exclude) if path is not None)
        steps.append(Step("embed", name, (), settings, inputs, resolved.embedder_modules.get(name, ())))
    parts = dict(resolved.fusions)
    searched: set[str] = set()
    for seed in evaluation.seeds:
        split_key = f"split/seed-{study.split_seed_for(seed)}"
        for spec in study.recommenders:
            tables = resolved.tables_of(spec.label) if resolved.content[spec.label] else (NO_EMBEDDING,)
            for table in tables:
                table_keys = () if table == NO_EMBEDDING else tuple(f"embed/{p}" for p in parts.get(table, (table,)))
                search_keys = ()
                if spec.search is not None:
                    search = search_name(spec.label, table, study.split_seed_for(seed))
                    if search not in searched:
                        searched.add(search)
                        steps.append(Step("search", search, (split_key, *table_keys),
                                          _search_settings(study, spec, table, seed),
                                          modules=resolved.recommender_modules.get(spec.label, ())))
                    search_keys = (f"search/{search}",)
                settings = {
                    "recommender": spec.name, "label": spec.label, "options": spec.option_dict,
                    "shuffle": spec.shuffle, "embedding": table, "modes": list(evaluation.modes),
                    "ks": list(evaluation.ks), "seed": seed, "cold_candidates": evaluation.cold_candidates,
                }  # fmt: skip
                steps.append(Step("run", run_name(spec.label, table, seed), (split_key, *table_keys, *search_keys),
                                  settings, modules=resolved.recommender_modules.get(spec.label, ())))
    return steps


def _search_settings(study: Any, spec: Any, table: str, seed: int) -> dict[str, Any]:
    """What a search step (and each of its trials) is: the recommender, its fixed options, the space, the
    sampler, the objective on val, and the seed its trials fit with."""
    metric, k = study.search_objective()
    return {
        "recommender": spec.name, "label": spec.label, "options": spec.option_dict, "shuffle": spec.shuffle,
        "embedding": table, "seed": seed, "space": spec.search.plain_space(),
        "sampler": spec.search.sampler_settings(), "trials": spec.search.trials,
        "objective": {"metric": metric, "k": k, "slice": "val"},
    }  # fmt: skip


def step_identity(step: Step, upstream: dict[str, str], graph: SourceGraph | None = None) -> dict[str, Any]:
    """What a step is made of: kind, settings, input fingerprints, the hashes of the steps it needs,
    sonic's version and ``code``, the sha256 of each source file it reaches (``graph``: this sonic's)."""
    from sonic import __version__

    graph = graph if graph is not None else SourceGraph()
    return {
        "kind": step.kind,
        "settings": json.loads(json.dumps(step.settings, default=str)),
        "inputs": [fingerprint(path) for path in step.inputs],
        "needs": {key: upstream[key] for key in step.needs},
        "sonic": __version__,
        "code": step_code(graph, step.kind, step.modules),
    }


def identity_hash(identity: dict[str, Any]) -> str:
    """sha256 of an identity (:func:`step_identity`) written as sorted JSON."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def step_hash(step: Step, upstream: dict[str, str], graph: SourceGraph | None = None) -> str:
    """The hash of the step's identity (:func:`step_identity`)."""
    return identity_hash(step_identity(step, upstream, graph))


def why_redone(record: dict[str, Any], identity: dict[str, Any]) -> str:
    """Why a step finished earlier (``record``) is not the step ``identity`` describes, in a few words:
    ``its code changed (sonic/rouge/metrics.py)``, ``its settings changed (ks)``..."""
    old = record.get("identity")
    if not isinstance(old, dict):
        return "it was made by an earlier sonic that recorded no code fingerprint"
    reasons = []
    if old.get("sonic") != identity["sonic"]:
        reasons.append(f"sonic changed from {old.get('sonic')} to {identity['sonic']}")
    old_code, code = old.get("code") or {}, identity["code"]
    changed = sorted(path for path in {*old_code, *code} if old_code.get(path) != code.get(path))
    if changed:
        reasons.append(f"its code changed ({_some(changed)})")
    old_settings, settings = old.get("settings") or {}, identity["settings"]
    keys = sorted(key for key in {*old_settings, *settings} if old_settings.get(key) != settings.get(key))
    if keys:
        reasons.append(f"its settings changed ({_some(keys)})")
    if old.get("inputs") != identity["inputs"]:
        before = {item.get("path"): item for item in old.get("inputs") or [] if isinstance(item, dict)}
        paths = [Path(item["path"]).name for item in identity["inputs"] if before.get(item["path"]) != item]
        reasons.append(f"its input changed ({_some(paths)})" if paths else "its inputs changed")
    old_needs, needs = old.get("needs") or {}, identity["needs"]
    upstream = [key for key in needs if old_needs.get(key) != needs[key]]
    if upstream:
        reasons.append(f"{_some(upstream)} changed")
    return "; ".join(reasons) or "its identity changed"


def _some(names: list[str], most: int = 3) -> str:
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def fingerprint(path: Path) -> dict[str, Any]:
    """Path, size and modification time of a file; for a folder, the same summed over its files."""
    path = Path(path)
    if path.is_dir():
        count, size, latest = 0, 0, 0
        for folder, _, names in os.walk(path):
            for name in names:
                if not name.startswith("."):
                    stat = os.stat(os.path.join(folder, name))
                    count, size, latest = count + 1, size + stat.st_size, max(latest, stat.st_mtime_ns)
        return {"path": str(path.resolve()), "files": count, "bytes": size, "latest_mtime_ns": latest}
    stat = path.stat()
    return {"path": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def read_record(path: Path) -> dict[str, Any] | None:
    """A step record, or None when there is none or it is unreadable (the step is then redone)."""
    from sonic.study.layout import load_record

    return load_record(path)[0]


def _plain(section: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {key: str(value) if isinstance(value, os.PathLike) else value for key, value in asdict(section).items()}
