"""Recommendations from a saved run: the run's fitted model read back, for any listener, with no retraining.

:func:`load_run` reads a run folder written by ``sonic run-model`` (or a study): ``config.json`` and the
fitted model in ``model/`` (:func:`sonic.rouge.load_recommender`: knn's table, snn's and bert4rec's
weights, ease's matrix, elsa's factors, pop's ranking, random's seed). :meth:`ServedRun.recommend` gives
its lists for any of its train users, evaluated or not; :meth:`ServedRun.recommend_history` for new
listeners described by a listening history (:mod:`sonic.rouge.listeners` says how each model forms them).

Seen tracks are excluded as the run excluded them: the saved model keeps each train user's train tracks.
The run predicted the slices after the validation period (test, cold_test) with the split's validation
events as history (:mod:`sonic.rouge.run`); ``val_history`` says whether a user's validation events join
their history here: ``"auto"`` (default) as the run did, for the users the run scored that way (so each
evaluated user gets the run's own list, every other train user the fitted model's list from train alone),
``"always"`` for every user (the latest state the split knows), ``"never"`` for no one. The validation
events are read from the run's split folder (``config.json``), or from ``split_dir`` where it moved.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sonic.errors import DataError, SonicError

#: Values of ``val_history``.
VAL_HISTORY = ("auto", "always", "never")
#: Users recommended for at once.
CHUNK_USERS = 4096


@dataclass(frozen=True)
class ServedRun:
    """A run folder's fitted model, ready to recommend (see the module docstring)."""

    run_dir: Path
    config: dict[str, Any]
    model: Any
    split_dir: Path | None = None  # where the split moved; None: the folder config.json names

    @property
    def users(self) -> np.ndarray:
        """The run's train users (n,) str, sorted: those :meth:`recommend` knows."""
        from sonic.rouge.listeners import catalogue_of

        return catalogue_of(self.model).user_ids

    def recommend(self, users: Sequence[str], k: int = 10, *, val_history: str = "auto") -> pd.DataFrame:
        """Lists for ``users`` (train users of the run): ``user_id, track_id, rank, score``, best first.

        A user with fewer than ``k`` candidates gets fewer rows; one the run does not know is a
        :class:`DataError` naming them.
        """
        from sonic.rouge.shared import check_k, empty_lists
        from sonic.rouge.scoring import long_frame

        if val_history not in VAL_HISTORY:
            raise SonicError(f"val_history must be one of {', '.join(VAL_HISTORY)}, got {val_history!r}")
        k = check_k(k)
        users = np.asarray(list(dict.fromkeys(str(user) for user in users)), dtype=object)
        if len(users) == 0:
            raise SonicError("name at least one user to recommend for")
        self._check_known(users)
        history = self._validation_history(users, val_history)
        ids, scores = empty_lists(len(users), k)
        extra = {} if history is None or history.empty else {"history": history}
        for start in range(0, len(users), CHUNK_USERS):
            chunk = slice(start, start + CHUNK_USERS)
            ids[chunk], scores[chunk] = self.model.recommend(users[chunk], k, exclude_seen=True, **extra)
        return long_frame(users, ids, scores)

    def recommend_history(self, history: pd.DataFrame, k: int = 10, *,
                          users: Sequence[str] | None = None) -> pd.DataFrame:
        """Lists for the listeners of ``history`` (events ``user_id, track_id[, timestamp, count]``), each
        described by those events alone (:mod:`sonic.rouge.listeners`); ``users`` keeps only these.

        The frame's ``attrs["warnings"]`` lists, one sentence each, history tracks outside the model's
        catalogue and listeners left with an empty list.
        """
        from sonic.rouge.shared import check_events
        from sonic.rouge.listeners import history_lists
        from sonic.rouge.scoring import long_frame

        check_events(history, "history")
        if users is not None:
            wanted = list(dict.fromkeys(str(user) for user in users))
            present = set(history["user_id"].astype(str))
            missing = [user for user in wanted if user not in present]
            if missing:
                raise DataError(f"user '{missing[0]}' has no events in the listening history; name users it holds")
            history = history[history["user_id"].astype(str).isin(wanted)]
        lists = history_lists(self.model, history, k)
        frame = long_frame(lists.users, lists.ids, lists.scores)
        frame.attrs["warnings"] = list(lists.warnings)
        return frame

    def _check_known(self, users: np.ndarray) -> None:
        known = pd.Index(self.users)
        unknown = users[known.get_indexer(users.astype(str)) < 0]
        if len(unknown):
            raise DataError(
                f"user '{unknown[0]}' is not one of the {len(known)} train users of run '{self.run_dir}'"
                f"{'' if len(unknown) == 1 else f' (nor are {len(unknown) - 1} more)'}; "
                f"for a new listener give their listening history (--history FILE)"
            )

    def _validation_history(self, users: np.ndarray, val_history: str) -> pd.DataFrame | None:
        """The split's validation events of those ``users`` whose history they join (see the module)."""
        if val_history == "never":
            return None
        if val_history == "auto":
            users = users[np.isin(users, self._users_scored_with_history())]
            if len(users) == 0:
                return None
        split = self._split_folder()
        path = next((split / name for name in ("val.parquet", "val.pqt") if (split / name).is_file()), None)
        if path is None:
            raise DataError(f"split folder '{split}' has no val.parquet; use val_history='never' (--val-history never)")
        from sonic.cream.data import load_events

        events = load_events(path)
        return events[events["user_id"].astype(str).isin(users)]

    def _users_scored_with_history(self) -> np.ndarray:
        """Users whose lists the run made with their validation events (``history`` rows of its lists)."""
        import pyarrow.parquet as pq

        path = self.run_dir / "recommendations.parquet"
        if not path.is_file() or "history" not in pq.read_schema(path).names:
            return np.zeros(0, dtype=object)
        lists = pd.read_parquet(path, columns=["user_id", "history"])
        return np.asarray(lists.loc[lists["history"].astype(bool), "user_id"].astype(str).unique(), dtype=object)

    def _split_folder(self) -> Path:
        """The run's split folder: ``split_dir`` if given (checked to be the same split), else config.json's."""
        split = self.config.get("split", {})
        recorded = split.get("dir") or self.config.get("split_dir")
        if self.split_dir is None:
            if recorded is None or not Path(recorded).is_dir():
                raise DataError(f"run '{self.run_dir}' was fitted on split folder '{recorded}', which is not there; "
                                "give its new place (--split DIR), or --val-history never")
            return Path(recorded)
        settings_path = self.split_dir / "split.json"
        if not self.split_dir.is_dir():
            raise DataError(f"split folder '{self.split_dir}' does not exist")
        if split.get("settings") and settings_path.is_file():
            if json.loads(settings_path.read_text()) != split["settings"]:
                raise DataError(f"split folder '{self.split_dir}' is not the split of run '{self.run_dir}' (its "
                                f"split.json differs from the run's config.json); give the run's own split")
        return self.split_dir


def load_run(run_dir: str | os.PathLike, *, split_dir: str | os.PathLike | None = None) -> ServedRun:
    """The fitted model of the run folder ``run_dir``, ready to recommend (see the module docstring).

    ``split_dir``: where the run's split folder is now, if it moved (needed only for validation history).
    A folder without ``config.json`` or without a saved model is one :class:`DataError` sentence.
    """
    from sonic.rouge.base import load_recommender

    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise DataError(f"'{run_dir}' is not a run folder (no config.json); write one with `sonic run-model`")
    try:
        config = json.loads(config_path.read_text())
    except ValueError as error:
        raise DataError(f"'{config_path}' is not valid JSON ({error})") from None
    if not (run_dir / "model").is_dir():
        raise DataError(f"run '{run_dir}' has no saved model (no model/ folder); run it again with this sonic")
    model = load_recommender(run_dir / "model")
    return ServedRun(run_dir, config, model, None if split_dir is None else Path(split_dir))


@dataclass(frozen=True)
class Served:
    """What :func:`recommend_to_file` wrote: the file, how many users and rows, and its warnings."""

    path: Path
    n_users: int
    n_rows: int
    warnings: tuple[str, ...] = ()


def recommend_to_file(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    users: Sequence[str] = (),
    users_file: str | os.PathLike | None = None,
    history_file: str | os.PathLike | None = None,
    k: int = 10,
    val_history: str = "auto",
    split_dir: str | os.PathLike | None = None,
) -> Served:
    """``sonic recommend``: the run's lists for ``users`` (and the ``user_id`` column of ``users_file``),
    or, with ``history_file``, for that history's listeners (only ``users`` among them, when named),
    written to ``out`` (``.parquet`` or ``.csv``: ``user_id, track_id, rank, score``) with a manifest beside it.

    ``out`` is refused before any work when it exists and is not sonic's earlier recommendations.
    """
    from sonic.manifest import base_manifest
    from sonic.outputs import check_result_file, write_result_table

    check_result_file(out, "recommendations")
    named = [str(user) for user in users] + (read_user_ids(users_file) if users_file is not None else [])
    served = load_run(run_dir, split_dir=split_dir)
    if history_file is not None:
        frame = served.recommend_history(read_history(history_file), k, users=named or None)
        warnings = tuple(frame.attrs.get("warnings", ()))
    elif named:
        frame, warnings = served.recommend(named, k, val_history=val_history), ()
    else:
        raise SonicError("name the users to recommend for: --user U (repeatable), --users FILE or --history FILE")
    manifest = base_manifest(
        "recommendations", run_dir=str(run_dir), model=served.config.get("model"), k=k,
        users=int(frame["user_id"].nunique()),
        source="listening history" if history_file is not None else "train users of the run",
        history_file=None if history_file is None else str(history_file),
        val_history=None if history_file is not None else val_history, warnings=list(warnings),
    )  # fmt: skip
    frame.attrs.clear()
    path = write_result_table(frame, out, manifest)
    return Served(path, int(frame["user_id"].nunique()), len(frame), warnings)


def read_user_ids(path: str | os.PathLike) -> list[str]:
    """The ``user_id`` column of a csv / tsv / Parquet file, in file order, each once."""
    from sonic.cream.data import read_table

    frame = read_table(path, columns=["user_id"], what="users")
    if "user_id" not in frame.columns:
        raise DataError(f"users file '{path}' has no 'user_id' column; found: {', '.join(map(str, frame.columns))}")
    ids = frame["user_id"].dropna().astype(str)
    if ids.empty:
        raise DataError(f"users file '{path}' lists no user")
    return list(dict.fromkeys(ids))


def read_history(path: str | os.PathLike) -> pd.DataFrame:
    """Listening-history events from a csv / tsv / Parquet file: ``user_id, track_id`` and optionally
    ``timestamp`` (read as :func:`sonic.cream.data.load_events` reads it) and ``count``."""
    from sonic.cream.data import normalise_events, read_table

    frame = read_table(path, what="listening-history")
    missing = [column for column in ("user_id", "track_id") if column not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns)) or "none"
        raise DataError(f"listening history '{path}' has no column {missing[0]!r}; found: {found}; "
                        "need user_id, track_id and optionally timestamp")
    if "timestamp" in frame.columns:
        return normalise_events(frame, source=f"listening history '{path}'")
    if len(frame) == 0:
        raise DataError(f"listening history '{path}' holds no events")
    columns = ["user_id", "track_id", *(["count"] if "count" in frame.columns else [])]
    frame = frame.loc[:, columns].reset_index(drop=True)
    for column in ("user_id", "track_id"):
        if (frame[column].isna() | (frame[column].astype(str) == "")).any():
            raise DataError(f"listening history '{path}' has rows with an empty {column}")
    return frame
