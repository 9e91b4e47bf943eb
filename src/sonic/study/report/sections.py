"""The report's sections, one function each, from the study's results store.

Each function takes the :class:`ReportData` and the report folder, writes its figures (PNG + CSV)
and returns a :class:`~sonic.study.report.page.Section`; a section whose data the study does
not have says so in one plain sentence.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sonic.study.config import Study
from sonic.study.report import figures
from sonic.study.report.page import Section
from sonic.study.steps import NO_EMBEDDING

ACCURACY = ("HitRate", "Precision", "Recall", "MRR", "NDCG")
BEYOND = ("Coverage", "Novelty", "ARP", "LongTailShare", "ILD")
#: Embeddings that are neither audio nor vision models (question 2 compares those two).
NOT_AUDIO = ("lyrics", "metadata")
#: Significance marks on Holm-adjusted Wilcoxon p-values.
MARKS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))


@dataclass(frozen=True)
class ReportData:
    """What the report draws from: the study, its per-run results and leaderboard, runs, failed steps."""

    study: Study
    out_dir: Path
    results: pd.DataFrame  # sonic.study.store.query rows
    board: pd.DataFrame  # sonic.study.store.leaderboard of results
    runs: pd.DataFrame  # sonic.study.store.runs
    failed_steps: list[dict]
    store_dir: Path

    @property
    def metric(self) -> str:
        return self.study.report.metric

    @property
    def k(self) -> int:
        return self.study.report.k

    @property
    def seeds(self) -> list[int]:
        return sorted(set(self.results["seed"]))

    @property
    def splits(self) -> list[str]:
        return list(dict.fromkeys(mode for mode in self.study.evaluation.modes if mode in set(self.results["split"])))

    @property
    def main_split(self) -> str:
        """The split the questions are answered on: test when evaluated, else the last one."""
        return "test" if "test" in self.splits else self.splits[-1]

    def interval_note(self) -> str:
        seeds = self.seeds
        if len(seeds) > 1:
            return (f"Intervals: 95% t-intervals over the means of {len(seeds)} seeds ({', '.join(map(str, seeds))}); "
                    "each seed draws its own val/test users and seeds the models.")
        return f"Intervals: 95% t-intervals over users (one seed: {seeds[0]})."


def label(frame: pd.DataFrame) -> pd.Series:
    """``model / embedding`` (just the model when it uses no embedding)."""
    return np.where(frame["embedding"] == NO_EMBEDDING, frame["model"], frame["model"] + " / " + frame["embedding"])


def overview(data: ReportData) -> Section:
    study = data.study
    section = Section("overview", "Study")
    for note in study.report.notes:
        section.parts.append(f'<p class="answer">{html.escape(note)}</p>')
    section.text(f"Study file: {study.source}. Protocol '{study.split.protocol}'; evaluated on "
                 f"{', '.join(data.splits)}; k = {', '.join(map(str, study.evaluation.ks))}; seeds "
                 f"{', '.join(map(str, data.seeds))}.")
    section.text(f"Embeddings: {', '.join(study.embeddings.names) or 'none'}"
                 + (f"; fusions: {', '.join(study.embeddings.fusions)}" if study.embeddings.fusions else "")
                 + f". Recommenders: {', '.join(spec.label for spec in study.recommenders)}. "
                 f"{len(data.runs)} runs in the results store.")
    section.text(data.interval_note())
    if data.failed_steps:
        section.absent(f"{len(data.failed_steps)} steps did not finish; their results are missing below:")
        section.table(pd.DataFrame(data.failed_steps))
    warnings = [(run.run, line) for run in data.runs.itertuples() for line in json.loads(run.warnings or "[]")]
    if warnings:
        section.text("Warnings the recommenders gave (also in each run folder's warnings.txt):")
        section.table(pd.DataFrame(warnings, columns=["run", "warning"]))
    return section


def leaderboards(data: ReportData, report_dir: Path) -> Section:
    section = Section("leaderboards", "Leaderboards")
    section.text(f"Every recommender and embedding at k = {data.k}, best first by {data.metric}. "
                 + data.interval_note())
    for split in data.splits:
        board = data.board[(data.board["split"] == split) & (data.board["k"] == data.k)]
        board = board[board["metric"].isin(ACCURACY)]
        wide = _wide(board)
        section.parts.append(f"<h3>{split}</h3>")
        csv = f"{figures.DATA_DIR}/leaderboard-{split}.csv"
        board.to_csv(report_dir / csv, index=False)
        section.table(wide, csv=csv)
        rows = board[board["metric"] == data.metric].assign(label=lambda f: label(f))
        figure = figures.bars(rows, label="label", title=f"{data.metric}@{data.k} on {split}",
                              ylabel=f"{data.metric}@{data.k} (95% interval)")
        section.figure(figures.save(figure, rows, report_dir, f"leaderboard-{split}",
                                    f"{data.metric}@{data.k} on {split}, with 95% intervals."))
    return section


def backends(data: ReportData, report_dir: Path) -> Section:
    section = Section("q1", "Question 1: how do the backends compare?")
    split = data.main_split
    board = _at(data.board, split, data.k, data.metric)
    rows = board[(board["embedding"] == NO_EMBEDDING) | _single(board)].assign(label=lambda f: label(f))
    embeddings = sorted(set(rows["embedding"]) - {NO_EMBEDDING})
    if not embeddings:
        section.absent("No embedding in this study: only content-free recommenders ran.")
        return section
    rows = rows.assign(recommender=rows["model"].where(rows["embedding"] != NO_EMBEDDING, "content-free baseline"))
    figure = figures.bars(rows, label="label", title=f"Backends: {data.metric}@{data.k} on {split}",
                          ylabel=f"{data.metric}@{data.k}", colour_by="recommender")
    section.figure(figures.save(figure, rows, report_dir, "q1-backends",
                                f"Each backend (one embedding, no fusion) under each content recommender, against "
                                f"the content-free baselines ({split}); colours: recommenders."))
    best = rows.sort_values("mean", ascending=False).iloc[0]
    baseline = rows[rows["embedding"] == NO_EMBEDDING].sort_values("mean", ascending=False)
    answer = f"Best on {split}: {best['label']} with {data.metric}@{data.k} = {best['mean']:.4f} " \
             f"[{best['ci_low']:.4f}, {best['ci_high']:.4f}]."
    for model, group in rows[rows["embedding"] != NO_EMBEDDING].groupby("model", sort=False):
        order = group.sort_values("mean", ascending=False)
        answer += f" With {model}: " + ", ".join(f"{r.embedding} {r.mean:.4f}" for r in order.itertuples()) + "."
    if len(baseline):
        top = baseline.iloc[0]
        answer += f" Best content-free baseline: {top['label']} = {top['mean']:.4f}."
    if len(embeddings) == 1:
        answer += f" This study has one backend ({embeddings[0]}): add embedders to compare backends."
    section.parts.append(f'<p class="answer">{answer}</p>')
    return section


def is_random_control(embedding: str) -> bool:
    """An embedding of random weights (a control, named so: ``dino_vits16_random``)."""
    return "random" in embedding.split("_")


def dino(data: ReportData, report_dir: Path) -> Section:
    section = Section("q2", "Question 2: DINO on spectrograms against audio models")
    split = data.main_split
    board = _at(data.board, split, data.k, data.metric)
    rows = board[_single(board) & ~board["embedding"].isin(NOT_AUDIO)].assign(label=lambda f: label(f))
    is_dino = rows["embedding"].str.startswith("dino")
    if not is_dino.any():
        section.absent("No DINO embedding in this study: add a dino_* embedder to [embeddings] names to answer it.")
        return section
    if is_dino.all():
        section.absent("Only DINO embeddings in this study: add an audio model to compare against.")
        return section
    is_random = rows["embedding"].map(is_random_control)
    controls = sorted(set(rows.loc[is_dino & is_random, "embedding"]))
    for name in controls:
        published = name.removesuffix("_random")
        section.text(f"{name} has random weights, not the published DINO: put timm's checkpoint folder of "
                     f"{published} in the local Hugging Face cache, or name {published} in [embeddings] names with "
                     f"[embeddings.options] {published} = {{ checkpoint = \"PATH\" }} (the demo: sonic demo "
                     f"--dino-checkpoint PATH), to run the real one.")
    rows = rows.assign(family=np.select([is_dino & is_random, is_dino], ["DINO, random weights (a control)",
                                                                          "DINO (vision)"], "audio"))
    figure = figures.bars(rows, label="label", title=f"DINO against audio models: {data.metric}@{data.k} on {split}",
                          ylabel=f"{data.metric}@{data.k}", colour_by="family")
    section.figure(figures.save(figure, rows, report_dir, "q2-dino",
                                "Vision-model (DINO) embeddings of spectrogram pictures against audio embeddings, "
                                "per content recommender; colours: the kind of embedding."))
    answers = []
    for model, group in rows.groupby("model", sort=False):
        best = group.sort_values("mean", ascending=False).groupby("family", sort=False).head(1)
        answers.append(f"with {model}, " + "; ".join(f"best {r.family}: {r.embedding} {r.mean:.4f}"
                                                     for r in best.itertuples()))
    answer = f"{data.metric}@{data.k} on {split}: " + ". ".join(answers) + "."
    if controls:
        answer += (" A random-weights control measures what the architecture and the pictures give without "
                   "training; it says nothing about the published DINO's score.")
    section.parts.append(f'<p class="answer">{answer}</p>')
    return section


def gain(data: ReportData, report_dir: Path, addition: str, number: int) -> Section:
    """Questions 3 and 4: ``<backend>+<addition>`` against ``<backend>`` per recommender, paired tests."""
    from sonic.rouge.significance import holm, paired_tests
    from sonic.study.store import per_user

    section = Section(f"q{number}", f"Question {number}: does adding {addition} help?")
    embeddings = set(data.results["embedding"])
    pairs = []
    for fused in sorted(embeddings):
        parts = fused.split("+")
        if addition in parts and len(parts) > 1:
            base = "+".join(part for part in parts if part != addition)
            if base in embeddings:
                pairs.append((base, fused))
    if not pairs:
        section.absent(f"No fusion with {addition} in this study: add e.g. fusions = [\"mfcc_104+{addition}\"] "
                       f"(with {addition} in names) to answer it.")
        return section
    metric, k = data.metric, data.k
    values = per_user(data.store_dir, f"p.metric = '{metric}' AND p.k = {int(k)}")
    values = values.assign(key=values["seed"].astype(str) + ":" + values["user_id"].astype(str))
    rows = []
    for base, fused in pairs:
        for (model, split), group in values[values["embedding"] == fused].groupby(["model", "split"]):
            other = values[(values["embedding"] == base) & (values["model"] == model) & (values["split"] == split)]
            if other.empty:
                continue
            test = paired_tests(group.set_index("key")["value"], other.set_index("key")["value"])
            rows.append({"model": model, "split": split, "base": base, "with": fused, "n_pairs": test.n_users,
                         "mean_base": test.mean_b, "mean_with": test.mean_a, "mean_diff": test.mean_diff,
                         "t_p": test.t_p, "wilcoxon_p": test.wilcoxon_p})
    frame = pd.DataFrame(rows)
    frame["wilcoxon_p_holm"] = holm(frame["wilcoxon_p"].to_numpy())
    frame["mark"] = [_mark(p) for p in frame["wilcoxon_p_holm"]]
    frame["label"] = frame["model"] + " / " + frame["base"] + " (" + frame["split"] + ")"
    figure = figures.gains(frame, title=f"Gain from {addition}: {metric}@{k}", xlabel=f"{metric}@{k} with - without")
    section.figure(figures.save(figure, frame, report_dir, f"q{number}-{addition}",
                                f"Mean per-user difference from adding {addition}; marks: Holm-adjusted Wilcoxon "
                                "signed-rank p < 0.05 *, < 0.01 **, < 0.001 *** (pairs: the same user and seed)."))
    shown = frame.loc[:, ["model", "split", "base", "with", "n_pairs", "mean_base", "mean_with", "mean_diff",
                          "t_p", "wilcoxon_p", "wilcoxon_p_holm", "mark"]]
    for column in ("t_p", "wilcoxon_p", "wilcoxon_p_holm"):
        shown[column] = [f"{p:.2g}" if np.isfinite(p) else "" for p in shown[column]]
    section.table(shown)
    return section


def by_k(data: ReportData, report_dir: Path) -> Section:
    section = Section("q5", "Question 5: how does it change with the list length k?")
    ks = sorted(set(data.results["k"]))
    if len(ks) < 2:
        section.absent(f"This study evaluates one list length (k = {ks[0]}); list several ks to draw the curves.")
        return section
    for split in data.splits:
        rows = data.board[(data.board["split"] == split) & data.board["metric"].isin(ACCURACY)]
        rows = rows.assign(series=lambda f: label(f))
        shown = _best_per_recommender(rows, data.metric, data.k)
        rows = rows[rows["series"].isin(shown)]
        figure = figures.curves(rows, x="k", series="series", metrics=list(ACCURACY),
                                title=f"Metrics against k on {split}", x_log=max(ks) / min(ks) >= 10)
        section.figure(figures.save(figure, rows, report_dir, f"q5-k-{split}",
                                    f"Every accuracy metric against k on {split}: the content-free baselines and, "
                                    f"per content recommender, its best embedding by {data.metric}@{data.k} "
                                    "(every run is in the leaderboards' CSV); bands: 95% intervals."))
    return section


def _best_per_recommender(rows: pd.DataFrame, metric: str, k: int) -> list[str]:
    """Series to draw: each content-free model, and each content model on its best embedding at ``metric@k``."""
    at = rows[(rows["metric"] == metric) & (rows["k"] == k)].sort_values("mean", ascending=False)
    free = list(dict.fromkeys(at.loc[at["embedding"] == NO_EMBEDDING, "series"]))
    best = at[at["embedding"] != NO_EMBEDDING].groupby("model", sort=False).head(1)
    return [*best["series"], *free]


def hot_cold(data: ReportData, report_dir: Path) -> Section:
    section = Section("hotcold", "Hot and cold tracks")
    if "cold_test" not in data.splits:
        section.absent(f"No cold test in this study: protocol '{data.study.split.protocol}' keeps none "
                       "(tamm2025 does; add 'cold_test' to [evaluation] modes).")
        return section
    rows = data.board[data.board["split"].isin(["test", "cold_test"]) & (data.board["k"] == data.k)
                      & (data.board["metric"] == data.metric)]
    rows = rows.assign(label=label(rows) + np.where(rows["split"] == "cold_test", " (cold test)", " (hot test)"))
    figure = figures.bars(rows, label="label", title=f"Hot against cold: {data.metric}@{data.k}",
                          ylabel=f"{data.metric}@{data.k}")
    section.figure(figures.save(figure, rows, report_dir, "hot-cold",
                                "Hot test (tracks seen in train) against cold test (tracks never seen)."))
    return section


def beyond(data: ReportData, report_dir: Path) -> Section:
    section = Section("beyond", "Beyond accuracy")
    split = data.main_split
    rows = data.board[(data.board["split"] == split) & (data.board["k"] == data.k)
                      & data.board["metric"].isin(BEYOND)]
    if rows.empty:
        section.absent("No beyond-accuracy metrics in these runs.")
        return section
    names = [name for name in BEYOND if name in set(rows["metric"])]
    section.text(f"At k = {data.k} on {split}: catalogue coverage (share of the split's tracks recommended to "
                 "anyone), novelty (mean self-information of recommended tracks, bits), ARP (average popularity "
                 "in train users), long-tail share (tracks outside the 20% most popular) and ILD (intra-list "
                 "diversity: mean cosine distance between a list's tracks, in its embedding's space).")
    section.table(_wide(rows, names))
    rows = rows.assign(series=lambda f: label(f))
    figure = figures.panels(rows, label="series", metrics=names, title=f"Beyond accuracy at k = {data.k} ({split})")
    section.figure(figures.save(figure, rows, report_dir, "beyond", "Beyond-accuracy metrics per recommender."))
    return section


def training(data: ReportData, report_dir: Path) -> Section:
    section = Section("training", "Training curves")
    frames = []
    for run in data.runs.itertuples():
        path = Path(run.run_dir) / "curve.csv"
        if path.is_file():
            frames.append(pd.read_csv(path).assign(run=run.run))
    if not frames:
        trained = ", ".join(sorted(set(data.runs["recommender"])))
        section.absent(f"No training curve in this study: its recommenders ({trained}) do not train by epochs.")
        return section
    curves = pd.concat(frames, ignore_index=True)
    columns = [c for c in curves.columns if c not in ("epoch", "run", "seconds") and curves[c].notna().any()]
    seed = data.seeds[0]
    shown = curves[curves["run"].str.endswith(f"-seed{seed}")]
    figure = figures.lines(shown, x="epoch", columns=columns, series="run", title=f"Training curves (seed {seed})")
    others = "; the other seeds' curves are in its CSV" if len(data.seeds) > 1 else ""
    section.figure(figures.save(figure, curves, report_dir, "training",
                                f"Loss (and learning rate) by epoch of every trained run of seed {seed}{others}."))
    return section


def gallery(data: ReportData, report_dir: Path, *, num_workers: int | None) -> Section:
    from sonic.cream.audio import find_audio_files
    from sonic.cream.spectra import visualize

    section = Section("gallery", "Spectral pictures")
    audio = data.study.data.audio
    count = data.study.report.gallery_tracks
    if audio is None or count == 0 or not audio.is_dir():
        section.absent("No audio folder in this study (or gallery_tracks = 0): no pictures.")
        return section
    files = find_audio_files(audio)
    picks = [files[i] for i in np.linspace(0, len(files) - 1, min(count, len(files))).round().astype(int)]
    section.text("Mel spectrogram, chromagram, FFT spectrum and tempogram of the first 10 seconds of a few "
                 "tracks, drawn by `sonic visualize` (the pictures are of audio; their data is the audio file).")
    for path in picks:
        result = visualize(path, report_dir / "gallery", kind="all", duration_seconds=10.0, num_workers=0,
                           progress=False)
        cells = "".join(f'<a href="gallery/{p.name}"><img src="gallery/{p.name}" alt="{p.name}"></a>'
                        for p in result.written)
        section.parts.append(f"<h3>{path.stem}</h3><div class=\"gallery\">{cells}</div>")
    return section


def _single(board: pd.DataFrame) -> pd.Series:
    """Rows of one embedding (not a fusion, not content-free)."""
    return (board["embedding"] != NO_EMBEDDING) & ~board["embedding"].str.contains("+", regex=False)


def _at(board: pd.DataFrame, split: str, k: int, metric: str) -> pd.DataFrame:
    return board[(board["split"] == split) & (board["k"] == k) & (board["metric"] == metric)]


def _wide(board: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """model, embedding, then ``mean [low, high]`` per metric; best first by the first metric."""
    metrics = metrics or [m for m in ACCURACY if m in set(board["metric"])]
    rows = []
    for (model, embedding), group in board.groupby(["model", "embedding"], sort=False):
        cells = group.set_index("metric")
        row = {"model": model, "embedding": embedding}
        for metric in metrics:
            if metric in cells.index:
                item = cells.loc[metric]
                interval = (f" [{item['ci_low']:.4f}, {item['ci_high']:.4f}]"
                            if np.isfinite(item["ci_low"]) else "")
                row[metric] = f"{item['mean']:.4f}{interval}"
        row["_sort"] = cells.loc[metrics[0], "mean"] if metrics[0] in cells.index else -np.inf
        rows.append(row)
    frame = pd.DataFrame(rows).sort_values("_sort", ascending=False).drop(columns="_sort")
    return frame.reset_index(drop=True)


def _mark(p: float) -> str:
    for threshold, mark in MARKS:
        if np.isfinite(p) and p < threshold:
            return mark
    return "n.s."
