"""What every folder job shares (sonic.cream.audio.folder_jobs): the walk, unreadable files, duplicates, failures file."""

from __future__ import annotations

import csv
import os

import pytest
from audio_fixtures import tone, write

from sonic.errors import AudioError, SonicError
from sonic.cream.audio.folder_jobs import audio_folder, check_window, write_failures


def test_audio_folder_lists_files_ids_and_duplicates(tmp_path):
    write(tmp_path / "b" / "x", tone(440.0, 0.2, 8000), 8000)
    write(tmp_path / "a", tone(440.0, 0.2, 8000), 8000, "flac")
    write(tmp_path / "a", tone(440.0, 0.2, 8000), 8000)
    (tmp_path / ".hidden.wav").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")

    folder = audio_folder(tmp_path)
    kept, duplicates = folder.unique()

    assert folder.relative == ("a.flac", "a.wav", "b/x.wav")
    assert folder.track_ids == ("a", "a", "b/x")
    assert kept == [0, 2]
    assert duplicates == [("a.wav", "duplicate track_id 'a': 'a.flac' has the same id and is used")]
    assert folder.unique(lambda later, first: f"{later} after {first}")[1] == [("a.wav", "1 after 0")]
    assert audio_folder(tmp_path, skip_under=tmp_path / "b").relative == ("a.flac", "a.wav")
    with pytest.raises(AudioError, match="no audio files"):
        audio_folder(tmp_path / "b", skip_under=tmp_path / "b")


def test_unreadable_files_are_found_by_the_walk_and_leave_their_id_to_a_readable_file(tmp_path, monkeypatch):
    write(tmp_path / "b", tone(440.0, 0.2, 8000), 8000)
    (tmp_path / "a.flac").symlink_to(tmp_path / "gone.flac")  # a link to nothing, sorted before a.wav
    write(tmp_path / "a", tone(440.0, 0.2, 8000), 8000)
    os.mkfifo(tmp_path / "c.wav")  # not a plain file (opening it would block)
    write(tmp_path / "d", tone(440.0, 0.2, 8000), 8000)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: not str(path).endswith("d.wav") and real_access(path, mode))

    folder = audio_folder(tmp_path)
    kept, failures = folder.unique()

    assert folder.relative == ("a.flac", "a.wav", "b.wav", "c.wav", "d.wav")
    assert [folder.relative[index] for index in kept] == ["a.wav", "b.wav"]
    reasons = dict(failures)
    assert sorted(reasons) == ["a.flac", "c.wav", "d.wav"]
    assert f"is a link to '{tmp_path / 'gone.flac'}', which does not exist" in reasons["a.flac"]
    assert "is not a plain file" in reasons["c.wav"]
    assert reasons["d.wav"].endswith("no permission")


def test_failures_file_is_written_atomically(tmp_path):
    target = tmp_path / "sub" / "x.failures.csv"
    write_failures(target, [("a.mp3", "empty")])
    assert sorted(path.name for path in target.parent.iterdir()) == ["x.failures.csv"]


def test_failures_file_and_window_check(tmp_path):
    path = write_failures(tmp_path / "x.failures.csv", [("a.mp3", "empty"), ("b.wav", "too short, really")])

    with open(path, newline="", encoding="utf-8") as stream:
        assert list(csv.reader(stream)) == [["path", "reason"], ["a.mp3", "empty"], ["b.wav", "too short, really"]]
    assert check_window(0, None) == (0.0, None)
    with pytest.raises(SonicError, match="offset must be >= 0 seconds"):
        check_window(-1.0, None)
    with pytest.raises(SonicError, match="duration must be > 0 seconds"):
        check_window(0.0, 0.0)
