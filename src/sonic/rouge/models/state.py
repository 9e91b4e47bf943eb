"""A fitted recommender on disk: ``model.json``, ``arrays.npz`` and, for torch models, ``weights.safetensors``.

``model.json`` names the recommender, its options and whatever small facts it needs; ``arrays.npz``
holds NumPy arrays saved without pickles (ids as fixed-width strings) and is read with
``allow_pickle=False``; torch weights are safetensors. Nothing read back can run code. The folder is
written beside its final place and swapped in whole (:func:`sonic.files.atomic_folder`), so a crash
never leaves half a model; a folder holding anything else is refused, never deleted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sonic.errors import DataError
from sonic.files import atomic_folder

MODEL_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"
WEIGHTS_FILE = "weights.safetensors"
MODEL_FILES = frozenset({MODEL_FILE, ARRAYS_FILE, WEIGHTS_FILE})
FORMAT_VERSION = 1


@dataclass(frozen=True)
class SavedModel:
    """What :func:`read_state` found: the options, extra facts, arrays and torch tensors (or None)."""

    name: str
    config: dict[str, Any]
    facts: dict[str, Any]
    arrays: dict[str, np.ndarray]
    tensors: dict[str, Any] | None


def write_state(
    directory: str | os.PathLike,
    name: str,
    config: Any,
    *,
    facts: Mapping[str, Any] | None = None,
    arrays: Mapping[str, np.ndarray] | None = None,
    tensors: Mapping[str, Any] | None = None,
) -> Path:
    """Write a fitted model to ``directory`` (replacing it whole); ``config`` is its options dataclass."""
    directory = Path(directory)
    with atomic_folder(directory, allowed=MODEL_FILES, what="saved model") as staging:
        payload = {"format": FORMAT_VERSION, "name": name, "config": asdict(config), "facts": dict(facts or {})}
        (staging / MODEL_FILE).write_text(json.dumps(payload, indent=2, default=str) + "\n")
        plain = {key: _plain(value) for key, value in (arrays or {}).items()}
        with open(staging / ARRAYS_FILE, "wb") as handle:
            np.savez(handle, **plain)
        if tensors is not None:
            from safetensors.torch import save_file

            save_file({key: value.detach().cpu().contiguous() for key, value in tensors.items()},
                      staging / WEIGHTS_FILE)  # fmt: skip
    return directory


def read_model_name(directory: str | os.PathLike) -> str:
    """The recommender name recorded in ``directory/model.json``."""
    return str(_read_json(Path(directory))["name"])


def read_state(directory: str | os.PathLike, name: str) -> SavedModel:
    """Read what :func:`write_state` wrote; a missing or foreign folder is a :class:`DataError`."""
    directory = Path(directory)
    payload = _read_json(directory)
    if payload.get("name") != name:
        raise DataError(f"model folder '{directory}' holds a {payload.get('name')!r} model, not {name!r}")
    arrays_path = directory / ARRAYS_FILE
    if not arrays_path.is_file():
        raise DataError(f"model folder '{directory}' has no {ARRAYS_FILE}; save the model again")
    with np.load(arrays_path, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    tensors = None
    if (directory / WEIGHTS_FILE).is_file():
        from safetensors.torch import load_file

        tensors = load_file(directory / WEIGHTS_FILE)
    return SavedModel(name, dict(payload.get("config", {})), dict(payload.get("facts", {})), arrays, tensors)


def _read_json(directory: Path) -> dict[str, Any]:
    path = directory / MODEL_FILE
    if not path.is_file():
        raise DataError(f"'{directory}' is not a saved model: it has no {MODEL_FILE}")
    try:
        payload = json.loads(path.read_text())
    except ValueError as error:
        raise DataError(f"'{path}' is not valid JSON ({error})") from None
    if not isinstance(payload, dict) or "name" not in payload:
        raise DataError(f"'{path}' does not describe a saved recommender (no 'name')")
    return payload


def _plain(value: np.ndarray) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == object:
        return array.astype(str)
    return array
