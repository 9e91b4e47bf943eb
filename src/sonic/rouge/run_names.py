"""The default run folder of ``sonic run-model``: a readable name that stays unique for the request.

``runs/<model>-<embeddings>-<modes>-k<ks>-seed<seeds>[-shuffle][-<hash>]``:

- ``<model>``: the recommender's registered name (an alias resolved: ``bert`` -> ``bert4rec``);
- ``<embeddings>``: each ``--embedding`` as written (a path: its file name less ``.parquet``), joined by ``,``;
  ``none`` without one;
- ``<modes>``, ``<ks>``, ``<seeds>``: as given, joined by ``,`` (repeats dropped);
- ``-shuffle`` for the shuffle control;
- ``-<hash>``: the first 8 hex digits of the SHA-256 of everything else the request holds, added only when
  it holds something: any other keyword of :func:`sonic.rouge.run.run_model` not at its default (model
  options, a device other than ``auto``, a diversity embedding...), an embedding given as a path, a split
  folder other than ``split/`` or an embeddings folder other than ``embeddings/``.

So ``sonic run-model --model-name knn --embedding mfcc_104 --mode val --k 50`` writes
``runs/knn-mfcc_104-val-k50-seed0``, the same command again finds its own folder (and skips the finished
run), and any other request gets another folder. Characters other than letters, digits and ``._+,=-``
become ``_``; a name longer than :data:`MAX_STEM` characters is cut and always carries the hash.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sonic.project import EMBEDDINGS_DIR, RUNS_DIR, SPLIT_DIR, is_default

#: The longest readable part of a run folder's name.
MAX_STEM = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._+,=-]")
#: Keywords of run_model that are named in the readable part or are not settings of the run.
_NAMED = frozenset({"model_name", "split_dir", "embedding", "embeddings_dir", "mode", "ks", "seed", "out_dir",
                    "shuffle"})


def default_run_dir(
    model_name: str,
    *,
    embeddings: Sequence[str | os.PathLike | None] = (),
    mode: str | Sequence[str] = "val",
    ks: Sequence[int] = (10, 50),
    seeds: Sequence[int] = (0,),
    shuffle: bool = False,
    split_dir: str | os.PathLike | None = None,
    embeddings_dir: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike = RUNS_DIR,
    **settings: Any,
) -> Path:
    """The run folder for this request under ``runs_dir`` (see the module docstring for the rule).

    ``settings`` are the other keywords of :func:`sonic.rouge.run.run_model` (``options``, ``device``,
    ``diversity_embedding``...); one at its default value leaves the name as it is.
    """
    from sonic.rouge.base import RECOMMENDERS

    given = [embedding for embedding in embeddings if embedding is not None]
    parts = [
        RECOMMENDERS.resolve(model_name),
        ",".join(_table_name(embedding) for embedding in given) or "none",
        _joined([mode] if isinstance(mode, str) else mode),
        "k" + _joined(ks),
        "seed" + _joined(seeds),
        *(["shuffle"] if shuffle else []),
    ]
    stem = _UNSAFE.sub("_", "-".join(parts))
    asked = {key: _plain(value) for key, value in sorted(settings.items()) if not _is_default(key, value)}
    asked |= {key: value for key, value in {
        "embedding_paths": [str(Path(e).absolute()) for e in given if _is_path(e)],
        "split_dir": None if is_default(split_dir, SPLIT_DIR) else str(Path(split_dir).absolute()),
        "embeddings_dir": None if is_default(embeddings_dir, EMBEDDINGS_DIR) else str(Path(embeddings_dir).absolute()),
    }.items() if value}  # fmt: skip
    if len(stem) > MAX_STEM:
        asked["stem"] = stem
        stem = stem[:MAX_STEM]
    if asked:
        digest = hashlib.sha256(json.dumps(asked, sort_keys=True, default=str).encode()).hexdigest()[:8]
        stem = f"{stem}-{digest}"
    return Path(runs_dir) / stem


def _is_default(key: str, value: Any) -> bool:
    """Whether ``value`` is run_model's default for ``key`` (an unknown keyword never is; empty options are)."""
    from sonic.rouge.run import run_model

    if key in _NAMED:
        raise TypeError(f"default_run_dir takes {key!r} as its own keyword")
    parameter = inspect.signature(run_model).parameters.get(key)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return False
    empty = (None, {}, (), [])
    return value == parameter.default or (value in empty and parameter.default in empty)


def _plain(value: Any) -> Any:
    return {str(k): str(v) for k, v in sorted(value.items())} if isinstance(value, dict) else value


def _joined(values: Sequence[Any]) -> str:
    return ",".join(str(value) for value in dict.fromkeys(values))


def _is_path(embedding: str | os.PathLike) -> bool:
    text = str(embedding)
    return text.endswith(".parquet") or os.sep in text or "/" in text


def _table_name(embedding: str | os.PathLike) -> str:
    """The table an ``--embedding`` names: a path's file name, or the name (or fusion) as written."""
    return Path(embedding).name.removesuffix(".parquet") if _is_path(embedding) else str(embedding)
