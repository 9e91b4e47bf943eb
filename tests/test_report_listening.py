"""The report's listening section on a study made by hand: whose lists it shows and why, what it marks, the
excerpts it cuts (once per track, named by track id, URL-quoted on the page), and a study without audio."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd
import pytest
import soundfile

from sonic.study import store
from sonic.study.report.data import load
from sonic.study.report.listening import LISTENING_CSV, find_tracks, listening
from sonic.study.report.page import render

WEIRD = "a#b?c% é"  # a track id (and so an audio file name) holding URL syntax and a non-ASCII letter
#: The catalogue: hot tracks (played in train) and two cold ones (played only in the cold test).
HOT = [f"t{n:02d}" for n in range(16)] + [WEIRD, "album/x"]
COLD = ["c1", "c2"]
USERS = ["u1", "u2", "u3", "u4"]
DAY = pd.Timestamp("2020-01-01")


def events():
    """Each part's events; user i (0-based) plays HOT[i:i+7] in train on days 1..7, the first two users one more
    track in val (day 10), every user HOT[i+9] in test, and u3, u4 a cold track each in the cold test; u0, a train
    user alone, plays every hot track (so that each is played in train)."""
    rows = {"train": [("u0", track, DAY) for track in HOT], "val": [], "test": [], "cold_test": []}
    for i, user in enumerate(USERS):
        rows["train"] += [(user, HOT[i + day], DAY + pd.Timedelta(days=day + 1)) for day in range(7)]
        if i < 2:
            rows["val"].append((user, HOT[i + 7], DAY + pd.Timedelta(days=10)))
        rows["test"].append((user, HOT[i + 9], DAY + pd.Timedelta(days=20)))
    rows["cold_test"] = [("u3", "c1", DAY + pd.Timedelta(days=21)), ("u4", "c2", DAY + pd.Timedelta(days=21))]
    return {part: pd.DataFrame(items, columns=["user_id", "track_id", "timestamp"]).assign(count=1)
            for part, items in rows.items()}  # fmt: skip


def history_of(i: int) -> list[str]:
    """User i's last five distinct tracks before the test, most recent first (by construction of events())."""
    played = HOT[i : i + 7] + ([HOT[i + 7]] if i < 2 else [])
    return played[::-1][:5]


def knn_lists(i: int) -> list[str]:
    """The best content model's hot list for user i: the weird id first, user i's test track second (a hit)."""
    rest = [t for t in HOT if t not in HOT[i : i + 10] and t != WEIRD]
    return [WEIRD, HOT[i + 9], *rest][:10]


def write_run_folder(folder, lists: dict[tuple[str, str], list[str]], slices: dict):
    """A run folder with recommendations.parquet (lists by (user, candidate rule); rule 'val' is the val list,
    made without history) and config.json's slices."""
    rows = []
    for (user, rule), tracks in lists.items():
        for rank, track in enumerate(tracks, 1):
            rows.append({"user_id": user, "track_id": track, "rank": rank, "score": 1.0 / rank,
                         "history": rule != "val", "candidates": "train" if rule == "val" else rule})
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(folder / "recommendations.parquet", index=False)
    (folder / "config.json").write_text(json.dumps({"slices": slices}))


def store_run(root, name, label, embedding, means: dict[str, float], *, shuffle=False):
    per_user = pd.concat([pd.DataFrame({"user_id": USERS, "metric": "NDCG", "k": 10, "value": mean, "slice": split})
                          for split, mean in means.items()], ignore_index=True)  # fmt: skip
    aggregates = per_user.groupby(["metric", "k", "slice"], as_index=False)["value"].mean().rename(
        columns={"value": "mean"}).assign(ci_low=np.nan, ci_high=np.nan, n_users=len(USERS))
    record = {"label": label, "recommender": label.split("-")[0], "options": {}, "shuffle": shuffle,
              "embedding": embedding, "embedding_manifest": "", "split_dir": str(root / "split" / "seed-1"),
              "split_seed": 1,
              "modes": list(means), "seed": 1, "ks": [10], "run_dir": str(root / "runs" / name), "hash": "0" * 64,
              "warnings": []}  # fmt: skip
    store.write_run(root / "results", name, record, per_user, aggregates)


def make_study(root, *, audio=True):
    root.mkdir(parents=True)
    (root / "split" / "seed-1").mkdir(parents=True)
    for part, frame in events().items():
        frame.to_parquet(root / "split" / "seed-1" / f"{part}.parquet", index=False)
    audio_line = 'audio = "audio"\n' if audio else ""
    (root / "study.toml").write_text(
        f'title = "listening"\n[data]\nevents = "events.tsv"\n{audio_line}music4all = "m4a"\n[split]\n'
        'protocol = "tamm2025"\n[embeddings]\nnames = ["mfcc_104", "dino_vits16"]\n'
        '[[recommenders]]\nname = "pop"\n[[recommenders]]\nname = "knn"\n'
        '[[recommenders]]\nname = "knn"\nlabel = "knn-shuffled"\nshuffle = true\n'
        '[evaluation]\nmodes = ["val", "test", "cold_test"]\nks = [10]\nseeds = [1]\n'
        "[report]\nk = 10\nlistening_users = 2\n"
    )
    # knn on mfcc is best on the hot test, knn on dino on the cold test; the shuffle control tops both (left out)
    store_run(root, "knn-mfcc_104", "knn", "mfcc_104", {"test": 0.5, "cold_test": 0.2})
    store_run(root, "knn-dino_vits16", "knn", "dino_vits16", {"test": 0.3, "cold_test": 0.4})
    store_run(root, "knn-shuffled-mfcc_104", "knn-shuffled", "mfcc_104", {"test": 0.9, "cold_test": 0.9}, shuffle=True)
    store_run(root, "pop", "pop", "-", {"test": 0.1, "cold_test": 0.0})
    hot = {(user, "train"): knn_lists(i) for i, user in enumerate(USERS)}
    val = {(user, "val"): ["t15", "t14"] for user in USERS[:2]}  # users in val and test: the test list is shown
    write_run_folder(root / "runs" / "knn-mfcc_104", {**val, **hot, ("u3", "cold"): ["c2", "c1"],
                                                      ("u4", "cold"): ["c2", "c1"]},
                     {"test": {"candidates": "train"}, "cold_test": {"candidates": "cold"}})
    write_run_folder(root / "runs" / "knn-dino_vits16", {**hot, ("u3", "cold"): ["c1", "c2"],
                                                         ("u4", "cold"): ["c1", "c2"]},
                     {"test": {"candidates": "train"}, "cold_test": {"candidates": "cold"}})
    popular = HOT[6:16]
    write_run_folder(root / "runs" / "pop", {(user, "train"): popular for user in USERS},
                     {"test": {"candidates": "train"}, "cold_test": {"candidates": "cold", "status": "unable",
                      "reason": "the model cannot score a track without train events"}})  # fmt: skip
    (root / "m4a").mkdir()
    pd.DataFrame({"id": HOT + COLD, "artist": [f"Artist <{t}>" for t in HOT + COLD], "song": "Song",
                  "album_name": "A"}).to_csv(root / "m4a" / "id_information.csv", sep="\t", index=False)
    if audio:
        for n, track in enumerate(HOT + COLD):
            if track == "t15":
                continue  # no audio file: listed without a player
            suffix = ".WAV" if track == WEIRD else ".wav"  # any case of an audio extension
            path = root / "audio" / f"{track}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            seconds = np.arange(22050 * 3) / 22050
            soundfile.write(path, (0.3 * np.sin(2 * np.pi * (200 + 20 * n) * seconds)).astype(np.float32), 22050)
    return root


@pytest.fixture(scope="module")
def section(tmp_path_factory):
    root = make_study(tmp_path_factory.mktemp("listening") / "study")
    report = root / "report"
    (report / "data").mkdir(parents=True)
    section = listening(load(root), report, num_workers=0)
    (report / "index.html").write_text(render("listening", "", [section]))
    return report, section


def test_the_rows_are_the_best_content_models_lists_with_hits_and_cold_tracks(section):
    report, _ = section
    rows = pd.read_csv(report / LISTENING_CSV, dtype={"user_id": str, "track_id": str})
    assert set(rows["slice"]) == {"test", "cold_test"}
    for split, users in (("test", USERS), ("cold_test", ["u3", "u4"])):
        shown = rows[rows["slice"] == split]
        picked = sorted(set(shown["user_id"]))
        assert len(picked) == 2 and set(picked) <= set(users)  # two users of the slice, drawn
        for user in picked:
            i = USERS.index(user)
            mine = shown[shown["user_id"] == user]
            history = mine[mine["role"] == "history"].sort_values("rank")
            assert list(history["track_id"]) == history_of(i)  # train and val, most recent first
            assert history["hit"].isna().all() and history["model"].isna().all()
    test = rows[(rows["slice"] == "test") & (rows["role"] == "recommendation")]
    assert set(test["model"]) == {"knn / mfcc_104", "pop"}  # the best content model on test, the shuffle left out
    for user, mine in test[test["model"] == "knn / mfcc_104"].groupby("user_id"):
        mine = mine.sort_values("rank")
        assert list(mine["track_id"]) == knn_lists(USERS.index(user))  # the test list, not the val list
        assert list(mine["hit"]) == [False, True] + [False] * (len(mine) - 2)  # the user's test track at rank 2
        assert not mine["cold"].any()
    cold = rows[(rows["slice"] == "cold_test") & (rows["role"] == "recommendation")]
    assert set(cold["model"]) == {"knn / dino_vits16"}  # best on the cold test; pop is unable there: no rows
    for user, mine in cold.groupby("user_id"):
        mine = mine.sort_values("rank")
        assert list(mine["track_id"]) == ["c1", "c2"] and mine["cold"].all()
        assert list(mine["hit"]) == [user == "u3", user == "u4"]


def test_each_track_is_cut_once_and_missing_audio_is_said(section):
    report, section = section
    rows = pd.read_csv(report / LISTENING_CSV, dtype={"track_id": str})
    with_audio = rows[rows["track_id"] != "t15"]
    assert with_audio["excerpt"].notna().all() and rows.loc[rows["track_id"] == "t15", "excerpt"].isna().all()
    written = sorted(p.relative_to(report).as_posix() for p in (report / "excerpts").rglob("*") if p.is_file())
    assert written == sorted(set(with_audio["excerpt"]))  # one file per distinct track, no temporary left
    assert f"excerpts/{WEIRD}.opus" in written and "excerpts/album/x.opus" in written
    info = soundfile.info(report / "excerpts" / "c1.opus")
    assert (info.subtype, info.samplerate, info.channels) == ("OPUS", 48000, 1)
    assert info.duration == pytest.approx(3.0, abs=0.05)  # a 3-s clip is cut whole
    sentences = [block.text for block in section.blocks if getattr(block, "kind", "") == "absent"]
    assert any("1 of the" in s and "no audio file" in s for s in sentences), sentences
    assert not any("unable" in s for s in sentences)  # pop's unable list is said in its place (see the page)


def test_the_page_quotes_file_names_and_escapes_names(section):
    report, _ = section
    page = (report / "index.html").read_text()
    sources = re.findall(r'<audio controls preload="metadata" src="([^"]+)"', page)
    assert f'src="excerpts/{quote(WEIRD + ".opus")}"' in page and "excerpts/album/x.opus" in sources
    for source in sources:
        assert (report / unquote(source)).is_file(), source
    assert html.escape(WEIRD, quote=False) in page  # the id shown as text
    assert "Artist &lt;t00&gt; - Song" in page or "Artist &lt;t01&gt; - Song" in page  # names from Music4All, escaped
    assert "<t00>" not in page
    assert "pop is unable on the cold test slice: the model cannot score a track without train events" in page
    # one hit in each drawn user's knn and pop lists on test (pop's ten hold every test track), one per cold user
    assert page.count('class="badge hit"') == 2 + 2 + 2
    assert page.count('class="badge cold"') == 4


def test_without_an_audio_folder_the_lists_are_shown_and_the_section_says_so(tmp_path):
    root = make_study(tmp_path / "study", audio=False)
    report = root / "report"
    (report / "data").mkdir(parents=True)
    section = listening(load(root), report, num_workers=0)
    sentences = [block.text for block in section.blocks if getattr(block, "kind", "") == "absent"]
    assert sentences == ["This study has no [data] audio: the lists are shown without excerpts."]
    rows = pd.read_csv(report / LISTENING_CSV)
    assert rows["excerpt"].isna().all() and len(rows) > 0
    assert not (report / "excerpts").exists()
    assert "<audio" not in render("listening", "", [section])


def test_a_moved_study_folder_finds_its_runs_and_split_under_it(tmp_path):
    moved = make_study(tmp_path / "study").rename(tmp_path / "moved")  # the store still names tmp_path/study
    section = listening(load(moved), tmp_path / "report", num_workers=0)
    absent = [block.text for block in section.blocks if getattr(block, "kind", "") == "absent"]
    assert len(absent) == 1 and "no audio file" in absent[0]  # t15's, as before the move: nothing else is missing
    rows = pd.read_csv(tmp_path / "report" / LISTENING_CSV)
    assert set(rows["model"].dropna()) == {"knn / mfcc_104", "knn / dino_vits16", "pop"}


def test_listening_users_zero_leaves_the_section_out(tmp_path):
    root = make_study(tmp_path / "study")
    text = (root / "study.toml").read_text().replace("listening_users = 2", "listening_users = 0")
    (root / "study.toml").write_text(text)
    section = listening(load(root), tmp_path / "report", num_workers=0)
    assert [block.text for block in section.blocks] == ["No listening examples: listening_users = 0 in [report]."]


def test_track_ids_find_their_files_and_never_leave_the_folder(tmp_path):
    audio = tmp_path / "audio"
    (audio / "album").mkdir(parents=True)
    for name in ("a.mp3", "B.FLAC", "album/c.ogg", ".hidden.wav", "notes.txt"):
        (audio / name).write_bytes(b"x")
    (tmp_path / "outside.wav").write_bytes(b"x")
    found = find_tracks(audio, ["a", "B", "album/c", ".hidden", "notes", "../outside", "album/../a", "missing"])
    assert found == {"a": audio / "a.mp3", "B": audio / "B.FLAC", "album/c": audio / "album" / "c.ogg"}


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)")
def test_every_excerpt_plays_in_chromium(section, tmp_path):
    """The page's own check (templates/check.js) writes, once every player has read its metadata or failed, how
    many players report a length above 0 and the shortest length; headless Chromium's DOM dump shows them."""
    report, _ = section
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
               (report / "index.html").as_uri()]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    body = dict(re.findall(r'([\w-]+)="([^"]*)"', re.search(r"<body([^>]*)>", result.stdout).group(1)))
    players = (report / "index.html").read_text().count("<audio ")
    assert players > 20
    assert body.get("data-audio-checked") == "yes", body
    assert body["data-audio"] == body["data-audio-playable"] == str(players), body
    assert body["data-broken-audio"] == "" and body["data-errors"] == "0", body
    assert float(body["data-audio-shortest"]) == pytest.approx(3.0, abs=0.05)  # the 3-s clips, cut whole
