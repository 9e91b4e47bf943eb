"""The demo catalogue generator and the whole study on it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap

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
    n_tracks = (SMALL.tracks_per_style + SMALL.new_tracks_per_style) * len(STYLES)
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


def test_generating_again_leaves_every_file_untouched(tmp_path):
    config = dataclasses.replace(SMALL, n_users=20, clip_seconds=1.0)
    from sonic.files import BOOKKEEPING
    from sonic.study.steps import fingerprint

    def stamps():  # the folder's lock file names its latest holder: bookkeeping, rewritten on every claim
        return {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*")
                if path.is_file() and path.name not in BOOKKEEPING}

    generate_catalogue(tmp_path, config, num_workers=1)
    before, seen_by_study = stamps(), fingerprint(tmp_path)
    generate_catalogue(tmp_path, config, num_workers=1)
    assert stamps() == before  # same bytes: not rewritten, modification times kept, no file added
    assert fingerprint(tmp_path) == seen_by_study  # so a study's steps that read the catalogue are skipped
    lyrics = next(iter((tmp_path / "lyrics").glob("*.txt")))
    lyrics.write_text("changed by hand\n")
    generate_catalogue(tmp_path, config, num_workers=1)
    assert lyrics.read_text() != "changed by hand\n"  # a file whose bytes differ is written again


def test_new_tracks_come_out_in_the_test_window_and_are_played_after_their_release(small_catalogue):
    tracks = small_catalogue.tracks
    new = tracks[tracks["release_date"].notna()]
    assert len(new) == SMALL.new_tracks_per_style * len(STYLES)
    assert set(new["style"]) == {style.name for style in STYLES}
    assert (new["release_date"] >= pd.Timestamp(SMALL.release_start)).all()
    assert (new["release_date"] < pd.Timestamp(SMALL.end_date)).all()
    assert sorted(p.stem for p in (small_catalogue.root / "audios").glob("*.mp3")) == sorted(tracks["track_id"])
    events = load_events(small_catalogue.events_path)
    released = events.merge(new[["track_id", "release_date"]], on="track_id")
    assert len(released) and (released["timestamp"] >= released["release_date"]).all()
    on_disk = pd.read_csv(small_catalogue.root / "tracks.csv", parse_dates=["release_date"])
    assert on_disk["release_date"].notna().sum() == len(new)


@pytest.mark.slow
def test_study_on_small_demo_data_ranks_knn_far_above_random_and_a_rerun_skips_every_step(tmp_path):
    catalogue = CatalogueConfig(tracks_per_style=12, n_users=150, clip_seconds=8.0, seed=3)
    evaluation = EvaluationSection(modes=("val", "test", "cold_test"), ks=(10, 50), seeds=(42,))
    study = demo_study(tmp_path, with_torch=False, evaluation=evaluation)
    result = run_demo(tmp_path, catalogue=catalogue, study=study, num_workers=2, progress=False)
    results = pd.read_csv(result.results_path)
    assert tuple(results.columns) == RESULT_COLUMNS
    assert set(results["model"]) == {"random", "pop", "ease", "knn", "knn-shuffled"}
    assert set(results["split"]) == {"val", "test", "cold_test"}
    accuracy = {"HitRate", "Precision", "Recall", "MRR", "NDCG"}
    assert set(results["metric"]) == accuracy | {"Coverage", "Novelty", "ARP", "LongTailShare", "ILD"}
    scored = results[results["metric"].isin(accuracy) & (results["status"] == "scored")]
    assert (scored["ci_low"] <= scored["mean"]).all() and (scored["mean"] <= scored["ci_high"]).all()
    assert result.report_path == tmp_path / "report" / "index.html" and result.report_path.is_file()
    # 96 tracks: a top-50 list covers most of this small catalogue, so compare at 10
    results = results[results["embedding"].isin(["mfcc_104", "-"])]
    hit10 = results[(results.metric == "HitRate") & (results.k == 10) & (results.split == "test")].set_index("model")
    assert hit10.at["knn", "mean"] > hit10.at["random", "mean"] + 0.15
    assert hit10.at["knn", "ci_low"] > hit10.at["random", "ci_high"]
    cold = results[(results.metric == "HitRate") & (results.k == 10) & (results.split == "cold_test")]
    cold = cold.set_index("model")
    assert cold.at["knn", "mean"] > cold.at["random", "mean"]  # the new tracks of the listener's style come first
    assert cold.loc[["pop", "ease"], "status"].eq("unable").all() and cold.loc[["pop", "ease"], "mean"].isna().all()
    text = format_results(results)
    assert "knn / mfcc_104" in text and "HitRate" in text and "UNABLE" in text
    # the same command again regenerates the catalogue without touching it, so every finished step is skipped
    again = run_demo(tmp_path, catalogue=catalogue, study=study, num_workers=2, progress=False)
    assert {outcome.status for outcome in again.experiment.outcomes} == {"skipped"}


def test_the_demo_study_has_musicnn_a_random_dino_control_and_snn(tmp_path):
    study = demo_study(tmp_path, with_torch=True)
    assert study.embeddings.names == ("mfcc_104", "musicnn", "dino_vits16_random", "lyrics", "metadata")
    assert study.embeddings.fusions == ("mfcc_104+lyrics", "mfcc_104+metadata")
    assert study.embeddings.options_for("dino_vits16_random") == {"fit": "resize"}
    assert [spec.label for spec in study.recommenders] == ["random", "pop", "ease", "elsa", "knn", "knn-shuffled",
                                                           "snn", "snn-shuffled", "bert4rec", "bert4rec-shuffled"]
    shuffled = {spec.label: spec.embeddings for spec in study.recommenders if spec.shuffle}
    assert shuffled == {"knn-shuffled": (), "snn-shuffled": ("musicnn",), "bert4rec-shuffled": ("musicnn",)}
    assert study.split.protocol == "tamm2025" and study.evaluation.modes == ("val", "test", "cold_test")
    assert (study.split.start_date, study.split.test_date, study.split.end_date) == (
        CatalogueConfig.start_date, CatalogueConfig.release_start, CatalogueConfig.end_date)  # the demo's year
    assert study.evaluation.cold_candidates == "cold"
    assert study.evaluation.seeds == (42, 43) and study.report.notes == ()
    assert study.embeddings.window_for("mfcc_104") == (0.0, None)  # mfcc_104 reads the whole clip, as before
    assert study.embeddings.window_for("musicnn") == (9.0, 9.0)  # MusiCNN: three 3-s patches per clip


def test_without_torch_the_demo_is_the_torch_free_study_with_one_sentence_saying_why(tmp_path):
    study = demo_study(tmp_path, with_torch=False)
    assert study.embeddings.names == ("mfcc_104", "lyrics", "metadata") and study.embeddings.options == ()
    assert study.embeddings.fusions == ("mfcc_104+lyrics", "mfcc_104+metadata")
    assert [spec.label for spec in study.recommenders] == ["random", "pop", "ease", "knn", "knn-shuffled"]
    (note,) = study.report.notes
    assert note == ("PyTorch is not installed, so this demo left out musicnn, dino_vits16_random, elsa, snn "
                    "and bert4rec (they run after: python3 -m pip install -c constraints.txt -e '.[models]').")
    same = dataclasses.replace(demo_study(tmp_path, with_torch=True), embeddings=study.embeddings,
                               recommenders=study.recommenders, report=study.report)
    assert same == study  # nothing else changes: the split and the seeds are the demo's


def test_a_dino_checkpoint_turns_the_control_into_the_published_model(tmp_path):
    study = demo_study(tmp_path, with_torch=True, dino_checkpoint=str(tmp_path / "dino"))
    assert "dino_vits16_random" not in study.embeddings.names and "dino_vits16" in study.embeddings.names
    assert study.embeddings.options_for("dino_vits16") == {"checkpoint": str(tmp_path / "dino"), "fit": "resize"}
    assert study.embeddings.options_for("dino_vits16_random") == {}


@pytest.mark.slow
def test_the_demo_runs_without_torch_and_its_report_says_why(tmp_path):
    script = textwrap.dedent(f"""
        import sys

        class NoTorch:  # as if PyTorch were not installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ModuleNotFoundError("No module named " + repr(name), name=name)

        sys.meta_path.insert(0, NoTorch())
        from sonic.demo import CatalogueConfig, demo_study, run_demo
        from sonic.study.config import EvaluationSection
        evaluation = EvaluationSection(modes=("val", "test", "cold_test"), ks=(5, 10), seeds=(42,))
        study = demo_study({str(tmp_path)!r}, evaluation=evaluation)
        catalogue = CatalogueConfig(tracks_per_style=3, n_users=60, clip_seconds=2.0, seed=5)
        run_demo({str(tmp_path)!r}, catalogue=catalogue, study=study, num_workers=1, progress=False, echo=print)
        assert "torch" not in sys.modules
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("PyTorch is not installed, so this demo left out musicnn, dino_vits16_random, "
                                    "elsa, snn and bert4rec")
    results = pd.read_csv(tmp_path / "results.csv")
    assert set(results["model"]) == {"random", "pop", "ease", "knn", "knn-shuffled"}
    assert set(results["embedding"]) == {"-", "mfcc_104", "lyrics", "metadata", "mfcc_104+lyrics", "mfcc_104+metadata"}
    cold = results[results["split"] == "cold_test"]
    assert set(cold.loc[cold["status"] == "unable", "model"]) == {"pop", "ease"}
    assert cold.loc[cold["model"].isin(["knn", "random"]), "mean"].notna().all()
    page = (tmp_path / "report" / "index.html").read_text()
    assert "PyTorch is not installed, so this demo left out musicnn, dino_vits16_random, elsa, snn and bert4rec" in page
    assert not (tmp_path / "embeddings" / "musicnn.parquet").exists()


@pytest.mark.slow
def test_the_demo_with_torch_draws_q1_q2_and_training_curves(tmp_path, monkeypatch):
    """The demo study as shipped, on small data: MusiCNN (a tiny random checkpoint in TF's format, since tests
    fetch nothing), the random DINO control at full ViT-S/16 size and the shallow net."""
    pytest.importorskip("torch")
    from sonic.testing.musicnn_tiny import tiny_musicnn, write_tf_checkpoint

    monkeypatch.setenv("SONIC_DINO_RANDOM_CACHE", str(tmp_path / "dino-cache"))
    write_tf_checkpoint(tmp_path / "musicnn" / "model", tiny_musicnn(seed=0))
    evaluation = EvaluationSection(modes=("val", "test", "cold_test"), ks=(5, 10), seeds=(42,))
    study = demo_study(tmp_path / "demo", with_torch=True, evaluation=evaluation)
    options = dict(study.embeddings.options) | {"musicnn": (("checkpoint", str(tmp_path / "musicnn")),)}
    study = dataclasses.replace(study, embeddings=dataclasses.replace(study.embeddings, options=tuple(options.items())))
    catalogue = CatalogueConfig(tracks_per_style=4, n_users=80, clip_seconds=4.0, seed=5, new_tracks_per_style=2)
    result = run_demo(tmp_path / "demo", catalogue=catalogue, study=study, num_workers=2, progress=False)
    assert not result.experiment.failures, result.experiment.failures
    results = pd.read_csv(result.results_path)
    content = {"knn", "snn", "bert4rec"}
    controls = {f"{name}-shuffled" for name in content}
    assert set(results["model"]) == {"random", "pop", "ease", "elsa", *content, *controls}
    assert {"musicnn", "dino_vits16_random", "mfcc_104"} <= set(results["embedding"])
    cold = results[results["split"] == "cold_test"]
    assert set(cold.loc[cold["status"] == "unable", "model"]) == {"pop", "ease", "elsa"}  # marked, never zero
    assert cold.loc[cold["status"] == "unable", "mean"].isna().all()
    assert set(cold.loc[cold["status"] == "scored", "model"]) == {"random", *content, *controls}
    manifest = json.loads((tmp_path / "demo" / "embeddings" / "dino_vits16_random.manifest.json").read_text())
    assert "not the published DINO" in json.dumps(manifest)
    report = result.report_path.parent
    q2 = pd.read_csv(report / "data" / "q2-dino.csv")
    assert set(q2["family"]) == {"audio", "DINO, random weights (a control)"}
    assert set(q2["embedding"]) == {"mfcc_104", "musicnn", "dino_vits16_random"}
    assert {"mfcc_104", "musicnn"} <= set(pd.read_csv(report / "data" / "q1-backends.csv")["embedding"])
    # the cold section: each content model on each of its embeddings against chance on the cold test
    against_chance = pd.read_csv(report / "data" / "cold-tests.csv")
    assert set(against_chance["b"]) == {"random"} and set(against_chance["split"]) == {"cold_test"}
    assert {a.split(" / ")[0] for a in against_chance["a"]} == content
    assert (against_chance["gap"].isna() | (against_chance["gap"] == "")).all()
    # the identity control: each trained model against its shuffle control on hot and cold tracks
    effect = pd.read_csv(report / "data" / "content-effect-tests.csv")
    pairs = effect[effect["family"] == "content effect"]
    assert {(a, b, split) for a, b, split in zip(pairs["a"], pairs["b"], pairs["split"])} >= {
        (f"{model} / musicnn", f"{model}-shuffled / musicnn", split) for model in content
        for split in ("test", "cold_test")}
    assert set(effect.loc[effect["family"] == "control against chance", "split"]) == {"cold_test"}
    history = pd.read_csv(report / "data" / "by-history.csv")
    assert set(history["split"]) == {"test", "cold_test"}
    assert (history.groupby("split")["group"].nunique() == 3).all()  # terciles of each slice (own track ranges)
    assert ((history["ci_low"] >= 0) & (history["ci_high"] <= 1)).all()
    curves = pd.read_csv(report / "data" / "training.csv")
    assert {run.split("-")[0] for run in curves["run"]} >= {"snn", "bert4rec"} and curves["epoch"].max() >= 2
    page = result.report_path.read_text()
    assert "dino_vits16_random has random weights, not the published DINO" in page
    assert "No training curve" not in page and "UNABLE" in page
