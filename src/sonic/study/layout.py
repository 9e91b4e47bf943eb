"""The names inside a study's output folder, and reading what a study run left there.

::

    .sonic-output.json          sonic's marker: this folder holds a study (or the demo)
    study.resolved.toml         the study as run (absolute paths), written by sonic
    split/seed-<n>/             split folders
    embeddings/<name>.parquet   embedding tables
    runs/<run>/                 run folders
    steps/<kind>.<name>.json    one record per finished or failed step
    results/                    the results store (:mod:`sonic.study.store`)
    results.csv                 the results table
    report/                     the report (``sonic report``)

A study file a person keeps in the folder (``OUT/study.toml``) is read, never written: sonic writes
the resolved study beside it. An earlier sonic wrote its resolved study to ``study.toml``; such a
folder is still read, and adopted as a study folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sonic.errors import SonicError

#: Output-folder kind of a study (``sonic.files.output_folder``), and the kinds a study may be added to.
KIND = "study"
ACCEPTS = ("demo",)
RESOLVED_STUDY = "study.resolved.toml"
LEGACY_STUDY = "study.toml"
STEPS_DIR = "steps"
STORE_DIR = "results"
RESULTS_CSV = "results.csv"
#: Everything a study run (of this or an earlier sonic) writes directly in its folder.
OWN_NAMES = frozenset({RESOLVED_STUDY, LEGACY_STUDY, "split", "embeddings", "runs", STEPS_DIR, STORE_DIR,
                       RESULTS_CSV, "report"})  # fmt: skip


def record_path(out_dir: str | os.PathLike, kind: str, name: str) -> Path:
    """Where the record of step ``kind/name`` lives: ``OUT/steps/<kind>.<name>.json``."""
    return Path(out_dir) / STEPS_DIR / f"{kind}.{name}.json"


def load_record(path: str | os.PathLike) -> tuple[dict[str, Any] | None, str | None]:
    """``(record, problem)`` of a step record: ``(None, None)`` when there is none, ``(None, sentence)``
    when it cannot be read or is not a JSON object (cut short by a kill: the step is then not done)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError):
        return None, f"its record {STEPS_DIR}/{path.name} cannot be read"
    try:
        record = json.loads(text)
    except ValueError:
        return None, f"its record {STEPS_DIR}/{path.name} is not valid JSON (cut short?)"
    if not isinstance(record, dict):
        return None, f"its record {STEPS_DIR}/{path.name} is not a JSON object"
    return record, None


def is_done(record: dict[str, Any] | None, digest: str | None = None) -> bool:
    """Whether ``record`` says its step finished (with hash ``digest``, when given)."""
    return (record is not None and record.get("status") == "done" and isinstance(record.get("hash"), str)
            and (digest is None or record["hash"] == digest))  # fmt: skip


def study_file_of(out_dir: str | os.PathLike) -> Path:
    """The study a study's output folder was run with: ``study.resolved.toml``, or an earlier sonic's
    ``study.toml``; one sentence when the folder holds neither."""
    out_dir = Path(out_dir)
    for name in (RESOLVED_STUDY, LEGACY_STUDY):
        if (out_dir / name).is_file():
            return out_dir / name
    raise SonicError(f"'{out_dir}' is not a study's output folder (no {RESOLVED_STUDY}); "
                     "run `sonic experiment` first")


def read_output_study(out_dir: str | os.PathLike):
    """The :class:`~sonic.study.config.Study` of a study's output folder (see :func:`study_file_of`)."""
    from sonic.study.config import read_study

    return read_study(study_file_of(out_dir))


def adopts(study_source: Path | None = None):
    """``adopt`` for :func:`sonic.files.output_folder`: an unmarked folder holding only what a study
    writes (an earlier sonic's study), and the study file being run, is a study's folder."""
    source = _resolved(study_source) if study_source is not None else None

    def adopt(entry: Path) -> bool:
        return entry.name in OWN_NAMES or (source is not None and _resolved(entry) == source)

    return adopt


def _resolved(path: Path) -> Path:
    try:
        return Path(path).resolve()
    except OSError:
        return Path(path).absolute()
