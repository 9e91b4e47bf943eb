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
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sonic.errors import SonicError
from sonic.study.report.data import ReportData
from sonic.study.report.figures import write_csv
from sonic.study.report.listening_lists import (
    COLUMNS,
    HISTORY,
    HISTORY_TRACKS,
    LIST_LENGTH,
    RECOMMENDATION,
    SLICE_NAMES,
    Plan,
    plan,
    track_names,
)
from sonic.study.report.page import Section

LISTENING_SLICES = ("test", "cold_test")
EXCERPTS_DIR = "excerpts"
LISTENING_CSV = "data/listening.csv"


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


def listening(data: ReportData, report_dir: Path, *, num_workers: int | None = None) -> Section:
    """The listening section (see the module docstring); excerpts and the CSV are written into ``report_dir``."""
    from sonic.cream.audio import ExcerptSettings

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
            plans.append((name, plan(data, name, count)))
        except (SonicError, OSError) as error:  # a moved split or run folder is a sentence, not a crash
            plans.append((name, f"The lists of the {SLICE_NAMES[name]} slice cannot be read: {error}"))
    rows = pd.concat([planned.rows for _, planned in plans if isinstance(planned, Plan)] or
                     [pd.DataFrame(columns=list(COLUMNS[:COLUMNS.index("excerpt")]))], ignore_index=True)
    excerpts, note = _excerpts(data.study.data.audio, rows["track_id"].unique(), report_dir, settings,
                               num_workers=num_workers)
    rows["excerpt"] = rows["track_id"].map(excerpts).astype(object)
    rows = rows.merge(track_names(data.study.data.music4all, rows["track_id"].unique()), on="track_id", how="left")
    rows = rows.where(rows.notna(), None)
    write_csv(rows.loc[:, list(COLUMNS)], report_dir / LISTENING_CSV)
    section.text(f"Hear what the recommenders suggest. For {count} users of each test slice, drawn at random "
                 f"(seed {data.seeds[0]}): the last {HISTORY_TRACKS} tracks they played before the scored period "
                 f"(most recent first), the top {LIST_LENGTH} of the best content model and the top {LIST_LENGTH} "
                 f"of pop. A hit is a recommended track the user played in the scored slice; a cold track is one "
                 f"nobody played in train. Excerpts: {settings.describe()}.")
    if note:
        section.absent(note)
    for name, planned in plans:
        section.heading(SLICE_NAMES[name])
        if isinstance(planned, str):
            section.absent(planned)
            continue
        section.text(planned.picked)
        shown = rows[rows["slice"] == name]
        section.blocks.append(Listening(_listeners(shown, planned.titles, planned.notes)))
    section.text(f"The lists and excerpts behind this section: {LISTENING_CSV} (one row per track shown).")
    return section


def _listeners(rows: pd.DataFrame, titles: tuple[str, ...], notes: dict[str, str]) -> tuple[Listener, ...]:
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
                       " - ".join(part for part in (row.artist, row.song) if part),
                       ", ".join(row.genres.split(",")) if row.genres else "")
                 for row in rows.sort_values("rank").itertuples())  # fmt: skip


# ----------------------------------------------------------------------------------------------- audio


def _excerpts(audio_dir: Path | None, track_ids, report_dir: Path, settings, *,
              num_workers: int | None) -> tuple[dict[str, str], str]:
    """Cut each track's excerpt once into ``report_dir/excerpts``: ({track_id: relative path}, a sentence on
    what is missing, or '')."""
    from sonic import files
    from sonic.cream.audio import EXCERPT_SUFFIX, cut_excerpt
    from sonic.parallel import map_files

    track_ids = [str(track) for track in track_ids]
    if audio_dir is None or not Path(audio_dir).is_dir():
        why = "This study has no [data] audio" if audio_dir is None else f"The audio folder {audio_dir} is not there"
        return {}, f"{why}: the lists are shown without excerpts."
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
