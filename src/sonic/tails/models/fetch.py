"""``sonic fetch``: put the published weights of registered embedders into the local caches ahead of time.

For clusters whose compute nodes have no network and for air-gapped machines: fetch on a machine that
can reach the hub, then copy the Hugging Face cache (``HF_HOME``) and sonic's cache (``~/.cache/sonic``).

- hub models (MERT, Music2Vec, EncodecMAE, MuQ, MuQ-MuLan, MusicFM, DINO): exactly the files the
  model reads (its ``HUB_FILES``), into the Hugging Face cache, as a first ``sonic embed`` would;
- MusiCNN (``musicnn``, ``MSD_musicnn``...): the four checkpoints inside the ``musicnn==0.1.0`` wheel
  (:mod:`sonic.tails.models.musicnn_weights`).

:func:`fetch_status` says for each fetchable name whether its files are present, and where.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

from sonic.errors import SonicError
from sonic.tails.base import CATALOGUE, EMBEDDERS
from sonic.tails.models import musicnn_weights
from sonic.tails.models.hub import HubFiles, cached, download

#: Embedder names whose weights come from the musicnn wheel.
MUSICNN_NAMES = ("musicnn", *musicnn_weights.MODELS)


@dataclass(frozen=True)
class Fetched:
    """One fetchable name: whether its files are present and where (``where`` is None when absent)."""

    name: str
    present: bool
    where: str | None
    source: str


def hub_files(name: str) -> tuple[HubFiles, ...]:
    """The hub files embedder ``name`` reads (empty for names that download nothing from the hub)."""
    for entry in CATALOGUE:
        if entry.name == name:
            module = importlib.import_module(entry.module)
            return tuple(getattr(module, "HUB_FILES", {}).get(name, ()))
    return ()


def fetchable() -> list[str]:
    """Every registered name ``sonic fetch`` can fetch, in the catalogue's order."""
    names = []
    for entry in CATALOGUE:
        if entry.name in MUSICNN_NAMES or (not entry.family and _declares_hub_files(entry.module, entry.name)):
            names.append(entry.name)
    return names


def _declares_hub_files(module: str, name: str) -> bool:
    try:
        return name in getattr(importlib.import_module(module), "HUB_FILES", {})
    except ImportError:
        return False


def fetch_weights(
    name: str, *, revision: str | None = None, wheel: str | os.PathLike | None = None
) -> list[Path]:
    """Put the weights of embedder ``name`` (or an alias: ``MERT``) into the local cache; return the folders
    that hold them."""
    name = EMBEDDERS.resolve(name) if name in EMBEDDERS else name
    known = fetchable()
    if name not in known:
        raise SonicError(f"nothing to fetch for {name!r}; fetchable: {', '.join(known)}")
    if name in MUSICNN_NAMES:
        if revision is not None:
            raise SonicError(f"{name} comes from the musicnn=={musicnn_weights.VERSION} wheel, which has no revision")
        return [musicnn_weights.fetch_musicnn(wheel=wheel)]
    specs = hub_files(name)
    return [download(spec, name=name, revision=revision if i == 0 else None).folder for i, spec in enumerate(specs)]


def fetch_status() -> list[Fetched]:
    """For each fetchable name: present or not, and where (never asks the network)."""
    status = []
    for name in fetchable():
        if name in MUSICNN_NAMES:
            model = "MSD_musicnn" if name == "musicnn" else name
            folder = musicnn_weights.cached_model(model)
            status.append(Fetched(name, folder is not None, str(folder) if folder else None,
                                  f"musicnn=={musicnn_weights.VERSION} wheel"))  # fmt: skip
            continue
        found = [cached(spec) for spec in hub_files(name)]
        present = all(found)
        where = ", ".join(str(checkpoint.folder) for checkpoint in found if checkpoint) if present else None
        status.append(Fetched(name, present, where, ", ".join(spec.repo for spec in hub_files(name))))
    return status
