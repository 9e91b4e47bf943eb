"""The report's listening section: what the best content model recommends, next to what the user played.

For each evaluated test slice (test, cold test) the section draws ``[report] listening_users`` of its
users at random (seeded with the study's first seed) and shows, for each, the last
:data:`HISTORY_TRACKS` tracks they played before the scored period (train, and their validation
events where the run's lists used them; most recent first), the top :data:`LIST_LENGTH` of the best
content model and the top of pop. The best content model is the leaderboard's top entry with an
embedding (shuffle controls left out) by the report's metric at its k on that slice
(:func:`sonic.study.report.statistics.choose`); its lists and pop's are the ones its run folder holds
for the first seed the entry ran with (``recommendations.parquet``, the lists the metrics scored).
A recommended track the user played in the scored slice is a *hit*; one nobody played in train is
*cold*. Where pop cannot rank the slice's tracks (unable on the cold test) it says so instead of a list.

Each track has a player for an excerpt (:mod:`sonic.cream.audio.excerpt`: 10 s from the middle of the
clip, mono Ogg Opus at 48 kbps), cut once per track into ``excerpts/<track_id>.opus`` beside the page;
``data/listening.csv`` holds the rows behind the section. Without an audio folder, or where a file is
missing, the lists are shown without players and the section says so.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sonic.errors import SonicError
from sonic.study.report.data import ReportData
from sonic.study.report.page import Section
from sonic.study.report.statistics import choose, label_of
from sonic.study.steps import NO_EMBEDDING

HISTORY_TRACKS = 5
LIST_LENGTH = 10
LISTENING_SLICES = ("test", "cold_test")
SLICE_NAMES = {"test": "test", "cold_test": "cold test"}
EXCERPTS_DIR = "excerpts"
LISTENING_CSV = "data/listening.csv"
COLUMNS = ("user_id", "slice", "role", "model", "rank", "track_id", "hit", "cold", "excerpt", "artist", "song",
           "genres")  # fmt: skip
HISTORY, RECOMMENDATION = "history", "recommendation"


@dataclass(frozen=True)
class Track:
    """One track of a list: its id, rank (1: best, or most recent), excerpt (path in the report, or None),
    and its name (``artist - song``) and genres where the study's Music4All tables give them."""

    track_id: str
    rank: int
    excerpt: str | None
    hit: bool = False
    cold: bool = False
    name: str = ""
    genres: str = ""


@dataclass(frozen=True)
class TrackList:
    """A titled list of tracks, or ``note`` (why there is none) instead."""

    title: str
    tracks: tuple[Track, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Listener:
    user_id: str
    lists: tuple[TrackList, ...]  # what they played, then each model's recommendations


@dataclass(frozen=True)
class Listening:
    """A block of the page: listeners side by side with their lists (``templates/listening.html.j2``)."""

    listeners: tuple[Listener, ...]
    block: str = "listening"


@dataclass(frozen=True)
class Entry:
    """A leaderboard entry's run folder for the lists: its label and the run's row."""

    label: str
    run_dir: Path
    seed: int
    split_dir: Path


def listening(data: ReportData, report_dir: Path, *, num_workers: int | None = None) -> Section:
    """The listening section (see the module docstring); excerpts and the CSV are written into ``report_dir``."""
    from sonic.cream.audio.excerpt import ExcerptSettings

    section = Section("listening", "Listening")
    count = data.study.report.listening_users
    slices = [name for name in LISTENING_SLICES if name in data.splits]
    if count == 0 or not slices:
        section.absent("No listening examples: " + ("listening_users = 0 in [report]." if count == 0 else
                                                    "the study evaluates no test slice."))
        return section
    settings = ExcerptSettings()
    plans = []
    for name in slices:
        try:
            plans.append((name, _plan(data, name, count)))
        except (SonicError, OSError) as error:  # a moved split or run folder is a sentence, not a crash
            plans.append((name, f"The lists of the {SLICE_NAMES[name]} cannot be read: {error}"))
    rows = pd.concat([plan for _, plan in plans if isinstance(plan, pd.DataFrame)] or
                     [pd.DataFrame(columns=list(COLUMNS))], ignore_index=True)
    excerpts, note = _excerpts(data.study.data.audio, rows["track_id"].unique(), report_dir, settings,
                               num_workers=num_workers)
    rows["excerpt"] = rows["track_id"].map(excerpts).astype(object)
    rows = rows.merge(track_names(data.study.data.music4all, rows["track_id"].unique()), on="track_id", how="left")
    rows = rows.where(rows.notna(), None)
    from sonic.study.report.figures import write_csv

    write_csv(rows.loc[:, list(COLUMNS)], report_dir / LISTENING_CSV)
    section.text(f"Hear what the recommenders suggest. For {count} users of each test slice, drawn at random "
                 f"(seed {data.seeds[0]}): the last {HISTORY_TRACKS} tracks they played before the scored period "
                 f"(most recent first), the top {LIST_LENGTH} of the best content model and the top {LIST_LENGTH} "
                 f"of pop. A hit is a recommended track the user played in the scored slice; a cold track is one "
                 f"nobody played in train. Excerpts: {settings.describe()}.")
    if note:
        section.absent(note)
    for name, plan in plans:
        section.heading(SLICE_NAMES[name])
        if isinstance(plan, str):
            section.absent(plan)
            continue
        shown = rows[rows["slice"] == name]
        section.text(plan.attrs["picked"])
        section.blocks.append(Listening(_listeners(shown, plan.attrs["titles"], plan.attrs["notes"])))
    section.text(f"The lists and excerpts behind this section: {LISTENING_CSV} (one row per track shown).")
    return section


def _plan(data: ReportData, split: str, count: int) -> pd.DataFrame | str:
    """The rows (:data:`COLUMNS` but excerpt) of ``split``'s listeners, or a sentence saying why there are none.

    ``attrs``: ``picked`` (how the model was chosen), ``titles`` (model label per list), ``notes``
    (model label -> the sentence shown instead of its list).
    """
    controls = _shuffle_controls(data.runs)
    entries = data.board.loc[(data.board["embedding"] != NO_EMBEDDING) & ~data.board["model"].isin(controls),
                             ["model", "embedding"]].drop_duplicates()  # fmt: skip
    if _has_status(data.board):
        scored = data.board[(data.board["split"] == split) & (data.board["status"] != "unable")]
        entries = entries.merge(scored.loc[:, ["model", "embedding"]].drop_duplicates())
    best = choose(data.board, entries.itertuples(index=False, name=None), split=split, metric=data.metric, k=data.k)
    where = SLICE_NAMES[split]
    if best is None:
        return f"No content model (a recommender on an embedding) has {data.metric}@{data.k} on the {where}."
    content = _entry(data.runs, *best, seed=None)
    if content is None or not (content.run_dir / "recommendations.parquet").is_file():
        return f"The run of {label_of(*best)} has no recommendations.parquet: its lists cannot be shown."
    pops = data.runs.loc[(data.runs["recommender"] == "pop") & ~data.runs["label"].isin(controls), "label"]
    pop = _entry(data.runs, sorted(pops)[0], NO_EMBEDDING, seed=content.seed) if len(pops) else None
    events = _Events(content.split_dir, split)
    listed = pd.read_parquet(content.run_dir / "recommendations.parquet", columns=["user_id"])["user_id"]
    users = np.sort(np.intersect1d(events.users(), listed.astype(str).unique()))
    if len(users) == 0:
        return f"No user of the {where} has a list from {content.label}."
    picked = np.random.default_rng(data.seeds[0]).choice(users, size=min(count, len(users)), replace=False)
    picked = sorted(str(user) for user in picked)
    rows, notes = [events.history(picked)], {}
    truth = events.slice_events(picked)
    models = [(content.label, content)] + ([(pop.label, pop)] if pop is not None else [])
    for label, entry in models:
        unable = _unable(entry, split)
        if unable:
            notes[label] = f"{label} is unable on the {where}: {unable}"
            continue
        ranked = _lists(entry.run_dir, split, picked)
        rows.append(ranked.assign(role=RECOMMENDATION, model=label))
    frame = pd.concat(rows, ignore_index=True).assign(slice=split)
    played = set(zip(truth["user_id"], truth["track_id"]))
    frame["hit"] = [(user, track) in played if role == RECOMMENDATION else None
                    for user, track, role in zip(frame["user_id"], frame["track_id"], frame["role"])]  # fmt: skip
    in_train = events.in_train(frame.loc[frame["role"] == RECOMMENDATION, "track_id"].unique())
    frame["cold"] = [track not in in_train if role == RECOMMENDATION else None
                     for track, role in zip(frame["track_id"], frame["role"])]  # fmt: skip
    mean = data.board[(data.board["model"] == best[0]) & (data.board["embedding"] == best[1])
                      & (data.board["split"] == split) & (data.board["metric"] == data.metric)
                      & (data.board["k"] == data.k)]["mean"]  # fmt: skip
    frame.attrs.update(titles=[label for label, _ in models], notes=notes, picked=(
        f"{content.label} is the content model with the highest mean {data.metric}@{data.k} on the {where} "
        f"({float(mean.iloc[0]):.4f}; the leaderboard's top entry with an embedding, shuffle controls left out; "
        f"whether it beats the others is the questions' to say). Lists of its run with seed {content.seed}"
        f"{' and of pop' if pop is not None else ' (no pop run in this study)'}; users {', '.join(picked)}."))
    return frame


def _listeners(rows: pd.DataFrame, titles: list[str], notes: dict[str, str]) -> tuple[Listener, ...]:
    listeners = []
    for user, mine in rows.groupby("user_id", sort=True):
        lists = [TrackList("Played before (most recent first)", _tracks(mine[mine["role"] == HISTORY]))]
        for title in titles:
            if title in notes:
                lists.append(TrackList(title, note=notes[title]))
                continue
            tracks = _tracks(mine[(mine["role"] == RECOMMENDATION) & (mine["model"] == title)])
            hits = sum(track.hit for track in tracks)
            lists.append(TrackList(f"{title}: top {LIST_LENGTH} ({hits} hit{'' if hits == 1 else 's'})", tracks,
                                   "" if tracks else "an empty list"))
        listeners.append(Listener(str(user), tuple(lists)))
    return tuple(listeners)


def _tracks(rows: pd.DataFrame) -> tuple[Track, ...]:
    return tuple(Track(str(row.track_id), int(row.rank), row.excerpt, bool(row.hit), bool(row.cold),
                       " - ".join(part for part in (row.artist, row.song) if part), row.genres or "")
                 for row in rows.sort_values("rank").itertuples())  # fmt: skip


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


# ----------------------------------------------------------------------------------------- study parts


def _shuffle_controls(runs: pd.DataFrame) -> set[str]:
    if "shuffle" not in runs.columns:
        return set()
    return set(runs.loc[runs["shuffle"].fillna(False).astype(bool), "label"])


def _has_status(board: pd.DataFrame) -> bool:
    return "status" in board.columns


def _entry(runs: pd.DataFrame, label: str, embedding: str, *, seed: int | None) -> Entry | None:
    """The run of entry (``label``, ``embedding``) with ``seed`` (None: its first seed), or None."""
    mine = runs[(runs["label"] == label) & (runs["embedding"] == embedding)]
    if "shuffle" in runs.columns:
        mine = mine[~mine["shuffle"].fillna(False).astype(bool)]
    if seed is not None:
        mine = mine[mine["seed"] == seed]
    if mine.empty:
        return None
    row = mine.sort_values("seed").iloc[0]
    return Entry(label_of(label, embedding), Path(row["run_dir"]), int(row["seed"]), Path(row["split_dir"]))


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


def _lists(run_dir: Path, split: str, users: list[str] | None) -> pd.DataFrame:
    """The run's top :data:`LIST_LENGTH` for ``split``: user_id, rank, track_id (of ``users``, or all).

    A run holding several lists per user keeps the one ``split`` was scored with: the candidate set of
    config.json's ``slices`` (``candidates`` column), made with the validation history (``history``).
    """
    filters = None if users is None else [("user_id", "in", list(users))]
    lists = pd.read_parquet(run_dir / "recommendations.parquet", filters=filters)
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
        if part not in self.folder.paths:
            return pd.DataFrame(columns=columns)
        path = self.folder.paths[part]
        try:
            frame = pd.read_parquet(path, columns=columns, filters=[(column, "in", list(values))])
        except (TypeError, ValueError, NotImplementedError, ArithmeticError):  # ids stored as numbers
            frame = self.folder.read(part).loc[:, columns]
        frame = frame.astype({name: str for name in columns if name != "timestamp"})
        return frame[frame[column].isin([str(value) for value in values])]

    def users(self) -> np.ndarray:
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


# ----------------------------------------------------------------------------------------------- audio


def _excerpts(audio_dir: Path | None, track_ids, report_dir: Path, settings, *,
              num_workers: int | None) -> tuple[dict[str, str], str]:
    """Cut each track's excerpt once into ``report_dir/excerpts``: ({track_id: relative path}, a sentence on
    what is missing, or '')."""
    from sonic import files
    from sonic.cream.audio.excerpt import EXCERPT_SUFFIX, cut_excerpt
    from sonic.parallel import map_files

    track_ids = [str(track) for track in track_ids]
    if audio_dir is None or not Path(audio_dir).is_dir():
        where = "no [data] audio" if audio_dir is None else f"its audio folder {audio_dir} is not there"
        return {}, f"This study has {where}: the lists are shown without excerpts."
    sources = find_tracks(Path(audio_dir), track_ids)
    by_path = {str(path): track for track, path in sources.items()}
    written, failed = {}, []
    cut = functools.partial(cut_excerpt, settings=settings)
    for result in map_files(cut, list(by_path), num_workers=num_workers, progress=False, description="excerpts"):
        track = by_path[result.item]
        if not result.ok:
            failed.append(result.reason)
            continue
        relative = f"{EXCERPTS_DIR}/{track}{EXCERPT_SUFFIX}"
        (report_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        files.write_bytes(report_dir / relative, result.value)
        written[track] = relative
    missing = len(track_ids) - len(sources)
    parts = []
    if missing:
        parts.append(f"{missing} of the {len(track_ids)} tracks have no audio file in {audio_dir}")
    if failed:
        parts.append(f"{len(failed)} could not be cut ({failed[0]})")
    return written, ("; ".join(parts) + ": they are listed without a player.") if parts else ""


def find_tracks(audio_dir: Path, track_ids: list[str]) -> dict[str, Path]:
    """The audio file of each track id found under ``audio_dir`` (``<id>.<audio extension>``, any case).

    An id whose path would leave the folder or name a hidden file (``..``, ``.x``, an empty segment)
    has none. Each folder is listed once.
    """
    from sonic.cream.audio import AUDIO_EXTENSIONS

    listings: dict[str, dict[str, Path]] = {}
    found = {}
    for track in track_ids:
        folder, _, stem = track.rpartition("/")
        segments = track.split("/")
        if any(not part or part.startswith(".") for part in segments):
            continue
        if folder not in listings:
            directory = audio_dir / folder
            entries = sorted(directory.iterdir()) if directory.is_dir() else []
            listings[folder] = {}
            for path in entries:
                if path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file():
                    listings[folder].setdefault(path.stem, path)
        if stem in listings[folder]:
            found[track] = listings[folder][stem]
    return found
