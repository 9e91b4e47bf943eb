"""The Music4All release read as published: five tab-separated tables, lyrics and audio files, keyed by track id.

Layout under ``root`` (the release's names; every ``.csv`` is **tab** separated, with a header)::

    id_information.csv   id, artist, song, album_name
    id_metadata.csv      id, spotify_id, popularity, release, danceability, energy, key, mode, valence,
                         tempo, duration_ms
    id_genres.csv        id, genres   (comma-separated list in one column)
    id_tags.csv          id, tags     (comma-separated list in one column)
    id_lang.csv          id, lang
    lyrics/<id>.txt      lyrics, one file per track
    audios/<id>.mp3      30-second clips

Ids that are in one source but not in another are not an error (the release has a few); they are
listed in :attr:`Music4All.mismatches`, each under a sentence saying which source lacks them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sonic.cream.data.tables import read_table
from sonic.errors import DataError

TABLES = {
    "information": ("id_information.csv", ("artist", "song", "album_name")),
    "metadata": ("id_metadata.csv", ("spotify_id", "popularity", "release", "danceability", "energy", "key", "mode",
                                     "valence", "tempo", "duration_ms")),
    "genres": ("id_genres.csv", ("genres",)),
    "tags": ("id_tags.csv", ("tags",)),
    "lang": ("id_lang.csv", ("lang",)),
}  # fmt: skip
FOLDERS = {"lyrics": ("lyrics", ".txt"), "audio": ("audios", ".mp3")}
INTEGER_COLUMNS = ("release", "key", "mode", "duration_ms")
FLOAT_COLUMNS = ("popularity", "danceability", "energy", "valence", "tempo")


@dataclass(frozen=True, eq=False)
class Music4All:
    """The release, every part indexed by ``track_id`` (str).

    ``information``: artist, song, album_name (str). ``metadata``: spotify_id (str); popularity,
    danceability, energy, valence, tempo (float64); release, key, mode, duration_ms (Int64, missing
    allowed). ``genres`` and ``tags``: tuple[str, ...] per track (empty when the cell is). ``lang``: str.
    ``lyrics`` and ``audio``: the Path of each file present. ``mismatches``: sentence -> sorted ids.
    """

    root: Path
    information: pd.DataFrame
    metadata: pd.DataFrame
    genres: pd.Series
    tags: pd.Series
    lang: pd.Series
    lyrics: pd.Series
    audio: pd.Series
    mismatches: dict[str, tuple[str, ...]]

    @property
    def track_ids(self) -> pd.Index:
        """The catalogue: the ids of ``id_information.csv``, in file order."""
        return self.information.index


def load_music4all(root: str | os.PathLike) -> Music4All:
    """Read the Music4All release under ``root`` (layout in this module's docstring).

    A missing ``root``, a missing table, a table without its columns, a repeated id or a metadata value
    that is not a number is one :class:`DataError` naming the file. Missing ``lyrics/`` or ``audios/``
    folders give empty Series (and every id is listed as lacking them in ``mismatches``).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"Music4All folder '{root}' does not exist; it should hold id_information.csv and the others")
    frames = {name: _read(root, file_name, columns) for name, (file_name, columns) in TABLES.items()}
    information = frames["information"].astype("str")
    metadata = _typed_metadata(frames["metadata"], root / TABLES["metadata"][0])
    genres = frames["genres"]["genres"].map(_as_list).rename("genres")
    tags = frames["tags"]["tags"].map(_as_list).rename("tags")
    lang = frames["lang"]["lang"].fillna("").astype("str").rename("lang")
    files = {name: _files(root / folder, suffix, name) for name, (folder, suffix) in FOLDERS.items()}

    catalogue = information.index
    parts = {
        "id_metadata.csv": metadata.index, "id_genres.csv": genres.index, "id_tags.csv": tags.index,
        "id_lang.csv": lang.index, "lyrics/": files["lyrics"].index, "audios/": files["audio"].index,
    }  # fmt: skip
    mismatches: dict[str, tuple[str, ...]] = {}
    for source, ids in parts.items():
        lacking = catalogue.difference(ids)
        extra = ids.difference(catalogue)
        if len(lacking):
            mismatches[f"tracks in id_information.csv without an entry in {source}"] = tuple(sorted(lacking))
        if len(extra):
            mismatches[f"ids in {source} that id_information.csv does not list"] = tuple(sorted(extra))
    return Music4All(root, information, metadata, genres, tags, lang, files["lyrics"], files["audio"], mismatches)


def _read(root: Path, file_name: str, columns: tuple[str, ...]) -> pd.DataFrame:
    path = root / file_name
    if not path.is_file():
        raise DataError(f"Music4All folder '{root}' has no {file_name}; the release has id_information.csv, "
                        f"id_metadata.csv, id_genres.csv, id_tags.csv and id_lang.csv")  # fmt: skip
    frame = read_table(path, sep="\t", what="Music4All", ids=("id",))
    missing = [c for c in ("id", *columns) if c not in frame.columns]
    if missing:
        found = ", ".join(repr(str(c)) for c in frame.columns)
        raise DataError(f"'{path}' has no column {missing[0]!r}; found: {found} (Music4All tables are tab separated)")
    if frame["id"].isna().any() or (frame["id"] == "").any():
        raise DataError(f"'{path}' has rows without an id")
    repeated = frame["id"][frame["id"].duplicated()]
    if len(repeated):
        raise DataError(f"'{path}' lists track {repeated.iloc[0]!r} twice")
    return frame.set_index(pd.Index(frame["id"], name="track_id")).loc[:, list(columns)]


def _typed_metadata(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    out["spotify_id"] = frame["spotify_id"].astype("str")
    for column in frame.columns.drop("spotify_id"):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            raise DataError(f"'{path}' has a {column} that is not a number: {frame[column][bad].iloc[0]!r}")
        if column in INTEGER_COLUMNS:
            fractional = values.dropna()[values.dropna() % 1 != 0]
            if len(fractional):
                raise DataError(f"'{path}' has a {column} that is not a whole number: {fractional.iloc[0]!r}")
            values = values.astype("Int64")
        else:
            values = values.astype(np.float64)
        out[column] = values
    return out.loc[:, list(TABLES["metadata"][1])]


def _as_list(cell: object) -> tuple[str, ...]:
    """``"rock,indie rock"`` -> ``("rock", "indie rock")``; an empty or missing cell -> ``()``."""
    if not isinstance(cell, str):
        return ()
    return tuple(item.strip() for item in cell.split(",") if item.strip())


def _files(folder: Path, suffix: str, name: str) -> pd.Series:
    """``<id><suffix>`` files directly in ``folder`` (hidden names skipped), as track_id -> Path, sorted."""
    paths = sorted(p for p in folder.glob(f"*{suffix}") if not p.name.startswith(".")) if folder.is_dir() else []
    return pd.Series(paths, index=pd.Index([p.stem for p in paths], name="track_id", dtype="str"), name=name,
                     dtype=object)  # fmt: skip
