"""Fusion joins tables by track_id: row order never matters, missing blocks follow the stated policy."""

from __future__ import annotations

import numpy as np
import pytest

from sonic.errors import DataError, SonicError
from sonic.tails.fusion import FusionConfig, fuse, fuse_tables, normalise, split_name
from sonic.tails.table import EmbeddingTable, read_embeddings, write_embeddings


def table(ids, dim, seed) -> EmbeddingTable:
    rng = np.random.default_rng(seed)
    return EmbeddingTable(np.array(ids), rng.normal(size=(len(ids), dim)).astype(np.float32), {"model": f"m{seed}"})


def shuffled(t: EmbeddingTable, seed: int) -> EmbeddingTable:
    order = np.random.default_rng(seed).permutation(len(t.track_ids))
    return EmbeddingTable(t.track_ids[order], t.vectors[order], t.manifest)


def as_dict(t: EmbeddingTable) -> dict:
    return {track: vector for track, vector in zip(t.track_ids.tolist(), t.vectors)}


AUDIO_IDS = [f"t{i:02d}" for i in range(30)]
LYRICS_IDS = [f"t{i:02d}" for i in range(5, 35)]  # t00..t04 lack lyrics; t30..t34 lack audio


@pytest.mark.parametrize("missing", ["drop", "zeros", "mean"])
@pytest.mark.parametrize("normalisation", ["l2", "zscore", "none"])
def test_shuffled_row_orders_give_identical_vectors_per_track(missing, normalisation):
    audio, lyrics = table(AUDIO_IDS, 6, 1), table(LYRICS_IDS, 4, 2)
    config = FusionConfig(normalisation=normalisation, weights=(1.0, 0.5), missing=missing)

    first = fuse([audio, lyrics], ["audio", "lyrics"], config)
    second = fuse([shuffled(audio, 7), shuffled(lyrics, 8)], ["audio", "lyrics"], config)

    assert first.track_ids.tolist() == sorted(first.track_ids.tolist())
    a, b = as_dict(first), as_dict(second)
    assert a.keys() == b.keys()
    for track in a:
        np.testing.assert_array_equal(a[track], b[track])


def test_blocks_are_the_parts_own_rows_normalised_and_weighted():
    audio, lyrics = table(AUDIO_IDS, 6, 1), table(LYRICS_IDS, 4, 2)
    fused = fuse([shuffled(audio, 3), lyrics], ["audio", "lyrics"], FusionConfig(weights=(2.0, 1.0)))

    assert fused.track_ids.tolist() == [f"t{i:02d}" for i in range(5, 30)]
    rows_a, _ = audio.lookup(fused.track_ids)
    rows_l, _ = lyrics.lookup(fused.track_ids)
    unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(fused.vectors[:, :6], 2 * unit(audio.vectors[rows_a]), rtol=1e-6)
    np.testing.assert_allclose(fused.vectors[:, 6:], unit(lyrics.vectors[rows_l]), rtol=1e-6)


def test_missing_policy_is_applied_and_counted():
    audio, lyrics = table(AUDIO_IDS, 6, 1), table(LYRICS_IDS, 4, 2)

    zeros = fuse([audio, lyrics], ["audio", "lyrics"], FusionConfig(missing="zeros"))
    mean = fuse([audio, lyrics], ["audio", "lyrics"], FusionConfig(missing="mean", normalisation="none"))
    dropped = fuse([audio, lyrics], ["audio", "lyrics"], FusionConfig(missing="drop"))

    assert len(zeros.track_ids) == 35 and len(dropped.track_ids) == 25
    rows, _ = zeros.lookup(np.array(["t00", "t34"]))
    assert (zeros.vectors[rows[0], 6:] == 0).all() and (zeros.vectors[rows[1], :6] == 0).all()
    rows, _ = mean.lookup(np.array(["t00"]))
    np.testing.assert_allclose(mean.vectors[rows[0], 6:], lyrics.vectors.mean(axis=0), rtol=1e-5)
    fusion = dropped.manifest["fusion"]
    assert fusion["missing"] == "drop" and fusion["join"] == "track_id"
    assert fusion["tracks"] == {"in_any_table": 35, "in_every_table": 25, "dropped": 10, "in_fused_table": 25}
    assert [(p["name"], p["tracks_missing"], p["tracks_missing_kept"]) for p in fusion["parts"]] == [
        ("audio", 5, 0), ("lyrics", 5, 0)]
    assert zeros.manifest["fusion"]["parts"][1]["tracks_missing_kept"] == 5
    assert dropped.manifest["fusion"]["parts"][0]["manifest"] == {"model": "m1"}


def test_fuse_tables_by_name_writes_an_ordinary_table(tmp_path):
    write_embeddings(table(AUDIO_IDS, 6, 1), tmp_path / "mfcc_104.parquet")
    write_embeddings(table(LYRICS_IDS, 4, 2), tmp_path / "lyrics.parquet")

    fused = fuse_tables("mfcc_104+lyrics", tmp_path, out_dir=tmp_path / "out")

    again = read_embeddings(tmp_path / "out" / "mfcc_104+lyrics.parquet")
    assert again.dim == 10 and again.track_ids.tolist() == fused.track_ids.tolist()
    np.testing.assert_array_equal(again.vectors, fused.vectors)
    assert [p["name"] for p in again.manifest["fusion"]["parts"]] == ["mfcc_104", "lyrics"]
    assert again.manifest["fusion"]["parts"][0]["path"].endswith("mfcc_104.parquet")
    by_path = fuse_tables([tmp_path / "mfcc_104.parquet", tmp_path / "lyrics.parquet"])
    np.testing.assert_array_equal(by_path.vectors, fused.vectors)


def test_bad_requests_are_one_sentence(tmp_path):
    write_embeddings(table(AUDIO_IDS, 6, 1), tmp_path / "mfcc_104.parquet")
    write_embeddings(table(["x", "y"], 2, 3), tmp_path / "other.parquet")
    with pytest.raises(SonicError, match="must join two or more distinct table names"):
        split_name("mfcc_104")
    with pytest.raises(DataError, match="no embedding table 'lyrics' in .*; found: mfcc_104, other"):
        fuse_tables("mfcc_104+lyrics", tmp_path)
    with pytest.raises(SonicError, match="unknown fusion normalisation 'max'; known: l2, zscore, none"):
        fuse_tables("mfcc_104+other", tmp_path, config=FusionConfig(normalisation="max"))
    with pytest.raises(SonicError, match="needs one normalisation .* and 2 weights"):
        fuse_tables("mfcc_104+other", tmp_path, config=FusionConfig(weights=(1.0,)))
    with pytest.raises(DataError, match="share no track_id"):
        fuse_tables("mfcc_104+other", tmp_path)
    with pytest.raises(SonicError, match="unknown policy for a track missing a block 'skip'"):
        fuse_tables("mfcc_104+other", tmp_path, config=FusionConfig(missing="skip"))
    constant = np.ones((3, 2))
    assert (normalise(constant, "zscore") == 0).all()
