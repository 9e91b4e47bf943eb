"""The report's descriptive sections: the study, the leaderboards, beyond accuracy, training curves and the
picture gallery (the five questions are in :mod:`sonic.study.report.questions`, hot and cold tracks in
:mod:`sonic.study.report.cold`).

Each function takes the :class:`~sonic.study.report.data.ReportData` and the report folder, writes its
figures and CSV files, and returns a :class:`~sonic.study.report.page.Section` of plain strings; a
section whose data the study does not have says so in one sentence. None of them claims that one
entry beats another: claims are the questions', each backed by a test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

import sonic.study.report.figures as figures
from sonic.errors import SonicError
from sonic.study.report.data import ReportData
from sonic.study.report.page import Section
from sonic.study.report.statistics import (
    BOOTSTRAP_OVER_USERS,
    CONFIDENCE,
    MIN_SEEDS_FOR_T,
    UNABLE,
    VALIDATION,
    describe_interval,
    describe_tests,
    evidence_splits,
    labels,
)

ACCURACY = ("HitRate", "Precision", "Recall", "MRR", "NDCG")
BEYOND = ("Coverage", "Novelty", "ARP", "LongTailShare", "ILD")
SPLIT_NAMES = {"val": "validation", "test": "test", "cold_test": "cold test"}
LEADERBOARD_CSV = f"{figures.DATA_DIR}/leaderboard.csv"
RUNS_CSV = f"{figures.DATA_DIR}/runs.csv"


def split_title(split: str) -> str:
    """How a split is named on the page; validation says it is no evidence."""
    if split == VALIDATION:
        return "validation (what early stopping and tuning look at: shown, never used as evidence)"
    return SPLIT_NAMES.get(split, split)


def interval_axis(board: pd.DataFrame, metric: str, k: int) -> str:
    """An axis label naming the interval's method: ``NDCG@10 (95% interval: bootstrap over users)``."""
    methods = sorted(set(board["ci_method"]) - {"none"})
    return f"{metric}@{k}" + (f" ({int(CONFIDENCE * 100)}% interval: {', '.join(methods)})" if methods else "")


def overview(data: ReportData) -> Section:
    study = data.study
    section = Section("overview", "Study")
    for note in study.report.notes:
        section.answer(note)
    section.text(f"Study file: {study.source}. Protocol '{study.split.protocol}'; evaluated on "
                 f"{', '.join(data.splits)}; k = {', '.join(map(str, study.evaluation.ks))}; seeds "
                 f"{', '.join(map(str, data.seeds))}.")
    section.text(f"Embeddings: {', '.join(study.embeddings.names) or 'none'}"
                 + (f"; fusions: {', '.join(study.embeddings.fusions)}" if study.embeddings.fusions else "")
                 + f". Recommenders: {', '.join(spec.label for spec in study.recommenders)}. "
                 f"{len(data.runs)} runs in the results store.")
    section.text(_interval_note(data))
    section.text(describe_tests())
    for gap in data.gaps:
        section.absent(gap)
    if data.failed_steps:
        section.absent(f"{len(data.failed_steps)} steps did not finish; their results are missing below:")
        section.table(pd.DataFrame(data.failed_steps, columns=["step", "error"]))
    warnings = []
    for run in data.runs.itertuples():
        try:
            lines = json.loads(run.warnings or "[]")
        except (TypeError, ValueError):
            lines = [str(run.warnings)]
        warnings.extend((run.run, str(line)) for line in lines)
    if warnings:
        section.text("Warnings the recommenders gave (also in each run folder's warnings.txt):")
        section.table(pd.DataFrame(warnings, columns=["run", "warning"]))
    return section


def _interval_note(data: ReportData) -> str:
    seeds = data.seeds
    if (data.board["ci_method"] == BOOTSTRAP_OVER_USERS).any():
        why = (f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))}) are fewer than "
               f"{MIN_SEEDS_FOR_T}, too few for an interval over seeds")
        return (f"{describe_interval(data.board)} Intervals are over users because {why}; such an interval "
                "says how much the mean depends on which users were drawn, not how much training runs vary.")
    return describe_interval(data.board)


def leaderboards(data: ReportData, report_dir: Path) -> Section:
    section = Section("leaderboards", "Leaderboards")
    metric, k = data.metric, data.k
    board = data.board.sort_values(["split", "metric", "k", "mean"], ascending=[True, True, True, False])
    figures.write_csv(board, report_dir / LEADERBOARD_CSV)
    per_seed = data.results.loc[:, ["model", "embedding", "split", "seed", "metric", "k", "mean", "n_users"]]
    figures.write_csv(per_seed, report_dir / RUNS_CSV)
    section.text(f"Every recommender and embedding at k = {k}, sorted by {metric}@{k}, highest mean first; each "
                 "cell is the mean with its interval in brackets. The table's CSV holds every run, metric, k and "
                 "split with each interval's method (ci_method, ci_df); runs.csv holds each seed's own means. "
                 "A leaderboard ranks means: which differences are told apart is tested in the questions below.")
    evidence = evidence_splits(data.splits)
    for split in [*evidence, *(split for split in data.splits if split not in evidence)]:  # validation last
        rows = data.board[(data.board["split"] == split) & (data.board["k"] == k)]
        rows = rows[rows["metric"].isin(ACCURACY)]
        section.heading(split_title(split))
        section.table(wide(rows, sort_by=metric), caption=describe_interval(rows), csv=LEADERBOARD_CSV)
        bars = rows[rows["metric"] == metric].assign(label=lambda f: labels(f))
        figure = figures.bars(bars, label="label", title=f"{metric}@{k} on {SPLIT_NAMES.get(split, split)}",
                              ylabel=interval_axis(bars, metric, k))
        section.figure(figures.save(figure, bars, report_dir, f"leaderboard-{split}-{metric}-at-{k}",
                                    f"{metric}@{k} on {split_title(split)}. {describe_interval(bars)}"))
    return section


def beyond(data: ReportData, report_dir: Path) -> Section:
    section = Section("beyond", "Beyond accuracy")
    split = data.main_split
    board = data.board
    rows = board[(board["split"] == split) & (board["k"] == data.k) & board["metric"].isin(BEYOND)]
    if rows.empty:
        section.absent("No beyond-accuracy metrics in these runs.")
        return section
    names = [name for name in BEYOND if name in set(rows["metric"])]
    section.text(f"At k = {data.k} on {split}: catalogue coverage (share of the split's tracks recommended to "
                 "anyone), novelty (mean self-information of recommended tracks, bits), ARP (average popularity "
                 "in train users), long-tail share (tracks outside the 20% most popular) and ILD (intra-list "
                 "diversity: mean cosine distance between a list's tracks, in its embedding's space). Rows by "
                 "recommender and embedding; no row is ranked.")
    section.table(wide(rows, names), caption=describe_interval(rows))
    rows = rows.assign(series=lambda f: labels(f))
    figure = figures.panels(rows, label="series", metrics=names, title=f"Beyond accuracy at k = {data.k} ({split})")
    section.figure(figures.save(figure, rows, report_dir, "beyond",
                                "Beyond-accuracy metrics per recommender. " + describe_interval(rows)))
    return section


def training(data: ReportData, report_dir: Path) -> Section:
    section = Section("training", "Training curves")
    frames = []
    for run in data.runs.itertuples():
        path = Path(run.run_dir) / "curve.csv"
        if path.is_file():
            try:
                frames.append(pd.read_csv(path).assign(run=run.run))
            except (OSError, ValueError):
                section.absent(f"The training curve {path} cannot be read; it is left out.")
    if not frames:
        trained = ", ".join(sorted(set(data.runs["recommender"])))
        section.absent(f"No training curve in this study: its recommenders ({trained}) do not train by epochs.")
        return section
    curves = pd.concat(frames, ignore_index=True)
    columns = [c for c in curves.columns if c not in ("epoch", "run", "seconds") and curves[c].notna().any()]
    seed = data.seeds[0]
    shown = curves[curves["run"].str.endswith(f"-seed{seed}")]
    if shown.empty:
        shown = curves
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
    if not files:
        section.absent(f"The audio folder {audio} holds no audio file: no pictures.")
        return section
    picks = [files[i] for i in np.linspace(0, len(files) - 1, min(count, len(files))).round().astype(int)]
    section.text("Mel spectrogram, chromagram, FFT spectrum and tempogram of the first 10 seconds of a few "
                 "tracks, drawn by `sonic visualize` (the pictures are of audio; their data is the audio file).")
    for path in picks:
        relative = path.relative_to(audio)
        track_id = relative.with_suffix("").as_posix()
        out = report_dir / "gallery" / relative.parent
        try:
            result = visualize(path, out, kind="all", duration_seconds=10.0, num_workers=0, progress=False)
        except SonicError as error:  # one track that cannot be drawn is a sentence, not a crash
            section.absent(f"Track {track_id} could not be drawn: {error}")
            continue
        pictures = [(p.relative_to(report_dir).as_posix(), f"{track_id}: {p.name}") for p in result.written]
        section.gallery(track_id, pictures)
    return section


def wide(board: pd.DataFrame, metrics: list[str] | None = None, *, sort_by: str | None = None) -> pd.DataFrame:
    """model, embedding, then ``mean [low, high]`` per metric; highest ``sort_by`` mean first (else by name)."""
    metrics = metrics or [m for m in ACCURACY if m in set(board["metric"])]
    rows = []
    for (model, embedding), group in board.groupby(["model", "embedding"], sort=True):
        cells = group.set_index("metric")
        row = {"model": model, "embedding": embedding}
        for metric in metrics:
            if metric in cells.index and cells.loc[metric].get("status") == UNABLE:
                row[metric] = "UNABLE"
            elif metric in cells.index:
                item = cells.loc[metric]
                interval = f" [{item['ci_low']:.4f}, {item['ci_high']:.4f}]" if np.isfinite(item["ci_low"]) else ""
                row[metric] = f"{item['mean']:.4f}{interval}"
            else:
                row[metric] = ""
        row["_sort"] = float(cells.loc[sort_by, "mean"]) if sort_by in cells.index else -np.inf
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["model", "embedding", *metrics, "_sort"])
    if sort_by is not None:
        frame = frame.sort_values("_sort", ascending=False, kind="stable")
    return frame.drop(columns="_sort").reset_index(drop=True)
