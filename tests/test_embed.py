"""Embedding a folder of audio: track ids, failures, manifest, workers, CLI (sonic.tails.runner)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import librosa
import numpy as np
import pytest
from audio_fixtures import noise, tone, truncate, write
from typer.testing import CliRunner

from sonic.cli.app import app
from sonic.cream.audio.load import decode
from sonic.errors import AudioError, DataError, SonicError, UnknownNameError
from sonic.tails.models.mfcc import MFCCConfig, MFCCEmbedder
from sonic.tails.runner import embed_folder
from sonic.tails.table import read_embeddings

GOOD = {  # track id -> (format, sample rate, channels)
    "top": ("wav_pcm16", 22050, 1),
    "album/a": ("flac", 44100, 2),
    "album/b": ("ogg_vorbis", 44100, 2),
    "album/disc 1/c": ("ogg_opus", 48000, 1),
    "d": ("mp3", 44100, 2),
    "multi/eight": ("wav_float", 96000, 8),
}
BROKEN = {  # relative path -> word the reason must contain
    "broken/empty.mp3": "empty",
    "broken/cut.wav": "truncated",
    "broken/text.mp3": "cannot decode",
    "broken/silent.wav": "silent",
    "broken/short.wav": "too short",
}


def _clip(seconds: float, rate: int, channels: int, seed: int) -> np.ndarray:
    columns = [
        tone(110.0 * (seed + c + 1), seconds, rate, amplitude=0.3) + noise(seconds, rate, seed=seed + c)
        for c in range(channels)
    ]
    return np.stack(columns, axis=1)


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    """A nested folder of six good files in every format and five broken ones (plus a text file)."""
    root = tmp_path_factory.mktemp("music")
    for seed, (track, (kind, rate, channels)) in enumerate(GOOD.items()):
        write(root / track, _clip(2.0, rate, channels, seed), rate, kind)
    (root / "broken").mkdir()
    (root / "broken/empty.mp3").write_bytes(b"")
    truncate(write(root / "broken/cut", noise(2.0, 22050), 22050, "wav_pcm16"))
    (root / "broken/text.mp3").write_text("ID3 but not really an mp3")
    write(root / "broken/silent", np.zeros(2 * 22050, np.float32), 22050, "wav_pcm16")
    write(root / "broken/short", tone(440.0, 0.2, 22050), 22050, "wav_pcm16")
    (root / "README.txt").write_text("not audio")
    return root


@pytest.fixture(scope="module")
def embedded(music, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return embed_folder(music, "mfcc_104", out, num_workers=2, batch_size=2, progress=False)


def _failures_csv(path) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["path", "reason"]
    return {path: reason for path, reason in rows[1:]}


def test_good_files_are_embedded_under_their_track_ids(embedded):
    table = read_embeddings(embedded.table_path)

    assert embedded.n_embedded == len(GOOD)
    assert sorted(table.track_ids) == sorted(GOOD)
    assert table.vectors.shape == (len(GOOD), 104) and table.vectors.dtype == np.float32
    assert np.isfinite(table.vectors).all()


def test_broken_files_are_listed_with_a_reason(embedded):
    failures = _failures_csv(embedded.failures_path)

    assert embedded.n_failed == len(BROKEN)
    assert set(failures) == set(BROKEN)
    for path, word in BROKEN.items():
        assert word in failures[path], f"{path}: {failures[path]}"
    assert dict(embedded.failures) == failures


def test_vectors_equal_the_embedder_on_the_decoded_file(music, embedded):
    table = read_embeddings(embedded.table_path)
    embedder = MFCCEmbedder.from_name("mfcc_104")

    for track in ("album/disc 1/c", "multi/eight"):
        path = next(music.glob(f"{track}.*"))
        waveform, _ = decode(path, sample_rate=22050)
        np.testing.assert_array_equal(table.vectors[list(table.track_ids).index(track)], embedder.embed([waveform])[0])


def test_manifest_says_what_produced_the_table(music, embedded):
    manifest = json.loads(embedded.manifest_path.read_text())

    assert manifest["artifact"] == "embeddings"
    assert manifest["model"] == "mfcc_104" and manifest["dim"] == 104
    assert manifest["sample_rate"] == 22050 and manifest["pooling"] == "mean over time"
    assert manifest["parameters"]["n_mfcc"] == 104
    assert manifest["window"] == {"offset_seconds": 0.0, "duration_seconds": None}
    assert (manifest["n_embedded"], manifest["n_failed"]) == (len(GOOD), len(BROKEN))
    assert manifest["audio_dir"] == str(music.resolve())
    assert "soundfile" in manifest["versions"]


def test_inline_run_gives_the_same_table_as_workers(music, embedded, tmp_path):
    inline = embed_folder(music, "mfcc_104", tmp_path, num_workers=0, progress=False)

    ours, theirs = read_embeddings(inline.table_path), read_embeddings(embedded.table_path)
    np.testing.assert_array_equal(ours.track_ids, theirs.track_ids)
    np.testing.assert_array_equal(ours.vectors, theirs.vectors)
    assert inline.failures == embedded.failures


class _MainProcessMFCC(MFCCEmbedder):
    """An MFCC embedder that, like a GPU model, must embed in the main process."""

    runs_in_workers = False


def test_embedder_in_main_process_gets_waveforms_from_workers(music, embedded, tmp_path):
    embedder = _MainProcessMFCC(MFCCConfig(n_mfcc=104))

    result = embed_folder(music, embedder, tmp_path, num_workers=2, batch_size=4, progress=False)

    expected = read_embeddings(embedded.table_path).vectors
    np.testing.assert_array_equal(read_embeddings(result.table_path).vectors, expected)


class _CrashingMFCC(MFCCEmbedder):
    """An embedder whose worker process dies, as on a decoder crash."""

    def embed(self, batch):
        os._exit(3)


def test_a_dying_worker_is_one_error_naming_the_files_in_progress(music, tmp_path):
    with pytest.raises(AudioError, match="a worker process died .* while decoding one of '"):
        embed_folder(music, _CrashingMFCC(), tmp_path, num_workers=2, progress=False)


def test_window_is_applied_and_recorded(music, tmp_path):
    window = {"offset_seconds": 0.5, "duration_seconds": 1.2}

    result = embed_folder(music, "mfcc_20", tmp_path, num_workers=0, progress=False, **window)

    table = read_embeddings(result.table_path)
    waveform, _ = decode(music / "top.wav", sample_rate=22050, **window)
    expected = MFCCEmbedder.from_name("mfcc_20").embed([waveform])[0]
    np.testing.assert_array_equal(table.vectors[list(table.track_ids).index("top")], expected)
    assert table.manifest["window"] == {"offset_seconds": 0.5, "duration_seconds": 1.2}


def test_same_track_id_twice_keeps_the_first_in_path_order(tmp_path):
    audio = tmp_path / "audio"
    write(audio / "a", tone(440.0, 1.5, 22050), 22050, "mp3")
    write(audio / "a", tone(880.0, 1.5, 22050), 22050, "ogg_vorbis")

    result = embed_folder(audio, "mfcc_13", tmp_path / "out", num_workers=0, progress=False)

    assert list(read_embeddings(result.table_path).track_ids) == ["a"]
    assert result.failures == (("a.ogg", "duplicate track_id 'a': 'a.mp3' has the same id and is used"),)


def test_exclude_file_skips_tracks(music, tmp_path):
    exclude = tmp_path / "seen.csv"
    exclude.write_text("track_id,other\ntop,1\nalbum/a,2\n")

    result = embed_folder(music, "mfcc_13", tmp_path / "out", num_workers=0, exclude=exclude, progress=False)

    assert sorted(read_embeddings(result.table_path).track_ids) == sorted(set(GOOD) - {"top", "album/a"})
    assert result.n_failed == len(BROKEN)
    with pytest.raises(DataError, match="no 'track_id' column"):
        embed_folder(music, "mfcc_13", tmp_path / "out", exclude=music / "README.txt", progress=False)


def test_folders_without_usable_audio_are_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "notes.txt").write_text("no audio here")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.wav").write_bytes(b"")

    with pytest.raises(AudioError, match="no audio files"):
        embed_folder(tmp_path / "empty", "mfcc_104", tmp_path / "out", progress=False)
    with pytest.raises(AudioError, match="no audio files"):
        embed_folder(tmp_path / "text", "mfcc_104", tmp_path / "out", progress=False)
    with pytest.raises(AudioError, match="does not exist"):
        embed_folder(tmp_path / "missing", "mfcc_104", tmp_path / "out", progress=False)
    with pytest.raises(AudioError, match="none of the 1 audio files .* could be embedded"):
        embed_folder(tmp_path / "bad", "mfcc_104", tmp_path / "out", progress=False)
    failures = _failures_csv(tmp_path / "out" / "mfcc_104.failures.csv")
    assert failures == {"x.wav": f"audio file '{tmp_path / 'bad' / 'x.wav'}' is empty (0 bytes)"}


def test_bad_model_and_options_are_errors(music, tmp_path):
    with pytest.raises(UnknownNameError, match=r"unknown embedder 'mert_nope'; known: .*mfcc_<N>"):
        embed_folder(music, "mert_nope", tmp_path, progress=False)
    with pytest.raises(SonicError, match="batch size"):
        embed_folder(music, "mfcc_104", tmp_path, batch_size=0, progress=False)
    with pytest.raises(SonicError, match="duration"):
        embed_folder(music, "mfcc_104", tmp_path, duration_seconds=-1.0, progress=False)


def test_cli_embed_writes_the_table_and_prints_a_summary(music, tmp_path):
    out = tmp_path / "cli"
    args = ["embed", "--audio-dir", str(music), "--model-type", "mfcc_20", "--out", str(out)]
    args += ["--num-workers", "2", "--batch-size", "3"]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    assert f"embedded {len(GOOD)} tracks" in result.output
    assert f"failed {len(BROKEN)} files" in result.output and "mfcc_20.failures.csv" in result.output
    assert "tracks/s" in result.output
    assert sorted(read_embeddings(out / "mfcc_20.parquet").track_ids) == sorted(GOOD)


def test_cli_bad_audio_dir_is_one_line_and_exit_code_2(tmp_path):
    missing = tmp_path / "nowhere"
    command = [sys.executable, "-m", "sonic", "embed", "--audio-dir", str(missing), "--model-type", "mfcc_104"]
    command += ["--out", str(tmp_path)]

    result = subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    expected = f"sonic: error: audio folder '{missing}' does not exist or is not a folder"
    assert result.stderr.strip().splitlines() == [expected]


# --- Same-album neighbours: our table against a plain librosa loop on the same files ---

ALBUMS, TRACKS_PER_ALBUM, TRACK_SECONDS, ALBUM_RATE = 6, 4, 20.0, 24000


def _album_track(album: int, track: int) -> np.ndarray:
    """A melody whose timbre (harmonic profile, register, noise colour) belongs to ``album``."""
    timbre = np.random.default_rng(100 + album)
    harmonics = timbre.dirichlet(np.ones(8) * 0.5)  # (8,) relative harmonic amplitudes
    register_hz = 110.0 * 2 ** timbre.uniform(0, 3)
    noise_cutoff = timbre.uniform(0.05, 0.6)
    melody = np.random.default_rng(1000 * album + track)
    n = round(TRACK_SECONDS * ALBUM_RATE)
    note_samples = round(melody.uniform(0.2, 0.5) * ALBUM_RATE)
    pitches = register_hz * 2 ** (melody.integers(0, 12, size=n // note_samples + 1) / 12)
    frequency = np.repeat(pitches, note_samples)[:n]
    phase = 2 * np.pi * np.cumsum(frequency) / ALBUM_RATE
    envelope = np.tile(np.exp(-np.linspace(0, 4, note_samples)), n // note_samples + 1)[:n]
    voice = sum(a * np.sin((h + 1) * phase) for h, a in enumerate(harmonics)) * envelope
    smoothing = max(1, round(1 / noise_cutoff))  # moving average: a low-pass whose cutoff is the album's
    hiss = np.convolve(melody.standard_normal(n), np.ones(smoothing) / smoothing, "same")
    return (0.4 * voice / np.abs(voice).max() + 0.03 * hiss).astype(np.float32)


def _librosa_mfcc_104(y: np.ndarray) -> np.ndarray:
    return librosa.feature.mfcc(y=y, sr=22050, n_mfcc=104, n_fft=2048, hop_length=512, n_mels=128).mean(axis=1)


def _same_album_fraction(vectors: np.ndarray, albums: np.ndarray) -> float:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return float(np.mean(albums[np.argmax(similarity, axis=1)] == albums))


# librosa.load imports audioread, which imports modules Python deprecates
@pytest.mark.filterwarnings("ignore:'(aifc|audioop|sunau)' is deprecated:DeprecationWarning")
@pytest.mark.slow
def test_same_album_neighbours_at_least_as_good_as_librosa(tmp_path):
    audio = tmp_path / "albums"
    for album in range(ALBUMS):
        for track in range(TRACKS_PER_ALBUM):
            # Opus encodes slowly: one track per album
            kind = "ogg_opus" if track == album % TRACKS_PER_ALBUM else "ogg_vorbis"
            write(audio / f"album{album}" / f"track{track}", _album_track(album, track), ALBUM_RATE, kind)

    table = read_embeddings(embed_folder(audio, "mfcc_104", tmp_path / "out", num_workers=2, progress=False).table_path)
    paths = sorted(audio.rglob("track*.*"))
    baseline = np.stack([_librosa_mfcc_104(librosa.load(path, sr=22050)[0]) for path in paths])
    baseline_albums = np.array([path.parent.name for path in paths])

    ours = _same_album_fraction(table.vectors, np.array([track.split("/")[0] for track in table.track_ids]))
    theirs = _same_album_fraction(baseline, baseline_albums)
    assert len(table.track_ids) == ALBUMS * TRACKS_PER_ALBUM
    assert ours >= theirs, (ours, theirs)
    assert ours >= 0.75, ours


def test_a_table_with_vectors_of_different_lengths_names_the_file_and_first_bad_track(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "ragged.parquet"
    embeddings = pa.array([[1.0, 2.0], [3.0, 4.0], [5.0], [6.0, 7.0, 8.0]], type=pa.list_(pa.float32()))
    pq.write_table(pa.table({"track_id": ["a", "b", "c", "d"], "embedding": embeddings}), path)

    with pytest.raises(DataError) as error:
        read_embeddings(path)

    assert str(error.value) == (
        f"embedding table '{path}' is malformed: track 'c' has a vector of 1 values where the first track 'a' has 2"
    )
    pq.write_table(pa.table({"track_id": ["a", "b"], "embedding": pa.array([[1.0], None])}), path)
    with pytest.raises(DataError, match="track 'b' has no vector"):
        read_embeddings(path)
    pq.write_table(pa.table({"track_id": ["a", "b"], "embedding": [[1.0, 2.0], [3.0, 4.0]]}), path)
    np.testing.assert_array_equal(read_embeddings(path).vectors, [[1.0, 2.0], [3.0, 4.0]])


def test_a_table_read_batch_by_batch_is_the_table_written_and_bad_fixed_size_tables_still_fail(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sonic.tails.table import EmbeddingTable, write_embeddings

    rng = np.random.default_rng(3)
    ids = np.array([f"t{n:05d}" for n in rng.permutation(9000)])  # more rows than one 4096-row batch
    table = EmbeddingTable(ids, rng.standard_normal((9000, 7), dtype=np.float32), {"embedder": "test"})
    back = read_embeddings(write_embeddings(table, tmp_path / "big.parquet"))
    np.testing.assert_array_equal(back.track_ids, ids)
    np.testing.assert_array_equal(back.vectors, table.vectors)
    assert back.vectors.dtype == np.float32 and back.manifest == {"embedder": "test"}

    path = tmp_path / "holes.parquet"
    values = pa.array([1.0, 2.0, None, 4.0, 5.0, 6.0], type=pa.float32())
    column = pa.FixedSizeListArray.from_arrays(values, 2)
    pq.write_table(pa.table({"track_id": ["a", "b", "c"], "embedding": column}), path)
    with pytest.raises(DataError, match="track 'b' has a missing value in its vector"):
        read_embeddings(path)
    whole = pa.array([1.0, 2.0, 3.0, 4.0], pa.float32())
    column = pa.FixedSizeListArray.from_arrays(whole, 2, mask=pa.array([False, True]))
    pq.write_table(pa.table({"track_id": ["a", "b"], "embedding": column}), path)
    with pytest.raises(DataError, match="track 'b' has no vector"):
        read_embeddings(path)
