"""A small Music4All-shaped catalogue, built offline in seconds.

Layout written under ``root`` (tab-separated files with a header, as in the release)::

    audios/<id>.mp3                 30-second clips, one per track
    lyrics/<id>.txt                 lyrics, several languages
    id_information.csv              id, artist, song, album_name
    id_metadata.csv                 id, spotify_id, popularity, release, danceability, energy,
                                    key, mode, valence, tempo, duration_ms
    id_genres.csv, id_tags.csv      id, genres / id, tags (comma-separated)
    id_lang.csv                     id, lang
    userid_trackid_timestamp.tsv    user_id, track_id, timestamp (one row per play)
    tracks.csv                      the generator's ground truth (style and release date of every track)

Most tracks are out from the start; ``new_tracks_per_style`` more of each style are *released* during the
last stretch of the window (from ``release_start``, the demo's test date), and listeners play them as they
appear: they are the cold tracks of a ``tamm2025`` split on the demo's dates.

``root`` is claimed first (:func:`sonic.files.output_folder`, kind ``catalogue``: new, empty, or a
catalogue sonic generated) and every file is written atomically (:mod:`sonic.files`). Generating again
with the same config writes nothing: a file whose bytes would not change is left as it is (its
modification time too), so a study that fingerprints its inputs skips every finished step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sonic.demo.listeners import simulate_listening
from sonic.demo.lyrics import WORDS, make_lyrics
from sonic.demo.styles import STYLES, Style
from sonic.demo.synth import render_track
from sonic.files import atomic_path, output_folder, remove_temporaries, write_bytes
from sonic.parallel import available_cpus, run_tasks

EVENTS_FILE = "userid_trackid_timestamp.tsv"
#: The kind of output folder the catalogue is (:func:`sonic.files.output_folder`).
FOLDER_KIND = "catalogue"
#: What an older sonic's unmarked catalogue folder holds.
CATALOGUE_NAMES = frozenset({"audios", "lyrics", "id_information.csv", "id_metadata.csv", "id_genres.csv",
                             "id_tags.csv", "id_lang.csv", EVENTS_FILE, "tracks.csv"})  # fmt: skip
_ID_ALPHABET = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))


@dataclass(frozen=True)
class CatalogueConfig:
    """How big the demo catalogue is and the seed project's date window it covers; ``new_tracks_per_style`` more
    tracks of each style come out from ``release_start`` on (the cold tracks)."""

    tracks_per_style: int = 30
    n_users: int = 1000
    clip_seconds: float = 30.0
    sample_rate: int = 22_050
    start_date: str = "2018-02-20"
    end_date: str = "2019-02-20"
    seed: int = 0
    new_tracks_per_style: int = 4
    release_start: str = "2019-01-20"


@dataclass(frozen=True)
class Catalogue:
    """Where the generated catalogue lies."""

    root: Path
    audio_dir: Path
    events_path: Path
    tracks: pd.DataFrame


def generate_catalogue(root: str | os.PathLike, config: CatalogueConfig = CatalogueConfig(), *,
                       num_workers: int | None = None) -> Catalogue:
    """Write the catalogue described in this module's docstring under ``root``; return its paths.

    Deterministic for a given ``config``. Audio renders in ``num_workers`` processes
    (default: all CPUs); already written clips are kept, so a second call is quick.
    """
    root = Path(root)
    with output_folder(root, FOLDER_KIND, adopt=lambda entry: entry.name in CATALOGUE_NAMES):
        rng = np.random.default_rng(config.seed)
        tracks = _plan_tracks(config, rng)
        tracks = pd.concat([tracks, _plan_new_tracks(config, np.random.default_rng([config.seed, 1]))],
                           ignore_index=True)
        audio_dir = root / "audios"
        audio_dir.mkdir(parents=True, exist_ok=True)
        remove_temporaries(audio_dir, legacy=(".mp3.tmp",))
        _render_audio(tracks, audio_dir, config, num_workers)
        _write_text_files(root, tracks, rng)
        events = simulate_listening(tracks, n_users=config.n_users, start=pd.Timestamp(config.start_date),
                                    end=pd.Timestamp(config.end_date), rng=rng)
        _write_table(events, root / EVENTS_FILE, sep="\t", date_format="%Y-%m-%d %H:%M:%S")
    return Catalogue(root=root, audio_dir=audio_dir, events_path=root / EVENTS_FILE, tracks=tracks)


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically unless the file already holds exactly these bytes (then it is left
    untouched, modification time included); return whether it was written."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except OSError:
        pass
    write_bytes(path, data)
    return True


def _write_table(frame: pd.DataFrame, path: Path, **options) -> None:
    write_if_changed(path, frame.to_csv(index=False, **options).encode("utf-8"))


def _plan_tracks(config: CatalogueConfig, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for style in STYLES:
        artists = [_name(rng, 2).title() for _ in range(max(2, config.tracks_per_style // 6))]
        for number in range(config.tracks_per_style):
            artist = number % len(artists)
            rows.append({
                "track_id": "".join(rng.choice(_ID_ALPHABET, size=16)),
                "style": style.name,
                "artist": artists[artist],
                "song": _name(rng, int(rng.integers(1, 4))).capitalize(),
                "album_name": f"{artists[artist]} {'I' * (1 + number // (2 * len(artists)))}",
                "key": int(rng.integers(0, 12)),
                "mode": style.mode,
                "tempo": round(style.bpm * rng.uniform(0.96, 1.04), 3),
                "lang": str(rng.choice(style.languages)),
                "popularity": float(1.0 / (1 + rng.permutation(config.tracks_per_style)[number]) ** 0.7),
                "render_seed": int(rng.integers(0, 2**31)),
            })
    return pd.DataFrame(rows).assign(release_date=pd.NaT)


def _plan_new_tracks(config: CatalogueConfig, rng: np.random.Generator) -> pd.DataFrame:
    """``new_tracks_per_style`` tracks of each style released between ``release_start`` and a week before the end."""
    first, last = pd.Timestamp(config.release_start), pd.Timestamp(config.end_date) - pd.Timedelta(days=7)
    span_seconds = max((last - first).total_seconds(), 0.0)
    rows = []
    for style in STYLES:
        artist = _name(rng, 2).title()
        for number in range(config.new_tracks_per_style):
            rows.append({
                "track_id": "".join(rng.choice(_ID_ALPHABET, size=16)),
                "style": style.name,
                "artist": artist,
                "song": _name(rng, int(rng.integers(1, 4))).capitalize(),
                "album_name": f"{artist} (new)",
                "key": int(rng.integers(0, 12)),
                "mode": style.mode,
                "tempo": round(style.bpm * rng.uniform(0.96, 1.04), 3),
                "lang": str(rng.choice(style.languages)),
                "popularity": float(1.0 / (1 + number) ** 0.7),
                "render_seed": int(rng.integers(0, 2**31)),
                "release_date": (first + pd.Timedelta(seconds=round(rng.uniform(0, span_seconds)))).floor("D"),
            })
    return pd.DataFrame(rows)


def _name(rng: np.random.Generator, n_words: int) -> str:
    vocabulary = WORDS["en"]
    return " ".join(rng.choice(vocabulary, size=n_words))


def _render_audio(tracks: pd.DataFrame, audio_dir: Path, config: CatalogueConfig, num_workers: int | None) -> None:
    styles = {style.name: style for style in STYLES}
    jobs = [
        (audio_dir / f"{row.track_id}.mp3", styles[row.style], row.key, row.tempo, row.render_seed, config)
        for row in tracks.itertuples()
        if not (audio_dir / f"{row.track_id}.mp3").is_file()
    ]
    workers = num_workers if num_workers is not None else available_cpus()
    workers = workers if workers > 1 and len(jobs) > 1 else 0
    for _ in run_tasks(_render_task, (jobs[start : start + 4] for start in range(0, len(jobs), 4)), workers=workers,
                       describe=lambda job: str(job[0]), activity="rendering"):
        pass


def _render_task(jobs: list[tuple]) -> None:
    for job in jobs:
        _render_one(*job)


def _render_one(path: Path, style: Style, key: int, bpm: float, seed: int, config: CatalogueConfig) -> None:
    import soundfile as sf

    wave = render_track(style, key=key, bpm=bpm, seconds=config.clip_seconds, sample_rate=config.sample_rate,
                        rng=np.random.default_rng(seed))
    with atomic_path(path) as temporary:
        sf.write(temporary, wave, config.sample_rate, format="MP3", subtype="MPEG_LAYER_III")


def _write_text_files(root: Path, tracks: pd.DataFrame, rng: np.random.Generator) -> None:
    styles = {style.name: style for style in STYLES}
    ids = tracks["track_id"]
    lyrics_dir = root / "lyrics"
    for row in tracks.itertuples():
        write_if_changed(lyrics_dir / f"{row.track_id}.txt", make_lyrics(row.lang, rng).encode("utf-8"))

    def audio_feature(name: str) -> np.ndarray:  # the style's value, jittered per track, in [0, 1]
        values = np.array([getattr(styles[style], name) for style in tracks["style"]])
        return np.clip(values + rng.normal(0, 0.05, len(tracks)), 0, 1).round(3)

    tables = {
        "id_information.csv": pd.DataFrame({"id": ids, "artist": tracks["artist"], "song": tracks["song"],
                                            "album_name": tracks["album_name"]}),
        "id_metadata.csv": pd.DataFrame({
            "id": ids,
            "spotify_id": ["".join(rng.choice(_ID_ALPHABET, size=22)) for _ in ids],
            "popularity": (100 * tracks["popularity"]).round().astype(int),
            "release": np.where(tracks["release_date"].notna(), tracks["release_date"].dt.year.fillna(0).astype(int),
                                rng.integers(1970, 2019, len(tracks))),
            "danceability": audio_feature("danceability"),
            "energy": audio_feature("energy"),
            "key": tracks["key"], "mode": tracks["mode"],
            "valence": audio_feature("valence"),
            "tempo": tracks["tempo"],
            "duration_ms": int(30_000),
        }),
        "id_genres.csv": pd.DataFrame({"id": ids, "genres": [",".join(styles[s].genres) for s in tracks["style"]]}),
        "id_tags.csv": pd.DataFrame({"id": ids, "tags": [f"{s},{styles[s].genres[0]},demo" for s in tracks["style"]]}),
        "id_lang.csv": pd.DataFrame({"id": ids, "lang": tracks["lang"]}),
        "tracks.csv": tracks.drop(columns=["render_seed"]),
    }
    for name, table in tables.items():
        _write_table(table, root / name, sep="\t" if name != "tracks.csv" else ",")
