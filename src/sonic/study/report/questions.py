"""The report's five questions: what each one shows, and the claims its tests allow.

Every sentence that says "best", "beats", "higher" or "gains" is read off a paired test
(:mod:`sonic.study.report.statistics`) Holm-adjusted over its question's family, and names the test
and the adjusted p-value; where the test does not tell two entries apart, the sentence says so.
Tests run on the test slices only. Figures and tables are written beside the page.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import sonic.study.report.figures as figures
from sonic.study.report.data import ReportData
from sonic.study.report.page import Section
from sonic.study.report.sections import ACCURACY, interval_axis, split_title
from sonic.study.report.statistics import (
    ALPHA,
    VALIDATION,
    Ranking,
    UserValues,
    adjust,
    choose,
    describe_interval,
    evidence_splits,
    labels,
    paired,
    rank,
    significant,
    verdict,
)
from sonic.study.steps import NO_EMBEDDING

HOT, COLD = "test", "cold_test"
#: Embeddings that are neither audio nor vision models (question 2 compares those two).
NOT_AUDIO = ("lyrics", "metadata")
#: Marks on Holm-adjusted t-test p-values.
MARKS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))
TEST_TABLE = ["family", "split", "a", "b", "n_users", "mean_a", "mean_b", "mean_diff", "t_p_holm", "wilcoxon_p_holm"]


def p_text(p: float) -> str:
    """A p-value for a sentence: two significant digits, ``< 0.0001`` below that."""
    if not np.isfinite(p):
        return "n/a"
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.2g}"


def p_cell(p: float) -> str:
    """A p-value for a table cell: ``0.012``, ``< 0.0001``."""
    return p_text(p).removeprefix("p = ").removeprefix("p ")


def test_words(row) -> str:
    """``paired t-test over 318 users, Holm-adjusted p = 0.012`` for a row of an adjusted family."""
    return f"paired t-test over {int(row['n_users'])} users, Holm-adjusted {p_text(row['t_p_holm'])}"


def mark(p: float) -> str:
    for threshold, symbol in MARKS:
        if np.isfinite(p) and p < threshold:
            return symbol
    return "n.s."


def show_tests(section: Section, tests: pd.DataFrame, report_dir: Path, name: str) -> None:
    """The family's tests as a table (p-values shown with two digits) and their CSV (every column)."""
    csv = f"{figures.DATA_DIR}/{name}.csv"
    figures.write_csv(tests, report_dir / csv)
    shown = tests[tests["gap"] == ""].loc[:, TEST_TABLE].rename(columns={"family": "tests of"})
    for column in ("t_p_holm", "wilcoxon_p_holm"):
        shown[column] = [p_cell(p) for p in shown[column]]
    if len(shown):
        section.table(shown, caption="Paired tests of this question: a against b on the users both have; "
                                     "p-values Holm-adjusted over this table.", csv=csv)


def _no_evidence(section: Section, data: ReportData) -> bool:
    if evidence_splits(data.splits):
        return False
    section.absent(f"No test split in this study (evaluated on {', '.join(data.splits)}): validation is not "
                   "evidence, so nothing is tested; add 'test' to [evaluation] modes.")
    return True


# ------------------------------------------------------------------------------------------ question 1


def backends(data: ReportData, report_dir: Path) -> Section:
    section = Section("q1", "Question 1: how do the backends compare?")
    metric, k, split = data.metric, data.k, data.main_split
    board = data.without_controls(_at(data.board, split, k, metric))
    rows = board[(board["embedding"] == NO_EMBEDDING) | _single(board)].assign(label=lambda f: labels(f))
    embeddings = sorted(set(rows["embedding"]) - {NO_EMBEDDING})
    if not embeddings:
        section.absent("No embedding in this study: only content-free recommenders ran.")
        return section
    rows = rows.assign(recommender=rows["model"].where(rows["embedding"] != NO_EMBEDDING, "content-free baseline"))
    figure = figures.bars(rows, label="label", title=f"Backends: {metric}@{k} on {split}",
                          ylabel=interval_axis(rows, metric, k), colour_by="recommender")
    section.figure(figures.save(figure, rows, report_dir, "q1-backends",
                                f"Each backend (one embedding, no fusion) under each content recommender, against "
                                f"the content-free baselines ({split_title(split)}); colours: recommenders. "
                                + describe_interval(rows)))
    if len(embeddings) == 1:
        section.text(f"This study has one backend ({embeddings[0]}): add embedders to compare backends.")
    if _no_evidence(section, data):
        return section
    values = UserValues(data.per_user, metric, k)
    rankings: list[Ranking] = []
    words: dict[str, str] = {}
    for test_split in evidence_splits(data.splits):
        at = data.without_controls(_at(data.board, test_split, k, metric))
        at = at[(at["embedding"] == NO_EMBEDDING) | _single(at)]
        entries = list(zip(at["model"], at["embedding"]))
        scopes = [("all", "Every backend and baseline", entries)]
        for model in sorted({m for m, e in entries if e != NO_EMBEDDING}):
            scopes.append((f"with {model}", f"With {model}", [(m, e) for m, e in entries if m == model]))
        baselines = [(m, e) for m, e in entries if e == NO_EMBEDDING]
        if len(baselines) > 1:
            scopes.append(("baselines", "Among the content-free baselines", baselines))
        for family, _, scope_entries in scopes:
            ranking = rank(values, test_split, scope_entries, family)
            if ranking is not None:
                rankings.append(ranking)
        words.update({family: text for family, text, _ in scopes})
    tests = adjust([row for ranking in rankings for row in ranking.tests(values)])
    for ranking in rankings:
        for sentence in _ranking_sentences(ranking, tests, words.get(ranking.family, ranking.family), metric, k):
            section.answer(sentence)
    unable = data.unable[data.unable["split"] == COLD]
    if len(unable):
        names = sorted(set(unable["model"]))
        section.text(f"On the cold test {', '.join(names)} {'is' if len(names) == 1 else 'are'} UNABLE (no score for a "
                     "track without train events) and take no part in its rankings.")
    tops = {(r.family, r.split): r.top for r in rankings}
    differ = [(words.get(family, family), top, tops[(family, COLD)]) for (family, split), top in tops.items()
              if split == HOT and (family, COLD) in tops and tops[(family, COLD)] != top]  # fmt: skip
    if any(split == COLD for _, split in tops):
        if differ:
            section.answer("Hot and cold tracks differ: " + "; ".join(
                f"{scope[:1].lower() + scope[1:]}, the highest mean is {hot} on hot tracks but {cold} on cold tracks"
                for scope, hot, cold in differ) + " (each ranking's tests are above).")
        else:
            section.answer("Hot and cold tracks agree: every ranking above has the same entry on top on the hot and "
                           "the cold test (each ranking's tests are above).")
    for gap in sorted(set(tests.loc[tests["gap"] != "", "gap"])):
        section.absent(f"Not tested: {gap}.")
    show_tests(section, tests, report_dir, "q1-tests")
    return section


def _hot_cold_outcomes(section: Section, tests: pd.DataFrame, name_of) -> None:
    """One sentence saying where a comparison's outcome (higher, lower, not told apart) differs between the hot
    and the cold test; ``name_of(row)`` names a comparison (rows of both tests with the same name are paired)."""
    outcomes: dict[str, dict[str, str]] = {}
    for row in tests[tests["gap"] == ""].to_dict("records"):
        word = ("higher" if row["mean_diff"] > 0 else "lower") if significant(row["t_p_holm"]) else "not told apart"
        outcomes.setdefault(name_of(row), {})[row["split"]] = word
    both = {name: split_words for name, split_words in outcomes.items() if {HOT, COLD} <= set(split_words)}
    if not both:
        return
    differ = [f"{name}: {words[HOT]} on hot tracks, {words[COLD]} on cold tracks" for name, words in both.items()
              if words[HOT] != words[COLD]]
    if differ:
        section.answer("Hot and cold tracks differ: " + "; ".join(differ) + " (the tests are above).")
    else:
        section.answer("Hot and cold tracks agree: each comparison above has the same outcome on the hot and the "
                       "cold test.")


def _ranking_sentences(ranking: Ranking, tests: pd.DataFrame, scope: str, metric: str, k: int) -> list[str]:
    result = verdict(ranking, tests)
    means = ranking.order.set_index("label")["mean"]
    where = f"{scope} on {split_title(ranking.split)} ({metric}@{k}, mean over users)"
    if len(ranking.order) == 1:
        return [f"{where}: only {ranking.top} ({means.iloc[0]:.4f}), nothing to compare."]
    runner = result.runner_up
    against = (f"against the runner-up {runner['b']} ({means[runner['b']]:.4f}): {test_words(runner)}"
               if runner is not None and not runner["gap"] else "the runner-up could not be tested")
    if result.best is not None:
        return [f"{where}: best is {result.best} ({means[result.best]:.4f}), ahead of every other entry; "
                f"{against}."]
    tied = ", ".join(f"{label} ({means[label]:.4f})" for label in result.tied)
    rest = len(ranking.order) - len(result.tied)
    behind = f"; the other {rest} are behind the top (Holm-adjusted p < {ALPHA} each)" if rest else ""
    return [f"{where}: the top {len(result.tied)} are not told apart: {tied}; {against}{behind}."]


# ------------------------------------------------------------------------------------------ question 2


def is_random_control(embedding: str) -> bool:
    """An embedding of random weights (a control, named so: ``dino_vits16_random``)."""
    return "random" in embedding.split("_")


FAMILY_AUDIO, FAMILY_DINO, FAMILY_CONTROL = "audio", "DINO (vision)", "DINO, random weights (a control)"


def _family(embedding: str) -> str:
    if not embedding.startswith("dino"):
        return FAMILY_AUDIO
    return FAMILY_CONTROL if is_random_control(embedding) else FAMILY_DINO


def dino(data: ReportData, report_dir: Path) -> Section:
    section = Section("q2", "Question 2: DINO on spectrograms against audio models")
    metric, k, split = data.metric, data.k, data.main_split
    board = data.without_controls(_at(data.board, split, k, metric))
    rows = board[_single(board) & ~board["embedding"].isin(NOT_AUDIO)].assign(label=lambda f: labels(f))
    is_dino = rows["embedding"].str.startswith("dino")
    if not is_dino.any():
        section.absent("No DINO embedding in this study: add a dino_* embedder to [embeddings] names to answer it.")
        return section
    if is_dino.all():
        section.absent("Only DINO embeddings in this study: add an audio model to compare against.")
        return section
    for name in sorted(set(rows.loc[rows["embedding"].map(_family) == FAMILY_CONTROL, "embedding"])):
        published = name.removesuffix("_random")
        section.text(f"{name} has random weights, not the published DINO: put timm's checkpoint folder of "
                     f"{published} in the local Hugging Face cache, or name {published} in [embeddings] names with "
                     f"[embeddings.options] {published} = {{ checkpoint = \"PATH\" }} (the demo: sonic demo "
                     f"--dino-checkpoint PATH), to run the real one. A random-weights control measures what the "
                     "architecture and the pictures give without training; it says nothing about the published "
                     "DINO's score.")
    rows = rows.assign(family=rows["embedding"].map(_family))
    figure = figures.bars(rows, label="label", title=f"DINO against audio models: {metric}@{k} on {split}",
                          ylabel=interval_axis(rows, metric, k), colour_by="family")
    section.figure(figures.save(figure, rows, report_dir, "q2-dino",
                                "Vision-model (DINO) embeddings of spectrogram pictures against audio embeddings, "
                                "per content recommender; colours: the kind of embedding. "
                                + describe_interval(rows)))
    if _no_evidence(section, data):
        return section
    chooser = VALIDATION if VALIDATION in data.splits else None
    section.text("Each kind of embedding is represented, per recommender, by its embedding with the highest mean "
                 f"{metric}@{k} on " + ("validation, so the test does not also pick the winner."
                                         if chooser else "the test split itself (the study has no validation), "
                                         "which favours the kind with more embeddings."))
    values = UserValues(data.per_user, metric, k)
    tests = []
    for test_split in evidence_splits(data.splits):
        at = data.without_controls(_at(data.board, test_split, k, metric))
        at = at[_single(at) & ~at["embedding"].isin(NOT_AUDIO) & (at["status"] != "unable")]
        for model, group in at.groupby("model", sort=True):
            kinds = {family: list(zip(g["model"], g["embedding"]))
                     for family, g in group.groupby(group["embedding"].map(_family))}  # fmt: skip
            if FAMILY_AUDIO not in kinds:
                continue
            pick = {family: choose(data.board, entries, split=chooser or test_split, metric=metric, k=k)
                    or entries[0] for family, entries in kinds.items()}  # fmt: skip
            for family in (FAMILY_DINO, FAMILY_CONTROL):
                if family in pick:
                    tests.append(paired(values, test_split, pick[family], pick[FAMILY_AUDIO], f"{model}: {family}"))
    tests = adjust(tests)
    for row in tests.to_dict("records"):
        if row["gap"]:
            section.absent(f"Not tested: {row['gap']}.")
            continue
        kind = row["family"].split(": ", 1)[1]
        if significant(row["t_p_holm"]):
            outcome = "higher than" if row["mean_diff"] > 0 else "lower than"
        else:
            outcome = "not told apart from"
        section.answer(f"On {split_title(row['split'])}, {metric}@{k}: {row['a']} ({kind}, {row['mean_a']:.4f}) is "
                       f"{outcome} {row['b']} (audio, {row['mean_b']:.4f}); {test_words(row)}.")
    _hot_cold_outcomes(section, tests, lambda row: row["family"].replace(": ", " with the ", 1) + " against audio")
    show_tests(section, tests, report_dir, "q2-tests")
    return section


# -------------------------------------------------------------------------------------- questions 3, 4


def gain(data: ReportData, report_dir: Path, addition: str, number: int) -> Section:
    """Questions 3 and 4: ``<backend>+<addition>`` against ``<backend>`` per recommender, paired tests on test."""
    section = Section(f"q{number}", f"Question {number}: does adding {addition} help?")
    embeddings = set(data.results["embedding"])
    pairs = []
    for fused in sorted(embeddings):
        parts = fused.split("+")
        if addition in parts and len(parts) > 1:
            pairs.append(("+".join(part for part in parts if part != addition), fused))
    if not pairs:
        section.absent(f"No fusion with {addition} in this study: add e.g. fusions = [\"mfcc_104+{addition}\"] "
                       f"(with {addition} in names) to answer it.")
        return section
    if _no_evidence(section, data):
        return section
    metric, k = data.metric, data.k
    values = UserValues(data.per_user, metric, k)
    results = data.results
    rows = []
    for base, fused in pairs:
        models = sorted(set(results.loc[results["embedding"].isin([base, fused]), "model"]) - set(data.controls))
        for model in models:
            for split in evidence_splits(data.splits):
                if not (data.scored(model, fused, split) or data.scored(model, base, split)):
                    continue  # unable on this split (no score for a cold track): the cold section says so
                row = paired(values, split, (model, fused), (model, base), f"q{number}")
                rows.append({**row, "model": model, "base": base, "with": fused})
    extra = pd.DataFrame([{key: row[key] for key in ("split", "a", "b", "model", "base", "with")} for row in rows])
    tests = adjust(rows).merge(extra.drop_duplicates(["split", "a", "b"]), on=["split", "a", "b"], how="left")
    tests = tests.loc[:, ["model", "base", "with", *tests.columns[:-3]]]
    tests["mark"] = [mark(p) if not gap else "" for p, gap in zip(tests["t_p_holm"], tests["gap"])]
    for gap in tests.loc[tests["gap"] != "", "gap"]:
        section.absent(f"Not tested: {gap}.")
    tested = tests[tests["gap"] == ""].copy()
    if tested.empty:
        section.absent(f"No fusion with {addition} shares users with its base under a common seed and "
                       "recommender: nothing to test.")
        figures.write_csv(tests, report_dir / f"{figures.DATA_DIR}/q{number}-{addition}.csv")
        return section
    tested["label"] = tested["model"] + " / " + tested["base"] + " (" + tested["split"] + ")"
    figure = figures.gains(tested, title=f"Gain from {addition}: {metric}@{k}",
                           xlabel=f"{metric}@{k} with - without (mean over users)")
    saved = figures.save(figure, tests, report_dir, f"q{number}-{addition}",
                         f"Mean per-user difference from adding {addition} (each user once); marks: Holm-adjusted "
                         "paired t-test p < 0.05 *, < 0.01 **, < 0.001 ***, n.s. otherwise.")
    section.figure(saved)
    for row in tested.to_dict("records"):
        change = f"{metric}@{k} from {row['mean_b']:.4f} to {row['mean_a']:.4f} ({row['mean_diff']:+.4f})"
        if significant(row["t_p_holm"]):
            what = f"{'gains' if row['mean_diff'] > 0 else 'loses'}: {change}"
        else:
            what = f"moves {change}, not told apart from no change"
        section.answer(f"{row['model']} / {row['base']} on {split_title(row['split'])}: adding {addition} {what}; "
                       f"{test_words(row)}.")
    _hot_cold_outcomes(section, tested, lambda row: f"{row['model']} / {row['base']} with {addition} against without")
    shown = tested.loc[:, ["model", "split", "base", "with", "n_users", "mean_b", "mean_a", "mean_diff", "t_p_holm",
                           "wilcoxon_p_holm", "mark"]].rename(columns={"mean_b": "mean_base", "mean_a": "mean_with"})
    for column in ("t_p_holm", "wilcoxon_p_holm"):
        shown[column] = [p_cell(p) for p in shown[column]]
    section.table(shown, caption="Paired tests on test slices, Holm-adjusted over this table.", csv=saved.csv)
    return section


# ------------------------------------------------------------------------------------------ question 5


def by_k(data: ReportData, report_dir: Path) -> Section:
    section = Section("q5", "Question 5: how does it change with the list length k?")
    ks = sorted(set(data.results["k"]))
    if len(ks) < 2:
        section.absent(f"This study evaluates one list length (k = {ks[0]}); list several ks to draw the curves.")
        return section
    shown = _shown_series(data)
    for split in data.splits:
        rows = data.board[(data.board["split"] == split) & data.board["metric"].isin(ACCURACY)]
        rows = rows.assign(series=lambda f: labels(f))
        rows = rows[rows["series"].isin(shown)]
        figure = figures.curves(rows, x="k", series="series", metrics=list(ACCURACY),
                                title=f"Metrics against k on {split}", x_log=max(ks) / min(ks) >= 10)
        section.figure(figures.save(figure, rows, report_dir, f"q5-k-{split}",
                                    f"Every accuracy metric against k on {split_title(split)}: the content-free "
                                    "baselines and, per content recommender, the embedding with the highest mean "
                                    f"{data.metric}@{data.k} on {data.main_split} (a choice that keeps the figure "
                                    "readable, not a tested claim; question 1 tests the ranking). Every run is in "
                                    f"the leaderboards' CSV. Bands: {describe_interval(rows)}"))
    if COLD in data.splits and HOT in data.splits:
        section.text("Hot and cold tracks are drawn apart: the hot test ranks each model's train catalogue, the "
                     "cold test its cold candidates only (far fewer tracks), so on cold tracks every metric rises "
                     "faster with k and the two figures' levels are not comparable; the collaborative models are "
                     "absent from the cold figure (UNABLE).")
    return section


def _shown_series(data: ReportData) -> list[str]:
    """Series to draw: each content-free model, and each content model on its highest-mean embedding."""
    at = data.without_controls(_at(data.board, data.main_split, data.k, data.metric))
    at = at.assign(series=labels(at)).sort_values(["mean", "series"], ascending=[False, True], kind="stable")
    free = list(dict.fromkeys(at.loc[at["embedding"] == NO_EMBEDDING, "series"]))
    best = at[at["embedding"] != NO_EMBEDDING].groupby("model", sort=False).head(1)
    return [*best["series"], *free]


# ------------------------------------------------------------------------------------------------ rows


def _single(board: pd.DataFrame) -> pd.Series:
    """Rows of one embedding (not a fusion, not content-free)."""
    return (board["embedding"] != NO_EMBEDDING) & ~board["embedding"].str.contains("+", regex=False)


def _at(board: pd.DataFrame, split: str, k: int, metric: str) -> pd.DataFrame:
    return board[(board["split"] == split) & (board["k"] == k) & (board["metric"] == metric)]

