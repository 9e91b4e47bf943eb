"""The Music4All release read as published (tab-separated tables, lyrics, audio), and the demo catalogue read by it."""

from __future__ import annotations

import pandas as pd
import pytest

import sonic
from sonic.cream.data import load_music4all
from sonic.demo import CatalogueConfig, generate_catalogue
from sonic.demo.styles import STYLES
from sonic.errors import DataError

IDS = ("0009fFIM1eYThaPg", "000fTB6TL5RULXsG", "00bf1pBVF1yVPMuQ")
TABLES = {
    "id_information.csv": "id\tartist\tsong\talbum_name\n"
    f"{IDS[0]}\tDavid Bowie\t\"Heroes\"\t\"Heroes\"\n"
    f"{IDS[1]}\tCartola\tO Mundo É Um Moinho\tCartola\n"
    f"{IDS[2]}\tNina Simone\tSinnerman\tPastel Blues\n",
    "id_metadata.csv": "id\tspotify_id\tpopularity\trelease\tdanceability\tenergy\tkey\tmode\tvalence\ttempo"
    "\tduration_ms\n"
    f"{IDS[0]}\t3zxXX\t61.0\t1977\t0.489\t0.81\t7\t1\t0.531\t113.2\t371000\n"
    f"{IDS[1]}\t0abc\t45.0\t1976\t0.5\t0.3\t2\t0\t0.4\t90.0\t\n"
    f"{IDS[2]}\t1def\t70.0\t1965\t0.6\t0.7\t5\t0\t0.8\t120.5\t622000\n",
    "id_genres.csv": f"id\tgenres\n{IDS[0]}\trock,art rock, glam rock\n{IDS[1]}\tsamba\n{IDS[2]}\tjazz,soul\n",
    "id_tags.csv": f"id\ttags\n{IDS[0]}\tclassic,70s\n{IDS[1]}\t\n{IDS[2]}\tpiano\n",
    "id_lang.csv": f"id\tlang\n{IDS[0]}\ten\n{IDS[1]}\tpt\n{IDS[2]}\ten\nZZZZZZZZZZZZZZZZ\tde\n",
}


def write_release(root, tables=TABLES, lyrics=IDS[:2], audio=IDS) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (root / name).write_text(text, encoding="utf-8")
    (root / "lyrics").mkdir(exist_ok=True)
    for track in lyrics:
        (root / "lyrics" / f"{track}.txt").write_text("la la", encoding="utf-8")
    (root / "audios").mkdir(exist_ok=True)
    for track in audio:
        (root / "audios" / f"{track}.mp3").write_bytes(b"ID3")


def test_every_table_is_read_typed_and_keyed_by_track_id(tmp_path):
    write_release(tmp_path)
    release = sonic.CREAM.load_music4all(tmp_path)
    assert release.root == tmp_path
    assert release.track_ids.tolist() == list(IDS)
    info = release.information
    assert info.index.name == "track_id" and list(info.columns) == ["artist", "song", "album_name"]
    assert info.loc[IDS[0], "song"] == '"Heroes"'  # quotes are text in the release
    assert info.loc[IDS[1], "song"] == "O Mundo É Um Moinho"
    meta = release.metadata
    assert list(meta.columns) == ["spotify_id", "popularity", "release", "danceability", "energy", "key", "mode",
                                  "valence", "tempo", "duration_ms"]  # fmt: skip
    assert str(meta["spotify_id"].dtype) == "str" and str(meta["tempo"].dtype) == "float64"
    assert str(meta["release"].dtype) == "Int64" and str(meta["duration_ms"].dtype) == "Int64"
    assert meta.loc[IDS[2], "tempo"] == pytest.approx(120.5) and meta.loc[IDS[0], "release"] == 1977
    assert pd.isna(meta.loc[IDS[1], "duration_ms"])
    assert release.genres[IDS[0]] == ("rock", "art rock", "glam rock")
    assert release.tags[IDS[1]] == () and release.tags[IDS[0]] == ("classic", "70s")
    assert release.lang[IDS[1]] == "pt"
    assert release.lyrics[IDS[0]] == tmp_path / "lyrics" / f"{IDS[0]}.txt"
    assert sorted(release.audio.index) == sorted(IDS) and release.audio[IDS[2]].name == f"{IDS[2]}.mp3"


def test_ids_missing_from_one_source_are_reported_not_fatal(tmp_path):
    write_release(tmp_path)
    release = load_music4all(tmp_path)
    assert release.mismatches == {
        "tracks in id_information.csv without an entry in lyrics/": (IDS[2],),
        "ids in id_lang.csv that id_information.csv does not list": ("ZZZZZZZZZZZZZZZZ",),
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id_tags.csv": None}, r"has no id_tags\.csv; the release has id_information\.csv"),
        ({"id_lang.csv": "id,lang\nx,en\n"}, r"id_lang\.csv' has no column 'id'; found: 'id,lang' \(.*tab separated"),
        ({"id_genres.csv": f"id\tgenres\n{IDS[0]}\trock\n{IDS[0]}\tpop\n"}, r"lists track '0009fFIM1eYThaPg' twice"),
        ({"id_metadata.csv": TABLES["id_metadata.csv"].replace("113.2", "fast")}, r"has a tempo that is not a number"),
        ({"id_metadata.csv": TABLES["id_metadata.csv"].replace("1977", "1977.5")}, r"release that is not a whole"),
    ],
)
def test_a_broken_release_is_one_sentence_naming_the_file(tmp_path, change, message):
    tables = {name: text for name, text in {**TABLES, **change}.items() if text is not None}
    write_release(tmp_path, tables)
    with pytest.raises(DataError, match=message) as caught:
        load_music4all(tmp_path)
    assert "\n" not in str(caught.value)


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(DataError, match=r"Music4All folder '.*nowhere' does not exist"):
        load_music4all(tmp_path / "nowhere")


def test_the_demo_catalogue_loads_as_a_release(tmp_path):
    config = CatalogueConfig(tracks_per_style=1, n_users=5, clip_seconds=1.0, seed=2)
    catalogue = generate_catalogue(tmp_path, config, num_workers=1)
    release = load_music4all(tmp_path)
    tracks = catalogue.tracks.set_index("track_id")
    assert release.mismatches == {}
    assert release.track_ids.tolist() == tracks.index.tolist()
    assert release.information["artist"].tolist() == tracks["artist"].tolist()
    styles = {style.name: style for style in STYLES}
    assert [release.genres[t] for t in tracks.index] == [styles[s].genres for s in tracks["style"]]
    assert [release.tags[t][0] for t in tracks.index] == tracks["style"].tolist()
    assert release.metadata["key"].tolist() == tracks["key"].tolist()
    assert release.metadata["tempo"].to_numpy() == pytest.approx(tracks["tempo"].to_numpy())
    assert release.lang.tolist() == tracks["lang"].tolist()
    assert all(path.is_file() for path in release.audio) and len(release.audio) == len(tracks)
    assert all(path.is_file() for path in release.lyrics) and len(release.lyrics) == len(tracks)
