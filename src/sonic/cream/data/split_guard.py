"""A split folder is replaced only by the same split: :func:`refuse_other_split`.

``sonic data-split`` run again with the same settings and input rewrites its folder (the input may have
changed); a folder holding a split made with other settings (protocol, dates, seed, input or exclude
file), or a split whose settings are unknown (no ``split.json``), is kept and the command refused in one
sentence, unless the user asks for the replacement (``--overwrite``). A folder that holds no split is
left to the output-folder rules of :func:`sonic.cream.data.split_file`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sonic.cream.data.split_files import MANIFEST_NAME, SPLIT_FILES, read_split_folder
from sonic.cream.data.splits import SplitConfig
from sonic.errors import SonicError


def refuse_other_split(
    out_dir: str | os.PathLike,
    config: SplitConfig,
    *,
    interactions: str | os.PathLike,
    exclude_file: str | os.PathLike | None = None,
) -> None:
    """Raise :class:`SonicError` when ``out_dir`` holds a split made otherwise than ``config`` from ``interactions``."""
    folder = Path(out_dir)
    if not folder.is_dir() or not any(entry.name in SPLIT_FILES for entry in folder.iterdir()):
        return
    recorded = read_split_folder(folder).settings
    if not recorded:
        raise SonicError(f"'{folder}' holds a split without its {MANIFEST_NAME}, so its settings are unknown; "
                         f"pass --overwrite to replace it, or --out for another folder")
    wanted = {**config.to_dict(), "input": _path(interactions), "exclude_file": _path(exclude_file)}
    had = {**(recorded.get("config") or {}), "input": _path(recorded.get("input")),
           "exclude_file": _path(recorded.get("exclude_file"))}
    differ = [key for key in wanted if wanted[key] != had.get(key)]
    if differ:
        what = ", ".join(f"{key} {_show(had.get(key))} (asked: {_show(wanted[key])})" for key in differ[:3])
        raise SonicError(f"'{folder}' holds a split made with other settings: {what}; pass --overwrite to replace "
                         f"it, or --out for another folder")


def _path(path: Any) -> str | None:
    return None if path is None else str(Path(path).absolute().resolve())


def _show(value: Any) -> str:
    return "none" if value is None else str(value)
