"""The HTML report from a results store: every section drawn, or said to be absent, with PNG and CSV files;
its claims backed by paired tests that count each user once; its folder never someone else's."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from cli_runner import sonic

from sonic import files
from sonic.errors import SonicError
from sonic.study import store
from sonic.study.report import write_report

pytestmark = pytest.mark.slow  # matplotlib draws a dozen figures

EMBEDDINGS = ("mfcc_104", "mfcc_104+lyrics", "mfcc_104+metadata", "dino_vits16", "dino_vits16_random")
#: Per-user NDCG of knn on each embedding: lyrics clearly help, metadata do nothing.
SHIFT = {"mfcc_104": 0.0, "mfcc_104+lyrics": 0.2, "mfcc_104+metadata": 0.0, "dino_vits16": -0.1,
         "dino_vits16_random": -0.15}
MODEL_SHIFT = {"knn": 0.0, "snn": 0.05, "pop": 0.0}
#: Users of each seed and split, drawn from one pool as the demo does: u20..u39 are test users of both seeds.
USERS = {(1, "test"): range(0, 40), (2, "test"): range(20, 60), (1, "val"): range(40, 60), (2, "val"): range(0, 20),
         (1, "cold_test"): range(0, 40), (2, "cold_test"): range(20, 60)}
SPLITS = ("val", "test", "cold_test")


def fake_run(store_dir, run_dir, model, embedding, split, seed, *, label=None):
    """A stored run whose per-user values are known: value = a user's own level + shift (+ noise), in [0, 1].

    A user's level depends on the user alone, so a user evaluated under both seeds has the same truth."""
    numbers = np.array(list(USERS[(seed, split)]))
    users = [f"u{n}" for n in numbers]
    rng = np.random.default_rng([seed, len(embedding), len(split), len(model), SPLITS.index(split)])
    level = 0.1 + 0.5 * numbers / 59
    shift = SHIFT.get(embedding, -0.2) + MODEL_SHIFT.get(model, 0.0)
    rows = []
    for metric in ("HitRate", "Precision", "Recall", "MRR", "NDCG", "Novelty"):
        for k in (5, 10):
            values = np.clip(level + shift + 0.01 * k + rng.normal(0, 0.02, len(users)), 0.0, 1.0)
            rows.append(pd.DataFrame({"user_id": users, "metric": metric, "k": k, "value": values, "slice": split}))
    per_user = pd.concat(rows, ignore_index=True)
    aggregates = per_user.groupby(["metric", "k", "slice"], as_index=False)["value"].agg(["mean", "std", "count"])
    aggregates = aggregates.assign(ci_low=lambda f: f["mean"] - f["std"], ci_high=lambda f: f["mean"] + f["std"],
                                   n_users=lambda f: f["count"])
    name = f"{model}-{embedding}-{split}-seed{seed}"
    folder = run_dir / name
    folder.mkdir(parents=True)
    if model == "snn":
        pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.9, 0.5, 0.4], "val_loss": [1.0, 0.7, 0.65],
                      "seconds": [1.0, 1.0, 1.0]}).to_csv(folder / "curve.csv", index=False)
    record = {"label": label or model, "recommender": model, "options": {}, "embedding": embedding,
              "embedding_manifest": "", "split_dir": "split", "split_seed": seed, "modes": [split], "seed": seed,
              "ks": [5, 10], "run_dir": str(folder), "hash": "0" * 64,
              "warnings": ["3 train users get empty lists"] if model == "knn" and embedding == "dino_vits16"
              and seed == 1 and split == "test" else []}  # fmt: skip
    store.write_run(store_dir, name, record, per_user, aggregates)


STUDY_TOML = (
    'title = "Synthetic study"\n[data]\nevents = "events.tsv"\n[split]\nprotocol = "tamm2025"\n'
    '[embeddings]\nnames = ["mfcc_104", "dino_vits16", "dino_vits16_random", "lyrics", "metadata"]\n'
    'fusions = ["mfcc_104+lyrics", "mfcc_104+metadata"]\n'
    '[[recommenders]]\nname = "pop"\n[[recommenders]]\nname = "knn"\n[[recommenders]]\nname = "snn"\n'
    '[evaluation]\nmodes = ["val", "test", "cold_test"]\nks = [5, 10]\nseeds = [1, 2]\n[report]\nk = 10\n'
    'gallery_tracks = 0\nnotes = ["PyTorch is not installed, so this study left out snn."]\n'
)


def make_study(root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "study.toml").write_text(STUDY_TOML)
    for seed in (1, 2):
        for split in SPLITS:
            fake_run(root / "results", root / "runs", "pop", "-", split, seed)
            for embedding in EMBEDDINGS:
                fake_run(root / "results", root / "runs", "knn", embedding, split, seed)
            fake_run(root / "results", root / "runs", "snn", "mfcc_104", split, seed)
    return root


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("study") / "study")


@pytest.fixture(scope="module")
def report(study_dir):
    index = write_report(study_dir, study_dir / "report")
    return index, index.read_text()


def text_of(page: str) -> str:
    """The page's visible text, tags dropped and entities decoded."""
    import html

    page = re.sub(r"<(style|script)>.*?</\1>", "", page, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


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
    assert files.read_marker(index.parent)["kind"] == "report"


def test_the_lyrics_gain_counts_each_user_once_and_matches_scipy(report, study_dir):
    index, page = report
    gains = pd.read_csv(index.parent / "data" / "q3-lyrics.csv")
    assert set(gains.loc[gains["gap"].notna(), "model"]) == {"snn"}  # the study ran no fusion with snn: said so
    gains = gains[gains["gap"].isna()]
    assert set(gains["model"]) == {"knn"} and set(gains["split"]) == {"test", "cold_test"}  # never val
    assert gains["mean_diff"].to_numpy() == pytest.approx([0.2, 0.2], abs=0.01)
    assert (gains["n_users"] == 60).all()  # 80 (seed, user) pairs, 60 users: u20..u39 count once
    assert (gains["mark"] == "***").all()
    # the reference: the stored per-user files read with pandas, each user's mean over seeds, then scipy
    def means(embedding):
        frames = [pd.read_parquet(study_dir / "results" / "per_user" / f"knn-{embedding}-test-seed{seed}.parquet")
                  for seed in (1, 2)]
        rows = pd.concat(frames).query("metric == 'NDCG' and k == 10")
        return rows.groupby("user_id")["value"].mean().sort_index()

    fused, base = means("mfcc_104+lyrics"), means("mfcc_104")
    expected = scipy.stats.ttest_rel(fused.to_numpy(), base.to_numpy()).pvalue
    row = gains.set_index("split").loc["test"]
    assert row["t_p"] == pytest.approx(expected, rel=1e-9)
    assert row["wilcoxon_p"] == pytest.approx(scipy.stats.wilcoxon(fused.to_numpy(), base.to_numpy()).pvalue,
                                              rel=1e-9)
    assert row["t_p_holm"] == pytest.approx(min(1.0, 2 * row["t_p"]))  # Holm over the two test slices
    metadata = pd.read_csv(index.parent / "data" / "q4-metadata.csv").query("model == 'knn'")
    assert metadata["mean_diff"].to_numpy() == pytest.approx([0.0, 0.0], abs=0.01)
    assert (metadata["mark"] == "n.s.").all()
    text = text_of(page)
    assert "Question 3: does adding lyrics help?" in text
    assert re.search(r"knn / mfcc_104 on test: adding lyrics gains: NDCG@10 from 0\.\d{4} to 0\.\d{4} \(\+0\.2\d{3}\); "
                     r"paired t-test over 60 users, Holm-adjusted p < 0\.0001", text)
    assert re.search(r"knn / mfcc_104 on test: adding metadata moves NDCG@10 from 0\.\d{4} to 0\.\d{4} "
                     r"\([+-]0\.0\d{3}\), not told apart from no change; paired t-test over 60 users", text)


def test_every_claim_names_its_test_and_rests_on_test_slices(report):
    index, page = report
    text = text_of(page)
    answers = [text_of(p) for p in re.findall(r'<p class="answer">(.*?)</p>', page, flags=re.S)]
    claims = [a for a in answers if re.search(r"\b(best is|gains|loses|higher than|lower than|ahead of)\b", a)]
    assert len(claims) >= 6
    for claim in claims:
        assert "paired t-test over" in claim and "Holm-adjusted p" in claim, claim
        assert "validation" not in claim.split(":")[0], claim
    for name in ("q1-tests", "q2-tests", "q3-lyrics", "q4-metadata"):
        tests = pd.read_csv(index.parent / "data" / f"{name}.csv")
        assert set(tests["split"]) <= {"test", "cold_test"}, name
        ran = tests[tests["t_p"].notna()]  # rows with a gap ran no test and are no part of the family
        np.testing.assert_allclose(ran["t_p_holm"], _holm(ran["t_p"]))  # one family per question
        assert tests.loc[tests["t_p"].isna(), "t_p_holm"].isna().all()
    # snn is 0.05 above knn on mfcc_104 for every user: the top of question 1 is told apart
    assert re.search(r"Every backend and baseline on test \(NDCG@10, mean over users\): best is snn / mfcc_104 "
                     r"\(0\.\d{4}\), ahead of every other entry; against the runner-up knn / mfcc_104", text)
    assert re.search(r"On test, NDCG@10: knn / dino_vits16 \(DINO \(vision\), 0\.\d{4}\) is lower than "
                     r"knn / mfcc_104 \(audio", text)


def _holm(p):
    p = np.asarray(p, dtype=np.float64)  # written out here from Holm (1979): step-down, running maximum
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, (len(p) - rank) * p[index])
        adjusted[index] = min(1.0, running)
    return adjusted


def test_tables_are_sorted_as_they_say_and_csvs_hold_what_they_promise(report, study_dir):
    index, page = report
    board = pd.read_csv(index.parent / "data" / "leaderboard.csv")
    results = store.query(study_dir / "results")
    cells = results[["model", "embedding", "split", "metric", "k"]].drop_duplicates()
    assert len(board) == len(cells)  # every run (over seeds), metric, k and split
    assert set(board["split"]) == set(SPLITS) and set(board["k"]) == {5, 10}
    assert set(board["ci_method"]) == {"bootstrap over users"} and set(board["n_seeds"]) == {2}
    accuracy = board[board["metric"] != "Novelty"]
    assert ((accuracy["ci_low"] >= 0) & (accuracy["ci_high"] <= 1)).all()
    assert (board["ci_low"] <= board["mean"]).all() and (board["mean"] <= board["ci_high"]).all()
    test_table = page.split("<h3>test</h3>", 1)[1].split("</table>", 1)[0]
    ndcg = [float(cells[-1].split(" ")[0]) for cells in
            (re.findall(r"<td>([^<]*)</td>", row) for row in test_table.split("<tr>")[2:])]
    assert ndcg == sorted(ndcg, reverse=True) and len(ndcg) == 7  # sorted by NDCG, as the text says
    runs = pd.read_csv(index.parent / "data" / "runs.csv")
    assert len(runs) == len(results) and set(runs["seed"]) == {1, 2}
    assert "validation (what early stopping and tuning look at: shown, never used as evidence)" in page
    assert "95% intervals: percentile bootstrap over users (2000 resamples" in page


def test_dino_hot_cold_training_and_notes_are_drawn(report):
    index, page = report
    dino = pd.read_csv(index.parent / "data" / "q2-dino.csv")
    assert set(dino["family"]) == {"DINO (vision)", "DINO, random weights (a control)", "audio"}
    assert "dino_vits16_random has random weights, not the published DINO" in page
    assert "PyTorch is not installed, so this study left out snn." in page
    assert "on validation, so the test does not also pick the winner" in page
    backends = pd.read_csv(index.parent / "data" / "q1-backends.csv")
    assert "+" not in "".join(backends["embedding"])  # the backends alone, no fusion
    assert {"pop", "knn / mfcc_104", "knn / dino_vits16_random"} <= set(backends["label"])
    hot_cold = pd.read_csv(index.parent / "data" / "hot-cold.csv")
    assert set(hot_cold["split"]) == {"test", "cold_test"}
    assert (index.parent / "figures" / "training.png").is_file()
    assert set(pd.read_csv(index.parent / "data" / "training.csv")["run"].str[-5:]) == {"seed1", "seed2"}
    assert "every trained run of seed 1; the other seeds&#39; curves are in its CSV" in page  # escaped
    q5 = pd.read_csv(index.parent / "data" / "q5-k-test.csv")  # readable: baselines and each model's best
    assert set(q5["series"]) == {"pop", "knn / mfcc_104+lyrics", "snn / mfcc_104"}
    assert "3 train users get empty lists" in page


def test_absent_data_is_said_plainly(tmp_path, study_dir):
    small = tmp_path / "study"
    shutil.copytree(study_dir, small, ignore=shutil.ignore_patterns("report"))
    for path in (small / "results").rglob("*.parquet"):
        if "snn" in path.name or "+" in path.name or "dino" in path.name or "cold_test" in path.name:
            path.unlink()
    page = write_report(small, tmp_path / "report").read_text()
    assert "No DINO embedding in this study" in page
    assert "No fusion with lyrics in this study" in page and "No fusion with metadata in this study" in page
    assert "No training curve in this study" in page
    assert "No cold test in this study" in page
    assert "No audio folder in this study" in page


def test_a_partial_store_names_its_gaps(tmp_path, study_dir):
    partial = tmp_path / "study"
    shutil.copytree(study_dir, partial, ignore=shutil.ignore_patterns("report"))
    for path in (partial / "results").rglob("knn-mfcc_104-*.parquet"):  # the fusion's base, for knn
        path.unlink()
    for path in (partial / "results").rglob("knn-mfcc_104+metadata-test-seed2.parquet"):
        path.unlink()
    (partial / "results" / "per_user" / "knn-dino_vits16-test-seed1.parquet").unlink()  # metrics, no users
    (partial / "steps").mkdir()
    (partial / "steps" / "run.knn-mfcc_104-seed1.json").write_text('{"key": "run.knn-mfcc_104-seed1", "sta')
    (partial / "steps" / "run.pop-seed1.json").write_text(json.dumps({"key": "run.pop-seed1", "status": "failed",
                                                                      "error": "out of memory"}))
    page = text_of(write_report(partial, tmp_path / "report").read_text())
    assert "Not tested: no per-user NDCG@10 of knn / mfcc_104 on test in the store." in page
    assert "The step record steps/run.knn-mfcc_104-seed1.json is not a valid JSON record (cut short?)" in page
    assert "1 steps did not finish" in page and "out of memory" in page
    assert "no per-user values for run knn-dino_vits16-test-seed1" in page
    gains = pd.read_csv(tmp_path / "report" / "data" / "q3-lyrics.csv")
    assert gains["gap"].notna().all() and gains["t_p"].isna().all()  # every lyrics test lacks its base
    metadata = pd.read_csv(tmp_path / "report" / "data" / "q4-metadata.csv")
    assert (metadata["n_users"] == 0).all()  # the base is gone for knn: nothing tested, nothing crashed


def test_a_folder_without_a_study_is_one_sentence(tmp_path):
    with pytest.raises(SonicError, match="is not a study's output folder"):
        write_report(tmp_path, tmp_path / "report")


def test_a_folder_holding_someone_elses_file_is_refused_and_kept(tmp_path, study_dir):
    out = tmp_path / "paper"
    out.mkdir()
    (out / "thesis.tex").write_text("\\documentclass{article}")
    result = sonic("report", study_dir, "--out", out)
    assert result.returncode == 2
    assert result.stderr.startswith("sonic: error: ") and result.stderr.count("\n") == 1
    assert "thesis.tex" in result.stderr and "sonic did not write" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]
    assert (out / "thesis.tex").read_text() == "\\documentclass{article}"


def test_a_report_folder_sonic_wrote_is_replaced_whole(tmp_path, study_dir):
    out = tmp_path / "report"
    result = sonic("report", study_dir, "--out", out)
    assert result.returncode == 0, result.stderr
    marker = files.read_marker(out)
    (out / "figures" / "old-figure.png").write_bytes(b"left from an earlier report")
    assert sonic("report", study_dir, "--out", out).returncode == 0
    assert not (out / "figures" / "old-figure.png").exists()
    assert (out / "index.html").is_file() and files.read_marker(out) == marker


def test_an_older_unmarked_report_is_recognised(tmp_path, study_dir):
    out = tmp_path / "report"
    (out / "figures").mkdir(parents=True)
    (out / "index.html").write_text("<html><head><script>window.sonicErrors = [];</script></head></html>")
    write_report(study_dir, out)
    assert files.read_marker(out)["kind"] == "report" and "Synthetic study" in (out / "index.html").read_text()
