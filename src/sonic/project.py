"""A project folder: where the commands read and write when no folder is given.

Run from one folder, ``sonic data-split`` writes :data:`SPLIT_DIR`, ``sonic embed`` writes into
:data:`EMBEDDINGS_DIR`, and ``sonic run-model`` reads both and writes one run folder under
:data:`RUNS_DIR` (named by :func:`sonic.rouge.run_names.default_run_dir`). A folder given on the
command line always wins. Paths are relative to the working directory.
"""

from __future__ import annotations

from pathlib import Path

#: The split folder of a project (``sonic data-split``'s ``--out``, ``sonic run-model``'s ``--split-dir``).
SPLIT_DIR = Path("split")
#: The embedding tables of a project (``sonic embed``'s ``--out``, ``sonic run-model``'s ``--embeddings-dir``).
EMBEDDINGS_DIR = Path("embeddings")
#: Where ``sonic run-model`` puts its run folders when ``--out`` is not given.
RUNS_DIR = Path("runs")


def is_default(folder: str | Path | None, default: Path) -> bool:
    """Whether ``folder`` is not given or is the project's ``default`` folder (however it is spelled)."""
    return folder is None or Path(folder).absolute().resolve() == default.absolute().resolve()
