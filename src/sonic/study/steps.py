"""A study as steps in dependency order, each identified by a hash of its inputs and configuration.

Steps: one **split** per split seed, one **embed** per embedder, and one **run** per (seed,
recommender, embedding or fusion), evaluated on every mode. A step's hash covers its kind, its settings,
the fingerprints of the files it reads (size and modification time) and the hashes of the steps it
needs, so changing anything upstream redoes everything downstream and nothing else. When a step
finishes, its record ``OUT/steps/<kind>.<name>.json`` (hash, status, seconds, warnings) is written
last, atomically: a step whose record holds the same hash is done and is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sonic.study.check import AUDIO_MODALITIES, Resolved

NO_EMBEDDING = "-"
STEPS_DIR = "steps"


@dataclass(frozen=True)
class Step:
    """One unit of work. ``key`` is unique in the study (``run/knn-mfcc_104-seed42``)."""

    kind: str  # split, embed or run
    name: str
    needs: tuple[str, ...]  # keys of the steps whose output this one reads
    settings: dict[str, Any] = field(hash=False)
    inputs: tuple[Path, ...] = ()  # files (or folders) read directly, fingerprinted into the hash

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    def record_path(self, out_dir: Path) -> Path:
        return out_dir / STEPS_DIR / f"{self.kind}.{self.name}.json"


def run_name(label: str, embedding: str, seed: int) -> str:
    """The readable id of a run: ``<label>-<embedding>-seed<seed>`` (``-`` when no embedding)."""
    return f"{label}-{embedding}-seed{seed}"


def plan_steps(resolved: Resolved) -> list[Step]:
    """Every step of the study, each after the steps it needs.

    A run fits one recommender on one split with one embedding (or none) and one seed, and is
    evaluated on every mode of ``[evaluation]`` (val, test, cold_test) at once.
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
        steps.append(Step("embed", name, (), settings, inputs))
    parts = dict(resolved.fusions)
    for seed in evaluation.seeds:
        split_key = f"split/seed-{study.split_seed_for(seed)}"
        for spec in study.recommenders:
            tables = resolved.tables if resolved.content[spec.label] else (NO_EMBEDDING,)
            for table in tables:
                table_keys = () if table == NO_EMBEDDING else tuple(f"embed/{p}" for p in parts.get(table, (table,)))
                settings = {
                    "recommender": spec.name, "label": spec.label, "options": spec.option_dict,
                    "shuffle": spec.shuffle, "embedding": table, "modes": list(evaluation.modes),
                    "ks": list(evaluation.ks), "seed": seed,
                }  # fmt: skip
                steps.append(Step("run", run_name(spec.label, table, seed), (split_key, *table_keys), settings))
    return steps


def step_hash(step: Step, upstream: dict[str, str]) -> str:
    """sha256 of the step's kind, settings, input fingerprints and the hashes of the steps it needs."""
    from sonic import __version__

    payload = {
        "kind": step.kind,
        "settings": step.settings,
        "inputs": [fingerprint(path) for path in step.inputs],
        "needs": {key: upstream[key] for key in step.needs},
        "sonic": __version__,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


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
    """A step record, or None when there is none (or it is unreadable: the step is then redone)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _plain(section: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {key: str(value) if isinstance(value, os.PathLike) else value for key, value in asdict(section).items()}
