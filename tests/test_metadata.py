"""The metadata embedder: scaling fitted on the table, genre/tag blocks, manifest, bad input."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from sonic.errors import DataError, SonicError
from sonic.tails.base import EMBEDDERS
from sonic.tails.models.metadata import MetadataEmbedder, MetadataOptions, embed_metadata


def catalogue() -> pd.DataFrame:
    return pd.DataFrame({
        "track_id": ["t3", "t1", "t2", "t4"],
        "danceability": [0.2, 0.8, 0.5, np.nan],
        "energy": [0.1, 0.9, 0.4, 0.6],
        "valence": [0.3, 0.3, 0.3, 0.3],
        "tempo": [90.0, 120.0, 150.0, 180.0],
        "popularity": [10, 50, 90, 30],
        "genres": ["rock,pop", ("pop",), ["jazz", "pop"], None],
    })


def test_zscore_with_parameters_fitted_on_the_table_and_recorded():
    frame = catalogue()
    embedder = EMBEDDERS.create("metadata")

    vectors = embedder.fit(frame).embed(frame.to_dict(orient="records"))

    assert embedder.modality == "tabular" and embedder.sample_rate == 0 and embedder.dim == 4
    dance = np.array([0.2, 0.8, 0.5])
    expected_dance = (dance - dance.mean()) / dance.std()
    np.testing.assert_allclose(vectors[:3, 0], expected_dance, rtol=1e-6)
    assert vectors[3, 0] == 0.0  # missing: the fitted mean
    tempo = frame["tempo"].to_numpy()
    np.testing.assert_allclose(vectors[:, 3], (tempo - tempo.mean()) / tempo.std(), rtol=1e-6)
    assert (vectors[:, 2] == 0).all()  # a constant column
    description = embedder.describe()
    assert description["features"] == ["danceability", "energy", "valence", "tempo"]
    assert description["scaling_parameters"]["tempo"] == pytest.approx({"mean": 135.0, "std": tempo.std()})
    assert description["missing_values"] == 1


def test_minmax_other_features_and_label_blocks():
    frame = catalogue()
    options = MetadataOptions(features="popularity,energy", scaling="minmax", genres="multi-hot")
    embedder = MetadataEmbedder(options).fit(frame)

    vectors = embedder.embed(frame)

    assert embedder.dim == 2 + 3  # jazz, pop, rock
    np.testing.assert_allclose(vectors[:, 0], [0.0, 0.5, 1.0, 0.25])
    np.testing.assert_array_equal(vectors[:, 2:], [[0, 1, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    assert embedder.describe()["blocks"]["genres"]["labels"] == ["jazz", "pop", "rock"]

    tfidf = MetadataEmbedder(MetadataOptions(genres="tfidf")).fit(frame).embed(frame)[:, 4:]
    idf = np.log(5 / (1 + np.array([1, 3, 1]))) + 1  # jazz, pop, rock over 4 tracks
    expected = np.array([[0, idf[1], idf[2]], [0, idf[1], 0]])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(tfidf[:2], expected, rtol=1e-6)
    assert (tfidf[3] == 0).all()


def test_embed_metadata_joins_music4all_blocks_by_track_id():
    frame = catalogue().set_index("track_id")
    music4all = SimpleNamespace(
        metadata=frame.drop(columns=["genres"]),
        genres=pd.Series({"t1": ("pop",), "t2": ("jazz",)}),
        tags=pd.Series({"t4": ("calm", "night"), "t3": ("calm",)}),
    )

    table = embed_metadata(music4all, MetadataEmbedder(MetadataOptions(genres="multi-hot", tags="multi-hot")))

    assert table.track_ids.tolist() == ["t1", "t2", "t3", "t4"]
    assert table.dim == 4 + 2 + 2
    rows, _ = table.lookup(np.array(["t2", "t4"]))
    np.testing.assert_array_equal(table.vectors[rows, 4:], [[1, 0, 0, 0], [0, 0, 1, 1]])
    assert table.manifest["embedder"]["blocks"]["tags"]["labels"] == ["calm", "night"]


def test_bad_requests_are_one_sentence():
    frame = catalogue()
    with pytest.raises(SonicError, match="unknown metadata option 'feature'; known: features"):
        EMBEDDERS.create("metadata", feature="tempo")
    with pytest.raises(SonicError, match="unknown metadata scaling 'robust'; known: zscore, minmax"):
        MetadataOptions(scaling="robust")
    with pytest.raises(DataError, match="no column 'loudness'; found: track_id, danceability"):
        MetadataEmbedder(MetadataOptions(features=("loudness",))).fit(frame)
    with pytest.raises(SonicError, match="call fit first"):
        MetadataEmbedder().embed(frame)
    bad = frame.assign(tempo=["fast", 1, 2, 3])
    with pytest.raises(DataError, match="'tempo' holds a value that is not a number: 'fast'"):
        MetadataEmbedder().fit(bad)
    with pytest.raises(DataError, match="lists track_id 't1' twice"):
        embed_metadata(pd.concat([frame, frame.iloc[[1]]]))


def test_sonic_embed_fits_the_scaling_on_the_whole_table_not_per_batch(tmp_path):
    from sonic.tails.runner import embed_folder
    from sonic.tails.table import read_embeddings

    frame = catalogue().drop(columns=["genres"])
    frame.to_csv(tmp_path / "meta.csv", index=False)

    result = embed_folder(None, "metadata", tmp_path / "out", metadata_file=tmp_path / "meta.csv",
                          batch_size=2, progress=False)

    table = read_embeddings(result.table_path)
    expected = embed_metadata(frame)
    rows, found = table.lookup(expected.track_ids)
    assert found.all()
    np.testing.assert_allclose(table.vectors[rows], expected.vectors, rtol=1e-6)
    assert table.manifest["fitted_rows"] == 4
    assert table.manifest["scaling_parameters"]["tempo"]["mean"] == pytest.approx(135.0)
