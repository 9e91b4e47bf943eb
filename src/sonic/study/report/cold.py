"""The report's cold-start sections: hot against cold tracks, the identity control, and users by history length.

* :func:`cold_start`: every entry on the hot test (tracks seen in train) and the cold test (tracks never
  played in train), the collaborative models marked UNABLE on cold tracks, and each content model against
  the chance baseline (``random``) on cold tracks, per embedding, with paired tests Holm-adjusted over the
  section's family.
* :func:`content_effect`: a trained model's score minus its shuffle control's (the same vectors permuted
  across tracks), on hot and cold tracks separately, with paired tests Holm-adjusted over the family; on
  cold tracks each control is also held against chance. A model that learns each track's identity from any
  vector unique to it keeps its hot score under shuffling; only the content carries over to cold tracks.
* :func:`by_history`: the users of each test slice in three groups by the number of train tracks they have
  (terciles), and the report's metric per group per model: descriptive, no claim.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

import sonic.study.report.figures as figures
from sonic.study.report.data import ReportData
from sonic.study.report.page import Section
from sonic.study.report.questions import COLD, HOT, mark, show_tests, test_words
from sonic.study.report.sections import interval_axis, split_title, wide
from sonic.study.report.statistics import (
    BOOTSTRAP_SEED,
    CONFIDENCE,
    RESAMPLES,
    UNABLE,
    UserValues,
    adjust,
    describe_interval,
    labels,
    paired,
    significant,
)
from sonic.study.steps import NO_EMBEDDING


def cold_start(data: ReportData, report_dir: Path) -> Section:
    section = Section("cold", "Cold start: hot and cold tracks")
    if COLD not in data.splits:
        section.absent(f"No cold test in this study: protocol '{data.study.split.protocol}' keeps none "
                       "(tamm2025 does; add 'cold_test' to [evaluation] modes).")
        return section
    metric, k = data.metric, data.k
    section.text(_candidates_sentence(data))
    board = data.board[(data.board["k"] == k) & (data.board["metric"] == metric)]
    both = board[board["split"].isin([HOT, COLD])]
    table = _hot_cold_table(both)
    section.table(table, caption=f"{metric}@{k} on the hot and the cold test; UNABLE: the model cannot score a track "
                                 f"that has no train events (no value, not a zero). {describe_interval(both)}")
    rows = both.assign(label=labels(both) + np.where(both["split"] == COLD, " (cold test)", " (hot test)"))
    figure = figures.bars(rows, label="label", title=f"Hot against cold: {metric}@{k}",
                          ylabel=interval_axis(rows, metric, k))
    section.figure(figures.save(figure, rows, report_dir, "hot-cold",
                                "Hot test (tracks seen in train) against cold test (tracks never seen). "
                                + describe_interval(rows)))
    unable = sorted(set(data.unable.loc[data.unable["split"] == COLD, "model"]))
    if unable:
        they = "it is" if len(unable) == 1 else "they are"
        section.text(f"{_and(unable)} cannot score a track nobody played in train (a collaborative model has no row "
                     f"for it), so on the cold test {they} UNABLE: marked, never scored zero, and left out of every "
                     "test.")
    chance = _chance(data)
    if chance is None:
        section.absent("No random baseline in this study: the content models' cold scores are not tested against "
                       "chance (add [[recommenders]] name = \"random\").")
        return section
    values = UserValues(data.per_user, metric, k)
    cold = data.without_controls(board[(board["split"] == COLD) & (board["status"] != UNABLE)])
    entries = [(m, e) for m, e in zip(cold["model"], cold["embedding"]) if e != NO_EMBEDDING]
    tests = adjust([paired(values, COLD, entry, chance, "cold start: against chance") for entry in entries])
    for row in tests.to_dict("records"):
        if row["gap"]:
            section.absent(f"Not tested: {row['gap']}.")
            continue
        outcome = ("higher than" if row["mean_diff"] > 0 else "lower than") if significant(row["t_p_holm"]) else \
            "not told apart from"
        section.answer(f"On the cold test ({metric}@{k}), {row['a']} ({row['mean_a']:.4f}) is {outcome} chance, "
                       f"{row['b']} ({row['mean_b']:.4f}); {test_words(row)}.")
    show_tests(section, tests, report_dir, "cold-tests")
    return section


def content_effect(data: ReportData, report_dir: Path) -> Section:
    section = Section("identity", "The identity control: content effect on hot and cold tracks")
    controls = data.controls
    if not controls:
        section.absent("No shuffle control in this study: add a [[recommenders]] table with shuffle = true (and its "
                       "own label) beside a content model to measure how much of its score the content gives.")
        return section
    evidence = [split for split in (HOT, COLD) if split in data.splits]
    if not evidence:
        section.absent("No test split in this study: the content effect is measured on test slices only.")
        return section
    metric, k = data.metric, data.k
    section.text("A shuffle control is the same model on the same vectors permuted across tracks: every track "
                 "keeps a real vector, but not its own. The content effect is the model's score minus its "
                 "control's. On hot tracks a trained model can learn each track's identity from any vector unique "
                 "to it, so a control may keep much of the score; on cold tracks only content carries over, so a "
                 "control should fall to chance.")
    values = UserValues(data.per_user, metric, k)
    board = data.board[(data.board["k"] == k) & (data.board["metric"] == metric) & (data.board["status"] != UNABLE)]
    chance = _chance(data)
    section.text("A control's score rests on one permutation per seed, and its test counts users, not "
                 "permutations: with few seeds a control can sit above or below chance by the luck of its "
                 "permutation (a model that ranks every user's candidates alike gains or loses with it).")
    rows = []
    for control, trained in controls.items():
        for embedding in sorted(set(board.loc[board["model"] == control, "embedding"])):
            for split in evidence:
                if not (data.scored(trained, embedding, split) and data.scored(control, embedding, split)):
                    continue  # unable on this split: the cold section says so
                rows.append(paired(values, split, (trained, embedding), (control, embedding), "content effect"))
                if split == COLD and chance is not None:
                    rows.append(paired(values, split, (control, embedding), chance, "control against chance"))
    tests = adjust(rows)
    for row in tests.to_dict("records"):
        if row["gap"]:
            section.absent(f"Not tested: {row['gap']}.")
            continue
        where = f"on the {'cold' if row['split'] == COLD else 'hot'} test ({metric}@{k})"
        if row["family"] == "control against chance":
            outcome = ("above" if row["mean_diff"] > 0 else "below") if significant(row["t_p_holm"]) else \
                "not told apart from"
            section.answer(f"{row['a']} {where} scores {row['mean_a']:.4f}, {outcome} chance ({row['b']}, "
                           f"{row['mean_b']:.4f}); {test_words(row)}.")
            continue
        effect = f"content effect {row['mean_diff']:+.4f} ({row['mean_a']:.4f} against {row['mean_b']:.4f} shuffled)"
        if significant(row["t_p_holm"]):
            verdict = "the content helps" if row["mean_diff"] > 0 else "the shuffled vectors score higher"
        else:
            verdict = "not told apart from its shuffle control"
        section.answer(f"{row['a']} {where}: {effect}; {test_words(row)}: {verdict}.")
    tested = tests[(tests["gap"] == "") & (tests["family"] == "content effect")].copy()
    if len(tested):
        tested["label"] = tested["a"] + " (" + np.where(tested["split"] == COLD, "cold", "hot") + ")"
        tested["mark"] = [mark(p) for p in tested["t_p_holm"]]
        figure = figures.gains(tested, title=f"Content effect: {metric}@{k}, model minus its shuffle control",
                               xlabel=f"{metric}@{k} model - shuffled (mean over users)")
        section.figure(figures.save(figure, tested, report_dir, "content-effect",
                                    "Mean per-user difference between each trained model and its shuffle control, on "
                                    "hot and cold tracks (each user once); marks: Holm-adjusted paired t-test p < "
                                    "0.05 *, < 0.01 **, < 0.001 ***, n.s. otherwise."))
    show_tests(section, tests, report_dir, "content-effect-tests")
    return section


def by_history(data: ReportData, report_dir: Path) -> Section:
    section = Section("history", "For which users: by the length of their history")
    evidence = [split for split in (HOT, COLD) if split in data.splits]
    lengths = _history_lengths(data)
    if not evidence or lengths is None:
        section.absent("No test split, or no readable train events, in this study: users cannot be grouped by "
                       "their history.")
        return section
    metric, k = data.metric, data.k
    section.text(f"The users of each test slice in three groups of about equal size by the number of distinct "
                 f"tracks they played in train (terciles), and {metric}@{k} per group per model: its content-free "
                 "baselines and each content model on the embedding with the highest mean on the hot test. A user "
                 "evaluated under several seeds counts once. Descriptive: no claim is tested here.")
    shown = _shown(data)
    rows = []
    for split in evidence:
        values = data.per_user[(data.per_user["split"] == split) & (data.per_user["metric"] == metric)
                               & (data.per_user["k"] == k)].dropna(subset=["value"])  # fmt: skip
        values = values.assign(label=labels(values))
        values = values[values["label"].isin(shown)]
        if values.empty:
            continue
        users = values.groupby(["label", "user_id"], as_index=False)["value"].mean()
        user_lengths = lengths.reindex(pd.unique(users["user_id"])).dropna()
        groups = _terciles(user_lengths)
        users = users.assign(group=users["user_id"].map(groups)).dropna(subset=["group"])
        for group, members in users.groupby("group", sort=True):
            matrix = members.pivot_table(index="user_id", columns="label", values="value", aggfunc="first")
            low, high = _bootstrap(matrix.to_numpy(np.float64))
            for number, label in enumerate(matrix.columns):
                rows.append({"split": split, "group": group, "label": label, "mean": float(matrix[label].mean()),
                             "ci_low": low[number], "ci_high": high[number],
                             "n_users": int(matrix[label].notna().sum())})
    if not rows:
        section.absent("No per-user values of the shown models on the test slices: nothing to group.")
        return section
    frame = pd.DataFrame(rows)
    for split in evidence:
        part = frame[frame["split"] == split]
        if part.empty:
            continue
        table = part.assign(cell=[f"{m:.4f} [{lo:.4f}, {hi:.4f}]" for m, lo, hi in
                                  zip(part["mean"], part["ci_low"], part["ci_high"])])
        table = table.pivot(index="label", columns="group", values="cell").reset_index().rename(columns={"label": ""})
        sizes = part.groupby("group")["n_users"].max()
        section.heading(f"{split_title(split)}: {', '.join(f'{g} {n} users' for g, n in sizes.items())}")
        section.table(table, caption=f"{metric}@{k} by train history length; {int(CONFIDENCE * 100)}% percentile "
                                     f"bootstrap intervals over the group's users ({RESAMPLES} resamples).")
    figure = figures.grouped(frame, title=f"{metric}@{k} by train history length",
                             ylabel=f"{metric}@{k} (mean over users)")
    section.figure(figures.save(figure, frame, report_dir, "by-history",
                                f"{metric}@{k} per group of users by train history length (terciles), per test "
                                "slice and model; whiskers: percentile bootstrap intervals over the group's users."))
    return section


# ------------------------------------------------------------------------------------------------ parts


def _candidates_sentence(data: ReportData) -> str:
    """What the cold test ranked, from the runs' records (``slices``: candidates and their count)."""
    rules, counts = set(), set()
    for text in data.runs.get("slices", pd.Series(dtype=object)).dropna():
        try:
            info = json.loads(text).get(COLD, {})
        except (TypeError, ValueError, AttributeError):
            continue
        if info.get("status") == "scored":
            rules.add(info.get("candidates"))
            if info.get("n_candidates") is not None:
                counts.add(int(info["n_candidates"]))
    rule = data.study.evaluation.cold_candidates if not rules else "/".join(sorted(str(r) for r in rules))
    number = ""
    if counts:
        low, high = min(counts), max(counts)
        number = f" ({low} tracks)" if low == high else f" ({low}-{high} tracks, by split)"
    what = ("the cold tracks alone (the tracks of the cold test, none played in train)" if rule == "cold"
            else "every track of the split, played or not" if rule == "all" else rule)
    return (f"The hot test ranks each model's train catalogue; the cold test ranks {what}{number} "
            f"([evaluation] cold_candidates = \"{rule}\"). Content models score a cold track from its vector, "
            "through the same learned map as a played one.")


def _hot_cold_table(both: pd.DataFrame) -> pd.DataFrame:
    """model, embedding, hot test and cold test cells (``mean [low, high]`` or UNABLE), highest cold mean first."""
    wide_rows = []
    for split in (HOT, COLD):
        part = wide(both[both["split"] == split], [both["metric"].iloc[0]] if len(both) else [])
        if len(part.columns) == 3:
            wide_rows.append(part.set_axis(["model", "embedding", "hot test" if split == HOT else "cold test"],
                                           axis=1).set_index(["model", "embedding"]))
    if not wide_rows:
        return pd.DataFrame(columns=["model", "embedding", "hot test", "cold test"])
    table = pd.concat(wide_rows, axis=1).fillna("").reset_index()
    cold = both[both["split"] == COLD].set_index(["model", "embedding"])["mean"]
    order = [-(cold.get((m, e), np.nan) if np.isfinite(cold.get((m, e), np.nan)) else -np.inf)
             for m, e in zip(table["model"], table["embedding"])]
    return table.assign(_order=order).sort_values(["_order", "model", "embedding"]).drop(columns="_order")


def _chance(data: ReportData) -> tuple[str, str] | None:
    """The (label, embedding) of the study's random baseline (unshuffled), or None."""
    runs = data.runs
    if runs.empty or "recommender" not in runs.columns:
        return None
    shuffled = runs["shuffle"].fillna(False).astype(bool) if "shuffle" in runs.columns else False
    chosen = runs[(runs["recommender"] == "random") & ~shuffled]
    return None if chosen.empty else (str(chosen["label"].iloc[0]), NO_EMBEDDING)


def _shown(data: ReportData) -> list[str]:
    """Labels drawn by :func:`by_history`: content-free models, and each content model on its best hot embedding."""
    at = data.board[(data.board["split"] == (HOT if HOT in data.splits else data.main_split))
                    & (data.board["metric"] == data.metric) & (data.board["k"] == data.k)]  # fmt: skip
    at = data.without_controls(at)
    at = at.assign(label=labels(at)).sort_values(["mean", "label"], ascending=[False, True], kind="stable")
    free = list(dict.fromkeys(at.loc[at["embedding"] == NO_EMBEDDING, "label"]))
    best = at[at["embedding"] != NO_EMBEDDING].groupby("model", sort=False).head(1)
    return [*best["label"], *free]


def _history_lengths(data: ReportData) -> pd.Series | None:
    """Distinct train tracks per user (index user_id), from the runs' split folders (the first readable one of
    each split seed; a user's length is the mean over the seeds' splits)."""
    from sonic.cream.data import read_split_folder
    from sonic.errors import SonicError

    counts = []
    for split_dir in dict.fromkeys(data.runs.get("split_dir", pd.Series(dtype=object)).dropna()):
        try:
            train = read_split_folder(split_dir).read("train")
        except (SonicError, OSError):
            continue
        pairs = train.loc[:, ["user_id", "track_id"]].astype(str).drop_duplicates()
        counts.append(pairs.groupby("user_id").size())
    if not counts:
        return None
    return pd.concat(counts, axis=1).mean(axis=1)


def _terciles(lengths: pd.Series) -> pd.Series:
    """Each user's group by history length: three groups of near-equal size by rank (length, then user id), each
    named by its range of lengths: ``1 short (2-5 tracks)``, ``2 medium (5-9 tracks)``, ``3 long (9-40 tracks)``
    (users of one length may fall on both sides of a boundary)."""
    if lengths.empty:
        return pd.Series(dtype=object)
    order = sorted(lengths.index, key=lambda user: (lengths[user], str(user)))
    group = pd.Series(np.arange(len(order)) * 3 // len(order), index=order)
    names = {}
    for number, word in enumerate(("short", "medium", "long")):
        members = lengths[group.index[group == number]]
        if len(members):
            low, high = int(round(members.min())), int(round(members.max()))
            names[number] = f"{number + 1} {word} ({low}-{high} tracks)" if high > low else \
                f"{number + 1} {word} ({low} tracks)"
    return group.map(names).reindex(lengths.index)


def _bootstrap(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sonic.rouge.significance import bootstrap_intervals

    return bootstrap_intervals(matrix, confidence=CONFIDENCE, resamples=RESAMPLES, seed=BOOTSTRAP_SEED)


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"

