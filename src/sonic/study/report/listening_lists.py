"""What the listening section shows: the lists of a slice's drawn users, read from the study's runs and split.

:func:`plan` picks the best content model of a slice (see :mod:`sonic.study.report.listening`), draws the
users and returns one row per track shown (:data:`COLUMNS` but the excerpt): each user's last
:data:`HISTORY_TRACKS` tracks before the scored period (role ``history``) and each model's top
:data:`LIST_LENGTH` (role ``recommendation``, with ``hit`` and ``cold``). The run folders' lists are read
as the metrics scored them (``recommendations.parquet``); events are read from the split folder with
Parquet filters, a few users at a time, so a Music4All-sized split is never loaded whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sonic.errors import DataError, SonicError
from sonic.study.report.data import ReportData
from sonic.study.report.statistics import choose, label_of
from sonic.study.steps import NO_EMBEDDING

HISTORY_TRACKS = 5
LIST_LENGTH = 10
SLICE_NAMES = {"test": "test", "cold_test": "cold test"}
COLUMNS = ("user_id", "slice", "role", "model", "rank", "track_id", "hit", "cold", "excerpt", "artist", "song",
           "genres")  # fmt: skip
HISTORY, RECOMMENDATION = "history", "recommendation"


@dataclass(frozen=True)
class Entry:
    """A leaderboard entry's run: its label, run folder, seed and split folder."""

    label: str
    run_dir: Path
    seed: int
    split_dir: Path


@dataclass(frozen=True)
class Plan:
    """What a slice shows: ``rows`` (:data:`COLUMNS` but excerpt and names), the model labels whose lists
    are shown (``titles``, content model first), the sentence shown instead of a model's list (``notes``)
    and the sentence saying how the content model and users were picked."""

    rows: pd.DataFrame
    titles: tuple[str, ...]
    notes: dict[str, str]
    picked: str


def plan(data: ReportData, split: str, count: int) -> Plan | str:
    """``split``'s :class:`Plan` for ``count`` drawn users, or a sentence saying why it has none."""
    where = f"{SLICE_NAMES[split]} slice"
    best = best_content(data, split)
    if best is None:
        return f"No content model (a recommender on an embedding) has {data.metric}@{data.k} on the {where}."
    content = _entry(data, *best, seed=None)
    if content is None or not (content.run_dir / "recommendations.parquet").is_file():
        return f"The run of {label_of(*best)} has no recommendations.parquet: its lists cannot be shown."
    pops = sorted(data.runs.loc[(data.runs["recommender"] == "pop") & ~_shuffled(data.runs), "label"])
    pop = _entry(data, pops[0], NO_EMBEDDING, seed=content.seed) if pops else None
    events = _Events(content.split_dir, split)
    listed = pd.read_parquet(content.run_dir / "recommendations.parquet", columns=["user_id"])["user_id"]
    users = np.intersect1d(events.users(), listed.astype(str).unique())  # sorted
    if len(users) == 0:
        return f"No user of the {where} has a list from {content.label}."
    picked = np.random.default_rng(data.seeds[0]).choice(users, size=min(count, len(users)), replace=False)
    picked = sorted(str(user) for user in picked)
    rows, notes = [events.history(picked)], {}
    models = [content] + ([pop] if pop is not None else [])
    for entry in models:
        unable = _unable(entry, split)
        if unable:
            notes[entry.label] = f"{entry.label} is unable on the {where}: {unable}"
        else:
            rows.append(_lists(entry.run_dir, split, picked).assign(role=RECOMMENDATION, model=entry.label))
    frame = _marked(pd.concat(rows, ignore_index=True).assign(slice=split), events, picked)
    mean = data.board.set_index(["model", "embedding", "split", "metric", "k"]).loc[
        (*best, split, data.metric, data.k), "mean"]  # fmt: skip
    picked_sentence = (
        f"{content.label} is the content model with the highest mean {data.metric}@{data.k} on the {where} "
        f"({float(mean):.4f}; the leaderboard's top entry with an embedding, shuffle controls left out; whether it "
        f"beats the others is the questions' to say). Lists of its run with seed {content.seed}"
        f"{' and of pop' if pop is not None else ' (no pop run in this study)'}; users {', '.join(picked)}.")
    return Plan(frame, tuple(entry.label for entry in models), notes, picked_sentence)


def best_content(data: ReportData, split: str) -> tuple[str, str] | None:
    """The (model, embedding) with an embedding, not a shuffle control and not unable, whose mean of the
    report's metric at its k on ``split`` is highest (:func:`~sonic.study.report.statistics.choose`)."""
    board = data.board
    controls = set(data.runs.loc[_shuffled(data.runs), "label"])
    keep = (board["embedding"] != NO_EMBEDDING) & ~board["model"].isin(controls)
    if "status" in board.columns:  # unable entries have no value on the slice
        keep &= ~((board["split"] == split) & (board["status"] == "unable"))
    entries = board.loc[keep, ["model", "embedding"]].drop_duplicates().itertuples(index=False, name=None)
    return choose(board[keep], entries, split=split, metric=data.metric, k=data.k)


def _marked(frame: pd.DataFrame, events: _Events, users: list[str]) -> pd.DataFrame:
    """``frame`` with ``hit`` (played in the scored slice) and ``cold`` (played by no one in train) for its
    recommendations; history rows get neither (None)."""
    truth = events.slice_events(users)
    played = set(zip(truth["user_id"], truth["track_id"]))
    recommended = frame["role"] == RECOMMENDATION
    in_train = events.in_train(frame.loc[recommended, "track_id"].unique())
    frame["hit"] = [(user, track) in played if is_list else None
                    for user, track, is_list in zip(frame["user_id"], frame["track_id"], recommended)]  # fmt: skip
    frame["cold"] = [track not in in_train if is_list else None
                     for track, is_list in zip(frame["track_id"], recommended)]  # fmt: skip
    return frame


def track_names(music4all: Path | None, track_ids) -> pd.DataFrame:
    """track_id, artist, song, genres of ``track_ids`` from Music4All's id_information.csv and id_genres.csv
    under ``music4all`` (tab separated); a missing or unreadable table leaves its columns empty."""
    from sonic.cream.data import read_table

    frame = pd.DataFrame({"track_id": pd.Series(list(track_ids), dtype=object).astype(str)})
    for file_name, columns in (("id_information.csv", ("artist", "song")), ("id_genres.csv", ("genres",))):
        path = None if music4all is None else Path(music4all) / file_name
        try:
            table = read_table(path, sep="\t", what="Music4All", ids=("id",)) if path and path.is_file() else None
        except SonicError:
            table = None
        if table is None or not {"id", *columns} <= set(table.columns):
            frame = frame.assign(**{column: None for column in columns})
            continue
        table = table.loc[table["id"].isin(frame["track_id"]), ["id", *columns]].drop_duplicates("id")
        table = table.astype({column: str for column in columns}).rename(columns={"id": "track_id"})
        frame = frame.merge(table, on="track_id", how="left")
    return frame.astype(object).where(frame.notna(), None)



def _shuffled(runs: pd.DataFrame) -> pd.Series:
    """Which runs are shuffle controls (a store written before shuffle existed has none)."""
    if "shuffle" not in runs.columns:
        return pd.Series(False, index=runs.index)
    return runs["shuffle"].fillna(False).astype(bool)


def _entry(data: ReportData, label: str, embedding: str, *, seed: int | None) -> Entry | None:
    """The run of entry (``label``, ``embedding``) with ``seed`` (None: its first seed), or None. A study
    folder moved since it ran has its run and split folders where the study wrote them, under it."""
    runs = data.runs
    mine = runs[(runs["label"] == label) & (runs["embedding"] == embedding) & ~_shuffled(runs)]
    if seed is not None:
        mine = mine[mine["seed"] == seed]
    if mine.empty:
        return None
    row = mine.sort_values("seed").iloc[0]
    run_dir, split_dir = (_found(Path(row[key]), data.study_dir / folder)
                          for key, folder in (("run_dir", "runs"), ("split_dir", "split")))  # fmt: skip
    return Entry(label_of(label, embedding), run_dir, int(row["seed"]), split_dir)


def _found(recorded: Path, moved_parent: Path) -> Path:
    """``recorded``, or the folder of the same name under ``moved_parent`` when only that one exists."""
    if not recorded.exists() and (moved_parent / recorded.name).exists():
        return moved_parent / recorded.name
    return recorded


def _unable(entry: Entry, split: str) -> str:
    """Why the entry's run has no list on ``split`` (its config.json says unable), or ''."""
    try:
        slices = json.loads((entry.run_dir / "config.json").read_text()).get("slices", {})
    except (OSError, ValueError):
        return ""
    info = slices.get(split, {}) if isinstance(slices, dict) else {}
    if info.get("status") == "unable":
        return str(info.get("reason") or "it cannot rank these tracks") + " (no list)."
    return ""


def _lists(run_dir: Path, split: str, users: list[str]) -> pd.DataFrame:
    """The run's top :data:`LIST_LENGTH` for ``split`` of ``users``: user_id, rank, track_id.

    A run holding several lists per user keeps the one ``split`` was scored with: the candidate set of
    config.json's ``slices`` (``candidates`` column), made with the validation history (``history``).
    """
    lists = pd.read_parquet(run_dir / "recommendations.parquet", filters=[("user_id", "in", list(users))])
    lists = lists.astype({"user_id": str, "track_id": str})
    if "candidates" in lists.columns:
        try:
            rule = json.loads((run_dir / "config.json").read_text())["slices"][split]["candidates"]
            lists = lists[lists["candidates"] == rule]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    if "history" in lists.columns:  # users in val and a later slice have two lists: the later one has history
        with_history = lists.groupby("user_id")["history"].transform("any")
        lists = lists[lists["history"].astype(bool) == with_history.astype(bool)]
    lists = lists.sort_values(["user_id", "rank"])
    return lists[lists["rank"] <= LIST_LENGTH].loc[:, ["user_id", "rank", "track_id"]].reset_index(drop=True)


class _Events:
    """A split folder's events of a few users, read with the Parquet filters (never a whole log in memory)."""

    def __init__(self, split_dir: Path, split: str) -> None:
        from sonic.cream.data import read_split_folder

        self.folder = read_split_folder(split_dir)
        self.split = split

    def _read(self, part: str, columns: list[str], column: str, values) -> pd.DataFrame:
        """The ``columns`` of ``part``'s events whose ``column`` is one of ``values``."""
        values = [str(value) for value in values]
        if part not in self.folder.paths or not values:
            return pd.DataFrame({name: pd.Series(dtype=object) for name in columns})
        path = self.folder.paths[part]
        try:
            frame = pd.read_parquet(path, columns=columns, filters=[(column, "in", list(values))])
        except (TypeError, ValueError, NotImplementedError, ArithmeticError):  # ids stored as numbers
            frame = self.folder.read(part).loc[:, columns]
        frame = frame.astype({name: str for name in columns if name != "timestamp"})
        return frame[frame[column].isin(values)]

    def users(self) -> np.ndarray:
        """The users with events in the slice."""
        if self.split not in self.folder.paths:
            raise DataError(f"split folder '{self.folder.directory}' has no {self.split}.parquet")
        return pd.read_parquet(self.folder.paths[self.split], columns=["user_id"])["user_id"].astype(str).unique()

    def history(self, users: list[str]) -> pd.DataFrame:
        """Each user's last :data:`HISTORY_TRACKS` distinct tracks before ``split`` (train, then val), rank 1 the latest."""
        columns = ["user_id", "track_id", "timestamp"]
        parts = ["train"] + (["val"] if self.split != "val" else [])
        events = pd.concat([self._read(part, columns, "user_id", users) for part in parts], ignore_index=True)
        events = events.sort_values(["user_id", "timestamp", "track_id"], ascending=[True, False, True])
        events = events.drop_duplicates(["user_id", "track_id"]).groupby("user_id").head(HISTORY_TRACKS)
        rank = events.groupby("user_id").cumcount() + 1
        return events.assign(rank=rank, role=HISTORY, model="").drop(columns="timestamp")

    def slice_events(self, users: list[str]) -> pd.DataFrame:
        return self._read(self.split, ["user_id", "track_id"], "user_id", users)

    def in_train(self, track_ids) -> set[str]:
        return set(self._read("train", ["track_id"], "track_id", track_ids)["track_id"])

