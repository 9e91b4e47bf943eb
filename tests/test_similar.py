"""sonic similar: nearest tracks by cosine, exact or through a saved FAISS index, and for new audio files."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
from audio_fixtures import noise, tone, write
from cli_runner import sonic

from sonic.errors import DataError, SonicError
from sonic.files import MARKER_NAME
from sonic.tails import SimilarTracks, similar_tracks
from sonic.tails.index import IndexConfig, file_sha256, index_paths
from sonic.tails.reembed import embed_files
from sonic.tails.table import EmbeddingTable, manifest_path, read_embeddings, write_embeddings

N_CLUSTERS, PER_CLUSTER, DIM = 12, 25, 16


def clustered_table(seed: int = 0, n_clusters: int = N_CLUSTERS) -> EmbeddingTable:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, DIM))
    vectors = np.repeat(centres, PER_CLUSTER, axis=0) + 0.3 * rng.standard_normal((n_clusters * PER_CLUSTER, DIM))
    ids = np.array([f"c{c:02d}_{i:02d}" for c in range(n_clusters) for i in range(PER_CLUSTER)])
    return EmbeddingTable(ids, vectors.astype(np.float32), {"embedder": "toy", "dim": DIM})


@pytest.fixture
def table_path(tmp_path):
    return write_embeddings(clustered_table(), tmp_path / "embeddings" / "toy.parquet")


def reference_neighbours(table: EmbeddingTable, k: int) -> dict[str, list[str]]:
    """Each track's k nearest others by cosine, from FAISS's exact inner-product index (another hand)."""
    import faiss

    unit = table.vectors / np.linalg.norm(table.vectors, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(DIM)
    index.add(unit)
    _, rows = index.search(unit, k + 1)
    return {track: [table.track_ids[r] for r in row if r != i][:k] for i, (track, row) in
            enumerate(zip(table.track_ids, rows))}  # fmt: skip


def as_lists(frame: pd.DataFrame) -> dict[str, list[str]]:
    frame = frame.sort_values(["query", "rank"])
    return {query: list(group["track_id"]) for query, group in frame.groupby("query", sort=False)}


def test_exact_search_matches_faiss_and_leaves_the_query_out(table_path):
    table = read_embeddings(table_path)
    frame = similar_tracks(table_path, list(table.track_ids), k=5, index="exact")
    assert list(frame.columns) == ["query", "track_id", "rank", "score"]
    assert as_lists(frame) == reference_neighbours(table, 5)
    assert (frame["query"] != frame["track_id"]).all() and frame["rank"].max() == 5
    first = frame[frame["query"] == "c00_00"].iloc[0]
    unit = table.vectors / np.linalg.norm(table.vectors, axis=1, keepdims=True)
    rows = {track: i for i, track in enumerate(table.track_ids)}
    assert first["score"] == pytest.approx(float(unit[0] @ unit[rows[first["track_id"]]]), abs=1e-6)
    assert not any(path.name.endswith((".faiss", ".index.json")) for path in table_path.parent.iterdir())


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_an_index_forced_on_a_small_table_gives_the_exact_neighbours(table_path, kind):
    table = read_embeddings(table_path)
    exact = similar_tracks(table_path, list(table.track_ids), k=5, index="exact")
    indexed = similar_tracks(table_path, list(table.track_ids), k=5, index=kind)
    assert as_lists(indexed) == as_lists(exact)
    assert indexed["score"].to_numpy() == pytest.approx(exact["score"].to_numpy(), abs=1e-5)
    index_file, manifest_file = index_paths(table_path)
    manifest = json.loads(manifest_file.read_text())
    assert manifest["artifact"] == "nearest-track index" and manifest["index"] == kind
    assert manifest["table"]["sha256"] == file_sha256(table_path) and manifest["rows"] == len(table.track_ids)
    assert manifest["parameters"] == IndexConfig().built_with(kind, len(table.track_ids))
    assert index_file.stat().st_size > 0
    # the unmarked folder held only sonic's table files: it was adopted and is now marked as embeddings
    assert json.loads((table_path.parent / MARKER_NAME).read_text())["kind"] == "embeddings"


def test_the_index_is_reused_and_rebuilt_when_the_table_changes(table_path):
    index_file, manifest_file = index_paths(table_path)
    SimilarTracks.open(table_path, index="ivf")
    built = index_file.stat().st_mtime_ns
    SimilarTracks.open(table_path, index="ivf")
    assert index_file.stat().st_mtime_ns == built  # current: read back, not rebuilt
    os.utime(table_path)  # touched, same bytes: the sha256 says it is the same table
    SimilarTracks.open(table_path, index="ivf")
    assert index_file.stat().st_mtime_ns == built

    changed = clustered_table(seed=1)  # same ids and shape, other vectors: a file of the same size
    write_embeddings(changed, table_path)
    assert manifest_file.stat().st_size and json.loads(manifest_file.read_text())["table"]["sha256"] != file_sha256(
        table_path)
    searcher = SimilarTracks.open(table_path, index="ivf")
    assert index_file.stat().st_mtime_ns != built
    assert json.loads(manifest_file.read_text())["table"]["sha256"] == file_sha256(table_path)
    assert as_lists(searcher.of_tracks(list(changed.track_ids), 5)) == reference_neighbours(changed, 5)
    # asking for another kind replaces the index with one of that kind
    SimilarTracks.open(table_path, index="hnsw")
    assert json.loads(manifest_file.read_text())["index"] == "hnsw"


def test_auto_is_exact_up_to_the_threshold(table_path):
    assert SimilarTracks.open(table_path).search == "exact"
    assert SimilarTracks.open(table_path, exact_max_rows=100).search == "ivf"


def test_an_index_is_not_added_to_a_foreign_folder(tmp_path):
    folder = tmp_path / "mine"
    table_path = write_embeddings(clustered_table(), folder / "toy.parquet")
    (folder / "thesis.tex").write_text("mine")
    with pytest.raises(SonicError, match="holds 'thesis.tex', which sonic did not write"):
        SimilarTracks.open(table_path, index="hnsw")
    assert sorted(path.name for path in folder.iterdir() if not path.name.startswith(".")) == [
        "thesis.tex", "toy.manifest.json", "toy.parquet"]  # fmt: skip
    assert similar_tracks(table_path, ["c00_00"], k=3, index="exact")["rank"].tolist() == [1, 2, 3]


def test_an_unknown_track_is_one_sentence(table_path):
    with pytest.raises(DataError, match=r"track 'nope' is not in embedding table '.*toy.parquet' \(300 tracks, e.g. "
                                        r"'c00_00', 'c00_01', 'c00_02'\); give a track_id it holds, or --audio FILE"):
        similar_tracks(table_path, ["c00_00", "nope"], k=3)
    result = sonic("similar", "--embedding", table_path, "--track", "nope")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("sonic: error: track 'nope' is not in embedding table")


def test_k_larger_than_the_table(tmp_path):
    table = EmbeddingTable(np.array(["a", "b", "c"]), np.eye(3, dtype=np.float32), {})
    frame = SimilarTracks(table).of_tracks(["a"], k=10)
    assert frame["track_id"].tolist() == ["b", "c"] and frame["score"].tolist() == [0.0, 0.0]


def test_similar_command_prints_or_writes(table_path, tmp_path):
    printed = sonic("similar", "--embedding", table_path, "--track", "c03_04", "--k", "3")
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.strip().splitlines()
    assert lines[0].split() == ["query", "track_id", "rank", "score"] and len(lines) == 4
    expected = reference_neighbours(read_embeddings(table_path), 3)["c03_04"]
    assert [line.split()[1] for line in lines[1:]] == expected

    out = tmp_path / "near.csv"
    written = sonic("similar", "--embedding", table_path, "--track", "c03_04", "--track", "c05_00", "--k", "3",
                    "--index", "hnsw", "--out", out)
    assert written.returncode == 0, written.stderr
    assert f"wrote 6 neighbours of 2 queries to {out}" in written.stdout
    frame = pd.read_csv(out, dtype={"query": str, "track_id": str})
    assert as_lists(frame)["c03_04"] == expected
    assert json.loads((tmp_path / "near.manifest.json").read_text())["artifact"] == "similar tracks"
    foreign = tmp_path / "other.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(foreign)
    refused = sonic("similar", "--embedding", table_path, "--track", "c03_04", "--out", foreign)
    assert refused.returncode == 2 and "was not written by sonic as similar tracks" in refused.stderr
    bad_index = sonic("similar", "--embedding", table_path, "--track", "c03_04", "--index", "annoy")
    assert bad_index.returncode == 2 and "unknown index 'annoy'; known: auto, exact, ivf, hnsw" in bad_index.stderr


# ---------------------------------------------------------------------------------------- new audio


RATE = 22050


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """A folder of generated clips (tones of several pitches, noises) and its mfcc_104 table."""
    from sonic.tails.runner import embed_folder

    root = tmp_path_factory.mktemp("catalogue")
    audio = root / "audios"
    for i, frequency in enumerate((110, 220, 330, 440, 660, 880, 1320, 1760)):
        write(audio / f"tone{i}", tone(frequency, 2.0, RATE) + noise(2.0, RATE, amplitude=0.02, seed=i), RATE)
    for i in range(4):
        write(audio / f"noise{i}", noise(2.0, RATE, amplitude=0.05 * (i + 1), seed=10 + i), RATE, "flac")
    result = embed_folder(audio, "mfcc_104", root / "embeddings", num_workers=0, progress=False,
                          offset_seconds=0.25, duration_seconds=1.5)
    return audio, result.table_path


def test_a_copied_catalogue_file_finds_its_own_track_first(catalogue, tmp_path):
    audio, table_path = catalogue
    copy = shutil.copy(audio / "tone3.wav", tmp_path / "query.wav")
    result = sonic("similar", "--embedding", table_path, "--audio", copy, "--k", "3", "--out", tmp_path / "n.parquet")
    assert result.returncode == 0, result.stderr
    frame = pd.read_parquet(tmp_path / "n.parquet")
    assert frame["query"].tolist() == [str(copy)] * 3
    assert frame["track_id"].iloc[0] == "tone3" and frame["score"].iloc[0] == pytest.approx(1.0, abs=1e-6)
    # the file was embedded over the table's own window: its vector is the table's, which another window's is not
    table = read_embeddings(table_path)
    own = table.vectors[list(table.track_ids).index("tone3")]
    assert embed_files([copy], table.manifest)[0] == pytest.approx(own, rel=1e-5, abs=1e-4)
    whole = {**table.manifest, "window": {"offset_seconds": 0.0, "duration_seconds": None}}
    assert not np.allclose(embed_files([copy], whole)[0], own, rtol=1e-3, atol=1e-2)
    both = similar_tracks(table_path, ["noise0"], audio=[audio / "noise2.flac"], k=2)
    assert both["query"].tolist()[:2] == ["noise0", "noise0"] and both["track_id"].iloc[2] == "noise2"


def test_the_table_records_its_embedder_options(catalogue):
    manifest = json.loads(manifest_path(catalogue[1]).read_text())
    assert manifest["embedder"] == "mfcc_104" and manifest["options"] == {}
    assert manifest["window"] == {"offset_seconds": 0.25, "duration_seconds": 1.5}


def test_audio_against_a_table_made_otherwise_is_one_sentence(catalogue, tmp_path):
    _, table_path = catalogue
    table = read_embeddings(table_path)
    copied = tmp_path / "mfcc_104.parquet"
    manifest = json.loads(json.dumps(table.manifest))
    manifest["parameters"]["n_fft"] = 1024  # a table made otherwise (the manifest inside the table says so)
    write_embeddings(EmbeddingTable(table.track_ids, table.vectors, manifest), copied)
    with pytest.raises(SonicError, match="was embedded by mfcc_104 with parameters=.* but mfcc_104 built with options "
                                         r"\{\} gives parameters="):
        similar_tracks(copied, audio=[catalogue[0] / "tone0.wav"], k=2)
    manifest.pop("embedder")
    write_embeddings(EmbeddingTable(table.track_ids, table.vectors, manifest), copied)
    with pytest.raises(DataError, match="does not say which embedder made it"):
        similar_tracks(copied, audio=[catalogue[0] / "tone0.wav"], k=2)
    silent = write(tmp_path / "silent", np.zeros(RATE * 2, np.float32), RATE)
    with pytest.raises(SonicError, match=f"'{silent}' cannot be embedded: silent"):
        similar_tracks(table_path, audio=[silent], k=2)
