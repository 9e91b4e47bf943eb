"""The demo catalogue generator and the whole study on it."""

from __future__ import annotations

import pandas as pd
import pytest
import soundfile as sf

from sonic.cream.data.events import load_events
from sonic.demo import CatalogueConfig, demo_study, generate_catalogue, run_demo
from sonic.demo.styles import STYLES
from sonic.study import RESULT_COLUMNS, format_results
from sonic.study.config import EvaluationSection

SMALL = CatalogueConfig(tracks_per_style=4, n_users=40, clip_seconds=3.0, seed=7)


@pytest.fixture(scope="module")
def small_catalogue(tmp_path_factory):
    return generate_catalogue(tmp_path_factory.mktemp("catalogue"), SMALL, num_workers=1)


def test_catalogue_has_the_music4all_layout(small_catalogue):
    root = small_catalogue.root
    n_tracks = SMALL.tracks_per_style * len(STYLES)
    ids = small_catalogue.tracks["track_id"]
    assert ids.str.len().eq(16).all() and ids.is_unique
    assert sorted(p.stem for p in (root / "audios").glob("*.mp3")) == sorted(ids)
    assert sorted(p.stem for p in (root / "lyrics").glob("*.txt")) == sorted(ids)
    expected_columns = {
        "id_information.csv": ["id", "artist", "song", "album_name"],
        "id_metadata.csv": ["id", "spotify_id", "popularity", "release", "danceability", "energy", "key", "mode",
                            "valence", "tempo", "duration_ms"],
        "id_genres.csv": ["id", "genres"],
        "id_tags.csv": ["id", "tags"],
        "id_lang.csv": ["id", "lang"],
    }
    for name, columns in expected_columns.items():
        table = pd.read_csv(root / name, sep="\t")
        assert list(table.columns) == columns, name
        assert len(table) == n_tracks and set(table["id"]) == set(ids)
    assert pd.read_csv(root / "id_lang.csv", sep="\t")["lang"].nunique() >= 3


def test_catalogue_audio_is_30_second_style_clips(small_catalogue):
    info = sf.info(small_catalogue.audio_dir / f"{small_catalogue.tracks['track_id'].iat[0]}.mp3")
    assert info.samplerate == SMALL.sample_rate and info.channels == 1
    assert abs(info.duration - SMALL.clip_seconds) < 0.1


def test_listening_events_cover_the_seed_window_and_follow_tastes(small_catalogue):
    events = load_events(small_catalogue.events_path)
    assert events["user_id"].nunique() == SMALL.n_users
    assert events["timestamp"].min() >= pd.Timestamp(SMALL.start_date)
    assert events["timestamp"].max() < pd.Timestamp(SMALL.end_date)
    styles = small_catalogue.tracks.set_index("track_id")["style"]
    share_of_top_style = (
        events.assign(style=events["track_id"].map(styles))
        .groupby("user_id")["style"]
        .agg(lambda s: s.value_counts(normalize=True).iloc[0])
    )
    uniform_share = 1 / len(STYLES)
    assert share_of_top_style.median() > 3 * uniform_share


def test_generation_is_deterministic(tmp_path, small_catalogue):
    again = generate_catalogue(tmp_path, SMALL, num_workers=2)
    pd.testing.assert_frame_equal(again.tracks, small_catalogue.tracks)
    assert (again.events_path.read_text() == small_catalogue.events_path.read_text())


@pytest.mark.slow
def test_study_on_small_demo_data_ranks_knn_far_above_random(tmp_path):
    catalogue = CatalogueConfig(tracks_per_style=12, n_users=150, clip_seconds=8.0, seed=3)
    study = demo_study(tmp_path, evaluation=EvaluationSection(ks=(10, 50), seeds=(42,)))
    result = run_demo(tmp_path, catalogue=catalogue, study=study, num_workers=2, progress=False)
    results = pd.read_csv(result.results_path)
    assert tuple(results.columns) == RESULT_COLUMNS
    assert set(results["model"]) == {"random", "pop", "knn"}
    assert set(results["split"]) == {"val", "test"}
    accuracy = {"HitRate", "Precision", "Recall", "MRR", "NDCG"}
    assert set(results["metric"]) == accuracy | {"Coverage", "Novelty", "ARP", "LongTailShare", "ILD"}
    results = results[results["metric"].isin(accuracy)]
    assert (results["ci_low"] <= results["mean"]).all() and (results["mean"] <= results["ci_high"]).all()
    assert result.report_path == tmp_path / "report" / "index.html" and result.report_path.is_file()
    # 96 tracks: a top-50 list covers most of this small catalogue, so compare at 10
    results = results[results["embedding"].isin(["mfcc_104", "-"])]
    hit10 = results[(results.metric == "HitRate") & (results.k == 10) & (results.split == "test")].set_index("model")
    assert hit10.at["knn", "mean"] > hit10.at["random", "mean"] + 0.15
    assert hit10.at["knn", "ci_low"] > hit10.at["random", "ci_high"]
    text = format_results(results)
    assert "knn / mfcc_104" in text and "HitRate" in text
