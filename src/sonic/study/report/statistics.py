"""The report's numbers and tests: pure functions over the results store's frames (no HTML, no files).

**The user is the unit.** A study's seeds may redraw its val/test users from one pool, so a user can
be evaluated under several seeds against the same ground truth. Every number here counts that user
once: their values are averaged over the seeds that evaluated them
(:func:`sonic.rouge.significance.user_means`), and paired tests match two configurations on
(seed, user) before averaging (:func:`sonic.rouge.significance.paired_tests_over_seeds`).

**Intervals.** With at least :data:`MIN_SEEDS_FOR_T` seeds, a configuration's interval is the
Student-t interval over its per-seed means (``ci_method`` :data:`T_OVER_SEEDS`, ``ci_df`` = seeds - 1)
around the mean of those means. With fewer seeds a t-interval has too few degrees of freedom to
mean much (with 2 seeds its half-width is 12.7 standard errors), so the interval is a percentile
bootstrap over users (:data:`BOOTSTRAP_OVER_USERS`) around the mean of the per-user means: seeded,
:data:`RESAMPLES` resamples, and inside [0, 1] for a metric bounded there, by the method. A metric
with no per-user values (catalogue coverage) has no interval over users (:data:`NO_INTERVAL`).

**Tests and claims.** Claims compare means, so they rest on the paired t-test of per-user means;
the Wilcoxon signed-rank test is computed beside it. p-values are Holm-adjusted over the family of
one question (every test that question makes), and a claim needs an adjusted p below
:data:`ALPHA`. Validation is what early stopping and tuning look at, so no test runs on it: tests
run on :data:`EVIDENCE_SPLITS` only. "Best" means the top entry beats every other entry of its
ranking (the runner-up included); otherwise the entries not told apart from the top are named.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sonic.errors import DataError
from sonic.rouge.metrics import mean_interval
from sonic.rouge.significance import bootstrap_intervals, holm, paired_tests_over_seeds
from sonic.study.steps import NO_EMBEDDING

#: Seeds needed before an interval is taken over seeds rather than over users.
MIN_SEEDS_FOR_T = 5
CONFIDENCE = 0.95
#: Family-wise error rate of each question's claims (Holm-adjusted p below it).
ALPHA = 0.05
#: Bootstrap resamples, and the seed of their draws (the same store gives the same intervals).
RESAMPLES = 2000
BOOTSTRAP_SEED = 0
#: The slices tests and claims run on; validation is shown, labelled, never used as evidence.
EVIDENCE_SPLITS = ("test", "cold_test")
VALIDATION = "val"

T_OVER_SEEDS = "t over seeds"
BOOTSTRAP_OVER_USERS = "bootstrap over users"
NO_INTERVAL = "none"

CONFIG = ["model", "embedding", "split"]
CELL = ["model", "embedding", "split", "metric", "k"]
BOARD_COLUMNS = (*CELL, "mean", "ci_low", "ci_high", "ci_method", "ci_df", "n_seeds", "n_users", "status")
#: A cell's status: scored, or unable (the model cannot rank the split's tracks: no value, never a zero).
SCORED, UNABLE = "scored", "unable"
TEST_COLUMNS = ("family", "split", "a", "b", "n_users", "mean_a", "mean_b", "mean_diff", "t_p", "t_p_holm",
                "wilcoxon_p", "wilcoxon_p_holm", "gap")  # fmt: skip


def label_of(model: str, embedding: str) -> str:
    """``model / embedding`` (just the model when it uses no embedding)."""
    return model if embedding == NO_EMBEDDING else f"{model} / {embedding}"


def labels(frame: pd.DataFrame) -> pd.Series:
    """:func:`label_of` for each row of a frame with ``model`` and ``embedding`` columns."""
    return pd.Series([label_of(m, e) for m, e in zip(frame["model"], frame["embedding"])], index=frame.index,
                     dtype=object)  # fmt: skip


# ------------------------------------------------------------------------------------------- intervals


def leaderboard(
    results: pd.DataFrame,
    per_user: pd.DataFrame,
    *,
    min_seeds: int = MIN_SEEDS_FOR_T,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> pd.DataFrame:
    """One row per (model, embedding, split, metric, k) with its mean and labelled interval (:data:`BOARD_COLUMNS`).

    ``results``: one row per run, metric and k (``sonic.study.store.query``: model, embedding, split,
    seed, metric, k, mean, n_users); ``per_user``: ``sonic.study.store.per_user`` rows (model,
    embedding, split, seed, user_id, metric, k, value). See the module docstring for the method of
    each interval; ``n_users`` counts distinct users, ``n_seeds`` the seeds with a result.
    """
    if results.empty:
        return pd.DataFrame(columns=list(BOARD_COLUMNS))
    status = results["status"].fillna(SCORED) if "status" in results.columns else pd.Series(SCORED, results.index)
    unable = set(results.assign(unable=status == UNABLE).groupby(CELL, sort=False)["unable"].all().loc[lambda s: s]
                 .index)  # fmt: skip
    seeds = results.groupby(CELL, sort=False).agg(n_seeds=("seed", "nunique"), seed_mean=("mean", "mean"))
    seed_means = {key: group["mean"].to_numpy(np.float64) for key, group in results.groupby(CELL, sort=False)}
    users = _per_user_means(per_user)
    few = seeds.index[seeds["n_seeds"] < min_seeds]  # cells whose interval is over users
    wanted = users.set_index(CELL).index.isin(few) if len(users) else np.zeros(0, dtype=bool)
    boot = _bootstrap_by_split(users[wanted], confidence=confidence, resamples=resamples, seed=seed)
    rows = []
    user_stats = (users.groupby(CELL, sort=False)["value"].agg(user_mean="mean", n_users="count")
                  if len(users) else pd.DataFrame(columns=["user_mean", "n_users"]))  # fmt: skip
    for key, row in seeds.iterrows():
        n_seeds = int(row["n_seeds"])
        n_users = int(user_stats.loc[key, "n_users"]) if key in user_stats.index else 0
        if key in unable:
            rows.append((*key, np.nan, np.nan, np.nan, NO_INTERVAL, np.nan, n_seeds, 0, UNABLE))
        elif n_seeds >= min_seeds:
            mean, low, high = mean_interval(seed_means[key], confidence)
            rows.append((*key, mean, low, high, T_OVER_SEEDS, n_seeds - 1, n_seeds, n_users, SCORED))
        elif n_users:
            low, high = boot[key]
            rows.append((*key, float(user_stats.loc[key, "user_mean"]), low, high, BOOTSTRAP_OVER_USERS, np.nan,
                         n_seeds, n_users, SCORED))  # fmt: skip
        else:
            rows.append((*key, float(row["seed_mean"]), np.nan, np.nan, NO_INTERVAL, np.nan, n_seeds, 0, SCORED))
    board = pd.DataFrame(rows, columns=list(BOARD_COLUMNS))
    board["k"] = board["k"].astype(int)
    return board


def _per_user_means(per_user: pd.DataFrame) -> pd.DataFrame:
    """Each user's value averaged over seeds, per cell: columns model, embedding, split, metric, k, user_id, value."""
    if per_user.empty:
        return pd.DataFrame(columns=[*CELL, "user_id", "value"])
    frame = per_user.dropna(subset=["value"]).assign(user_id=lambda f: f["user_id"].astype(str))
    return frame.groupby([*CELL, "user_id"], sort=False, as_index=False)["value"].mean()


def _bootstrap_by_split(users: pd.DataFrame, **options) -> dict[tuple, tuple[float, float]]:
    """Bootstrap intervals of every cell, one draw of users per split (cells of a split resample alike)."""
    intervals = {}
    for split, rows in users.groupby("split", sort=False):
        wide = rows.pivot_table(index="user_id", columns=["model", "embedding", "metric", "k"], values="value",
                                aggfunc="first")  # fmt: skip
        low, high = bootstrap_intervals(wide.to_numpy(np.float64), **options)
        for (model, embedding, metric, k), lo, hi in zip(wide.columns, low, high):
            intervals[(model, embedding, split, metric, k)] = (float(lo), float(hi))
    return intervals


def describe_interval(board: pd.DataFrame, *, resamples: int = RESAMPLES) -> str:
    """One sentence naming the interval method(s) of ``board``'s rows, with degrees of freedom or resamples."""
    if "status" in board.columns:
        board = board[board["status"] != UNABLE]
    parts = []
    methods = board["ci_method"] if len(board) else pd.Series([], dtype=object)
    if (methods == BOOTSTRAP_OVER_USERS).any():
        users = board.loc[methods == BOOTSTRAP_OVER_USERS, "n_users"]
        parts.append(f"percentile bootstrap over users ({resamples} resamples; {_span(users)} users, each counted "
                     "once with their values averaged over the seeds that evaluated them)")
    if (methods == T_OVER_SEEDS).any():
        df = board.loc[methods == T_OVER_SEEDS, "ci_df"].astype(int)
        parts.append(f"Student-t over the seeds' means (df = {_span(df)})")
    if (methods == NO_INTERVAL).any():
        parts.append("none for a catalogue-wide value with fewer than "
                     f"{MIN_SEEDS_FOR_T} seeds")
    return f"{int(CONFIDENCE * 100)}% intervals: " + "; ".join(parts) + "." if parts else ""


def describe_tests(alpha: float = ALPHA) -> str:
    """The sentence that says how the report tests and what a claim needs."""
    return ("Tests: the paired t-test of per-user means, each user counted once (a user evaluated under several "
            "seeds has their values averaged over those seeds, matched on the same seed and user in both entries), "
            "with the Wilcoxon signed-rank test beside it. p-values are Holm-adjusted over every test of the "
            f"question they belong to. A claim (best, beats, gains) needs a Holm-adjusted t-test p below {alpha} "
            "and rests on test slices only: validation is what early stopping and tuning look at, so it is shown "
            "but never tested.")


def _span(values: pd.Series) -> str:
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low}-{high}"


# ---------------------------------------------------------------------------------------------- tests


class UserValues:
    """Per-user values at one metric and k, by configuration (model, embedding, split).

    ``per_user``: ``sonic.study.store.per_user`` rows. :meth:`get` gives a configuration's rows
    (seed, user_id, value), or None when the store has none.
    """

    def __init__(self, per_user: pd.DataFrame, metric: str, k: int) -> None:
        rows = per_user[(per_user["metric"] == metric) & (per_user["k"] == k)]
        self.metric, self.k = metric, k
        self._by_config = {key: group.loc[:, ["seed", "user_id", "value"]]
                           for key, group in rows.groupby(CONFIG, sort=False)}  # fmt: skip

    def get(self, model: str, embedding: str, split: str) -> pd.DataFrame | None:
        return self._by_config.get((model, embedding, split))

    def user_mean(self, model: str, embedding: str, split: str) -> float:
        """The mean of the configuration's per-user means (each user once); NaN without values."""
        rows = self.get(model, embedding, split)
        if rows is None:
            return float("nan")
        return float(rows.dropna(subset=["value"]).groupby(rows["user_id"].astype(str))["value"].mean().mean())


def paired(values: UserValues, split: str, a: tuple[str, str], b: tuple[str, str], family: str) -> dict:
    """One row of :data:`TEST_COLUMNS` (before Holm): entry ``a`` (model, embedding) against ``b`` on ``split``.

    A missing configuration or no shared (seed, user) is not an error: the row's ``gap`` says what is
    missing and its p-values are NaN (left out of Holm's family).
    """
    row = {"family": family, "split": split, "a": label_of(*a), "b": label_of(*b), "n_users": 0,
           "mean_a": np.nan, "mean_b": np.nan, "mean_diff": np.nan, "t_p": np.nan, "wilcoxon_p": np.nan,
           "gap": ""}  # fmt: skip
    rows_a, rows_b = values.get(*a, split), values.get(*b, split)
    missing = [label_of(*entry) for entry, rows in ((a, rows_a), (b, rows_b)) if rows is None]
    if missing:
        row["gap"] = f"no per-user {values.metric}@{values.k} of {' or '.join(missing)} on {split} in the store"
        return row
    try:
        test = paired_tests_over_seeds(rows_a, rows_b)
    except DataError:
        row["gap"] = f"{row['a']} and {row['b']} share no user under a common seed on {split}"
        return row
    row.update(n_users=test.n_users, mean_a=test.mean_a, mean_b=test.mean_b, mean_diff=test.mean_diff,
               t_p=test.t_p, wilcoxon_p=test.wilcoxon_p)  # fmt: skip
    return row


def adjust(rows: Sequence[dict]) -> pd.DataFrame:
    """The tests of one family as a frame (:data:`TEST_COLUMNS`), with Holm-adjusted p-values over all of them.

    A test asked for twice (the same split, ``a`` and ``b``: two rankings sharing a pair) counts once.
    """
    frame = pd.DataFrame(list(rows), columns=[c for c in TEST_COLUMNS if not c.endswith("_holm")])
    frame = frame.drop_duplicates(["split", "a", "b"]).reset_index(drop=True)
    frame["t_p_holm"] = holm(frame["t_p"].to_numpy(np.float64)) if len(frame) else []
    frame["wilcoxon_p_holm"] = holm(frame["wilcoxon_p"].to_numpy(np.float64)) if len(frame) else []
    frame["n_users"] = frame["n_users"].astype(int)
    return frame.loc[:, list(TEST_COLUMNS)]


def significant(p_holm: float, alpha: float = ALPHA) -> bool:
    return bool(np.isfinite(p_holm) and p_holm < alpha)


@dataclass(frozen=True)
class Ranking:
    """Entries of one scope on one split, highest mean first, and the top's tests against the others.

    ``order``: label, model, embedding, mean (mean of per-user means), n_users; ``family``: the
    name its tests carry in the question's family.
    """

    family: str
    split: str
    order: pd.DataFrame

    @property
    def top(self) -> str:
        return str(self.order["label"].iloc[0])

    def tests(self, values: UserValues) -> list[dict]:
        """The top against every other entry (rows for :func:`adjust`)."""
        first = self.order.iloc[0]
        return [paired(values, self.split, (first["model"], first["embedding"]), (row.model, row.embedding),
                       self.family) for row in self.order.iloc[1:].itertuples()]  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """What a ranking's adjusted tests allow one to say.

    ``best``: the top, when it beats every other entry (Holm-adjusted t-test p < alpha, higher
    mean); else None. ``tied``: the entries not told apart from the top (the top first).
    ``runner_up``: the runner-up's test row (None with one entry).
    """

    ranking: Ranking
    best: str | None
    tied: tuple[str, ...]
    runner_up: dict | None
    gaps: tuple[str, ...]


def rank(values: UserValues, split: str, entries: Iterable[tuple[str, str]], family: str) -> Ranking | None:
    """The entries (model, embedding) that have values on ``split``, highest mean first (ties: by label)."""
    rows = []
    for model, embedding in dict.fromkeys(entries):
        mean = values.user_mean(model, embedding, split)
        if np.isfinite(mean):
            rows.append({"label": label_of(model, embedding), "model": model, "embedding": embedding, "mean": mean})
    if not rows:
        return None
    order = pd.DataFrame(rows).sort_values(["mean", "label"], ascending=[False, True], kind="stable")
    return Ranking(family, split, order.reset_index(drop=True))


def verdict(ranking: Ranking, tests: pd.DataFrame, alpha: float = ALPHA) -> Verdict:
    """Read a ranking's rows of the adjusted family ``tests`` (see :class:`Verdict`)."""
    mine = tests[(tests["split"] == ranking.split) & (tests["a"] == ranking.top)].set_index("b")
    others = list(ranking.order["label"].iloc[1:])
    gaps = tuple(mine.loc[b, "gap"] for b in others if b in mine.index and mine.loc[b, "gap"])
    beaten = [b for b in others if b in mine.index and significant(mine.loc[b, "t_p_holm"], alpha)
              and mine.loc[b, "mean_diff"] > 0]  # fmt: skip
    tied = (ranking.top, *[b for b in others if b not in beaten])
    runner_up = None
    if others:
        runner_up = {"b": others[0], **mine.loc[others[0]].to_dict()} if others[0] in mine.index else None
    best = ranking.top if others and len(beaten) == len(others) else None
    return Verdict(ranking, best, tied, runner_up, gaps)


def choose(board: pd.DataFrame, entries: Iterable[tuple[str, str]], *, split: str, metric: str,
           k: int) -> tuple[str, str] | None:
    """The entry with the highest mean of ``metric@k`` on ``split`` in ``board`` (None when none has a row)."""
    wanted = pd.DataFrame(list(dict.fromkeys(entries)), columns=["model", "embedding"])
    if wanted.empty:
        return None
    rows = board[(board["split"] == split) & (board["metric"] == metric) & (board["k"] == k)].merge(wanted)
    rows = rows[np.isfinite(rows["mean"].astype(np.float64))]
    if rows.empty:
        return None
    best = rows.sort_values(["mean", "model", "embedding"], ascending=[False, True, True], kind="stable").iloc[0]
    return str(best["model"]), str(best["embedding"])


def evidence_splits(splits: Iterable[str]) -> list[str]:
    """The splits claims may rest on (test, cold_test), in the study's order."""
    return [split for split in splits if split in EVIDENCE_SPLITS]
