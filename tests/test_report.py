"""The HTML report from a results store: every section drawn, or said to be absent, with PNG and CSV files."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from sonic.errors import SonicError
from sonic.study import store
from sonic.study.report import write_report

pytestmark = pytest.mark.slow  # matplotlib draws a dozen figures

EMBEDDINGS = ("mfcc_104", "mfcc_104+lyrics", "mfcc_104+metadata", "dino_vits16", "dino_vits16_random")
#: Per-user NDCG of knn on each embedding: lyrics clearly help, metadata do nothing.
SHIFT = {"mfcc_104": 0.0, "mfcc_104+lyrics": 0.2, "mfcc_104+metadata": 0.0, "dino_vits16": -0.1,
         "dino_vits16_random": -0.15}


def fake_run(store_dir, run_dir, model, embedding, split, seed, users):
    """A stored run whose per-user values are known: NDCG = base + shift (+ noise), other metrics alike."""
    rng = np.random.default_rng([seed, len(embedding), len(split), len(model)])
    base = np.linspace(0.1, 0.6, len(users))  # the same users find the same tracks easy in every run of a seed
    shift = SHIFT.get(embedding, -0.2)
    rows = []
    for metric in ("HitRate", "Precision", "Recall", "MRR", "NDCG", "Novelty"):
        for k in (5, 10):
            values = base + shift + 0.01 * k + rng.normal(0, 0.02, len(users))
            rows.append(pd.DataFrame({"user_id": users, "metric": metric, "k": k, "value": values, "slice": split}))
    per_user = pd.concat(rows, ignore_index=True)
    aggregates = per_user.groupby(["metric", "k", "slice"], as_index=False)["value"].agg(["mean", "std", "count"])
    aggregates = aggregates.assign(ci_low=lambda f: f["mean"] - f["std"], ci_high=lambda f: f["mean"] + f["std"],
                                   n_users=lambda f: f["count"])
    name = f"{model}-{embedding}-{split}-seed{seed}"
    run_dir = run_dir / name
    run_dir.mkdir(parents=True)
    if model == "snn":
        pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.9, 0.5, 0.4], "val_loss": [1.0, 0.7, 0.65],
                      "seconds": [1.0, 1.0, 1.0]}).to_csv(run_dir / "curve.csv", index=False)
    record = {"label": model, "recommender": model, "options": {}, "embedding": embedding, "embedding_manifest": "",
              "split_dir": "split", "split_seed": seed, "modes": [split], "seed": seed, "ks": [5, 10],
              "run_dir": str(run_dir), "hash": "0" * 64, "warnings": ["3 train users get empty lists"] if model == "knn"
              and embedding == "dino_vits16" and seed == 1 and split == "test" else []}
    store.write_run(store_dir, name, record, per_user, aggregates)


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    (root / "study.toml").write_text(
        'title = "Synthetic study"\n[data]\nevents = "events.tsv"\n[split]\nprotocol = "tamm2025"\n'
        '[embeddings]\nnames = ["mfcc_104", "dino_vits16", "dino_vits16_random", "lyrics", "metadata"]\n'
        'fusions = ["mfcc_104+lyrics", "mfcc_104+metadata"]\n'
        '[[recommenders]]\nname = "pop"\n[[recommenders]]\nname = "knn"\n[[recommenders]]\nname = "snn"\n'
        '[evaluation]\nmodes = ["test", "cold_test"]\nks = [5, 10]\nseeds = [1, 2]\n[report]\nk = 10\n'
        'gallery_tracks = 0\nnotes = ["PyTorch is not installed, so this study left out snn."]\n'
    )
    users = [f"u{i}" for i in range(40)]
    for seed in (1, 2):
        for split in ("test", "cold_test"):
            fake_run(root / "results", root / "runs", "pop", "-", split, seed, users)
            for embedding in EMBEDDINGS:
                fake_run(root / "results", root / "runs", "knn", embedding, split, seed, users)
            fake_run(root / "results", root / "runs", "snn", "mfcc_104", split, seed, users)
    return root


@pytest.fixture(scope="module")
def report(study_dir):
    index = write_report(study_dir, study_dir / "report")
    return index, index.read_text()


def test_every_figure_and_data_file_the_page_names_exists(report):
    index, page = report
    sources = re.findall(r'(?:src|href)="([^"#]+)"', page)
    pngs = [s for s in sources if s.endswith(".png")]
    assert len(pngs) >= 9
    for source in sources:
        assert (index.parent / source).is_file(), source
    for png in [s for s in pngs if s.startswith("figures/")]:
        assert (index.parent / "data" / png.removeprefix("figures/").replace(".png", ".csv")).is_file()
    assert "http://" not in page and "https://" not in page  # nothing to fetch: readable offline


def test_the_lyrics_gain_is_marked_significant_and_metadata_not(report):
    index, page = report
    gains = pd.read_csv(index.parent / "data" / "q3-lyrics.csv")
    assert set(gains["model"]) == {"knn"} and set(gains["split"]) == {"test", "cold_test"}
    assert gains["mean_diff"].to_numpy() == pytest.approx([0.2, 0.2], abs=0.01)
    assert (gains["n_pairs"] == 80).all() and (gains["mark"] == "***").all()  # 40 users x 2 seeds
    metadata = pd.read_csv(index.parent / "data" / "q4-metadata.csv")
    assert metadata["mean_diff"].to_numpy() == pytest.approx([0.0, 0.0], abs=0.01)
    assert (metadata["mark"] == "n.s.").all()
    assert "Question 3: does adding lyrics help?" in page and "Holm-adjusted Wilcoxon" in page


def test_dino_hot_cold_training_and_intervals_over_seeds_are_drawn(report):
    index, page = report
    dino = pd.read_csv(index.parent / "data" / "q2-dino.csv")
    assert set(dino["family"]) == {"DINO (vision)", "DINO, random weights (a control)", "audio"}
    assert set(dino.loc[dino["family"] == "DINO, random weights (a control)", "embedding"]) == {"dino_vits16_random"}
    assert "dino_vits16_random has random weights, not the published DINO" in page
    assert "best DINO, random weights (a control): dino_vits16_random" in page
    assert "PyTorch is not installed, so this study left out snn." in page
    backends = pd.read_csv(index.parent / "data" / "q1-backends.csv")
    assert "+" not in "".join(backends["embedding"])  # the backends alone, no fusion
    assert {"pop", "knn / mfcc_104", "knn / dino_vits16_random"} <= set(backends["label"])
    hot_cold = pd.read_csv(index.parent / "data" / "hot-cold.csv")
    assert set(hot_cold["split"]) == {"test", "cold_test"}
    assert (index.parent / "figures" / "training.png").is_file()
    assert set(pd.read_csv(index.parent / "data" / "training.csv")["run"].str[-5:]) == {"seed1", "seed2"}
    assert "every trained run of seed 1; the other seeds&#x27; curves are in its CSV" in page  # escaped
    q5 = pd.read_csv(index.parent / "data" / "q5-k-test.csv")  # readable: baselines and each model's best
    assert set(q5["series"]) == {"pop", "knn / mfcc_104+lyrics", "snn / mfcc_104"}
    board = pd.read_csv(index.parent / "data" / "leaderboard-test.csv")
    assert set(board["interval"]) == {"seeds"} and set(board["n_seeds"]) == {2}
    assert "95% t-intervals over the means of 2 seeds (1, 2)" in page
    assert "3 train users get empty lists" in page


def test_absent_data_is_said_plainly(tmp_path, study_dir):
    import shutil

    small = tmp_path / "study"
    shutil.copytree(study_dir, small)
    for path in (small / "results").rglob("*.parquet"):
        if "snn" in path.name or "+" in path.name or "dino" in path.name or "cold_test" in path.name:
            path.unlink()
    page = write_report(small, tmp_path / "report").read_text()
    assert "No DINO embedding in this study" in page
    assert "No fusion with lyrics in this study" in page and "No fusion with metadata in this study" in page
    assert "No training curve in this study" in page
    assert "No cold test in this study" in page
    assert "No audio folder in this study" in page


def test_a_folder_without_a_study_is_one_sentence(tmp_path):
    with pytest.raises(SonicError, match="is not a study's output folder"):
        write_report(tmp_path, tmp_path / "report")
