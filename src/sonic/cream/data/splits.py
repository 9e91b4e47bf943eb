"""Time splits of listening events: the published protocols, reproducible with a seed.

Every protocol follows the same steps (Tamm & Aljanaki's journal code, as behaviour):

1. keep the events in the window ``start_date <= timestamp < end_date`` (an open end keeps all later ones);
2. **train** = the window's events before ``test_date``, compressed to one row per (user, track):
   first listen and play count. Train counts therefore never include plays at or after the test date;
3. **evaluation pairs** = the window compressed the same way, keeping the pairs whose *first* listen is on
   or after ``test_date``: tracks new to that user. Re-listens of train tracks never enter evaluation, and a
   pair counts once however often it was played (the seed project kept raw events, so its test held
   re-listens no recommender that filters seen tracks can hit, and repeats inflated recall's denominator);
4. evaluation keeps only users present in train. **Hot** pairs have a track present in train; **cold** pairs
   a track never seen in train. Protocols without a cold test drop cold pairs;
5. candidate users (those with hot pairs; with a cold test, only those with no cold pair at all) are sorted
   and shuffled with ``numpy.random.default_rng(seed)``; the first ``floor(val_fraction * n)`` go to **val**;
   **test** = the hot pairs of every other evaluation user; **cold_test** = all cold pairs.

============  ========================  ==========  ==================================  ===  =========
protocol      default window            test date   window for another test date T      val  cold test
============  ========================  ==========  ==================================  ===  =========
``sonic``     2018-02-20 .. 2019-02-20  2019-01-20  T - 11 months .. T + 1 month        0.5  no
``tamm2024``  2019-02-20 .. (open)      2020-02-20  T - 1 year .. (open)                0.5  no
``tamm2025``  2018-02-01 .. 2019-03-01  2019-02-01  T - 1 year .. T + 1 month           0.3  yes
============  ========================  ==========  ==================================  ===  =========

The val/test user draw is SONIC's own (sorted ids, numpy ``Generator``), so the published papers' val
users are not reproduced one for one; the sizes follow the same rule.

Input may be raw (one row per play) or already compressed (``count`` > 1, e.g. the Music4All-Onion sample).
Compressing again sums counts and keeps the earliest first listen. A compressed row is placed by its
first-listen timestamp alone: one whose first listen is before the test date carries its *whole* count
into train, even if some of those plays happened later; with raw events that cannot happen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from sonic.cream.data.tables import as_ids
from sonic.errors import SonicError, UnknownNameError

PART_NAMES = ("train", "val", "test", "cold_test")


@dataclass(frozen=True)
class Protocol:
    """A published split protocol: default test date, window around it, and how val is drawn."""

    name: str
    test_date: pd.Timestamp | None  # None: not a time split (see ``splitter``)
    history: pd.DateOffset | None  # default start_date = test_date - history
    horizon: pd.DateOffset | None  # default end_date = test_date + horizon; None: open end
    val_fraction: float
    keep_cold: bool
    source: str
    splitter: str | None = None  # not a time split: its splitter in :data:`sonic.cream.data.splitting.SPLITTERS`


PROTOCOLS: Mapping[str, Protocol] = MappingProxyType(
    {
        "sonic": Protocol(
            "sonic", pd.Timestamp("2019-01-20"), pd.DateOffset(months=11), pd.DateOffset(months=1), 0.5, False,
            "the original SONIC project (compressed here, unlike the seed)",
        ),
        "tamm2024": Protocol(
            "tamm2024", pd.Timestamp("2020-02-20"), pd.DateOffset(years=1), None, 0.5, False,
            "Tamm & Aljanaki, RecSys '24",
        ),
        "tamm2025": Protocol(
            "tamm2025", pd.Timestamp("2019-02-01"), pd.DateOffset(years=1), pd.DateOffset(months=1), 0.3, True,
            "Tamm & Aljanaki, journal version",
        ),
        "leave-last-out": Protocol(
            "leave-last-out", None, None, None, 0.5, False, "sequential standard (BERT4Rec, RecBole)",
            splitter="leave-last-out",
        ),
    }
)  # fmt: skip


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; an unknown name lists the known ones."""
    if name not in PROTOCOLS:
        raise UnknownNameError(f"unknown split protocol {name!r}; known: {', '.join(sorted(PROTOCOLS))}")
    return PROTOCOLS[name]


@dataclass(frozen=True)
class SplitConfig:
    """Everything that decides a split. Dates are naive UTC :class:`pandas.Timestamp` values.

    ``start_date`` is inclusive (``None``: from the first event), ``end_date`` exclusive (``None``: to
    the last event); train is before ``test_date``, evaluation on or after it. ``val_fraction`` of the
    candidate users go to val. ``keep_cold`` keeps a cold test (evaluation pairs of tracks unseen in
    train) and draws val only from users without cold pairs. Dates may be given as strings.
    ``protocol`` is a label; :meth:`for_protocol` fills a published protocol's values.
    """

    protocol: str
    start_date: pd.Timestamp | None
    test_date: pd.Timestamp | None  # None only for protocols that are not time splits
    end_date: pd.Timestamp | None
    seed: int = 42
    val_fraction: float = 0.5
    keep_cold: bool = False

    def __post_init__(self) -> None:
        for name in ("start_date", "test_date", "end_date"):
            value = getattr(self, name)
            if value is not None or (name == "test_date" and _is_time_split(self.protocol)):
                object.__setattr__(self, name, _as_date(value, name))
        if self.test_date is None:
            if self.start_date is not None and self.end_date is not None and not self.start_date < self.end_date:
                start, end = _day(self.start_date), _day(self.end_date)
                raise SonicError(f"start date {start} must be before the end date {end}")
        elif self.start_date is not None and not self.start_date < self.test_date:
            raise SonicError(f"start date {_day(self.start_date)} must be before the test date {_day(self.test_date)}")
        if self.test_date is not None and self.end_date is not None and not self.test_date < self.end_date:
            raise SonicError(f"end date {_day(self.end_date)} must be after the test date {_day(self.test_date)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise SonicError(f"seed {self.seed!r} is not a non-negative integer")
        fraction = self.val_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
            raise SonicError(f"val_fraction {self.val_fraction!r} must lie strictly between 0 and 1")
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "val_fraction", float(self.val_fraction))
        object.__setattr__(self, "keep_cold", bool(self.keep_cold))

    @classmethod
    def for_protocol(
        cls,
        name: str,
        *,
        start_date: Any = None,
        test_date: Any = None,
        end_date: Any = None,
        seed: int = 42,
    ) -> SplitConfig:
        """The published settings of protocol ``name``; a date given here overrides its default.

        A date left out is derived from the test date by the protocol's offsets (see the module
        table), so ``test_date`` alone shifts the whole window.
        """
        protocol = get_protocol(name)
        if protocol.test_date is None:  # not a time split: only the window, as given
            if test_date is not None:
                raise SonicError(f"protocol {name} has no test date; give only --start-date and --end-date")
            return cls(name, start_date, None, end_date, seed, protocol.val_fraction, protocol.keep_cold)
        test = protocol.test_date if test_date is None else _as_date(test_date, "test_date")
        if start_date is None:
            start_date = test - protocol.history
        if end_date is None and protocol.horizon is not None:
            end_date = test + protocol.horizon
        return cls(name, start_date, test, end_date, seed, protocol.val_fraction, protocol.keep_cold)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (dates as ISO strings)."""
        fields = dataclasses.asdict(self)
        for name in ("start_date", "test_date", "end_date"):
            fields[name] = None if fields[name] is None else fields[name].isoformat()
        return fields

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> SplitConfig:
        """Inverse of :meth:`to_dict`; an unknown or missing key is an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise SonicError(f"unknown split setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
        try:
            return cls(**fields)
        except TypeError as error:
            raise SonicError(f"incomplete split settings: {error}") from None

    def describe(self) -> str:
        """One line naming the protocol and its dates, for messages."""
        start = "the first event" if self.start_date is None else _day(self.start_date)
        end = "the last event" if self.end_date is None else _day(self.end_date)
        if self.test_date is None:
            return f"protocol {self.protocol}: start {start}, end {end}"
        return f"protocol {self.protocol}: start {start}, test date {_day(self.test_date)}, end {end}"


@dataclass(frozen=True, eq=False)
class Split:
    """A split: event frames (``user_id, track_id, timestamp, count``, one row per pair) and its config.

    ``test`` holds hot pairs only (tracks present in train); ``cold_test`` exists only when
    ``config.keep_cold`` and holds the pairs of tracks never seen in train.
    """

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    config: SplitConfig
    cold_test: pd.DataFrame | None = None

    @property
    def parts(self) -> dict[str, pd.DataFrame]:
        """The frames by file name stem, in order, leaving out an absent cold test."""
        frames = {name: getattr(self, name) for name in PART_NAMES}
        return {name: frame for name, frame in frames.items() if frame is not None}


def draw_users(users: Iterable[Any], fraction: float, *, seed: int) -> np.ndarray:
    """The val users: ``users`` sorted, shuffled by ``default_rng(seed)``, first ``floor(fraction * n)``.

    Sorting first makes the draw independent of row order, run and platform. Returns a sorted str array.
    """
    pool = np.sort(as_ids(users).drop_duplicates().to_numpy(dtype=str))
    order = np.random.default_rng(seed).permutation(len(pool))
    n_val = int(np.floor(fraction * len(pool) + 1e-9))
    return np.sort(pool[order[:n_val]])


def _is_time_split(protocol: str) -> bool:
    return protocol not in PROTOCOLS or PROTOCOLS[protocol].test_date is not None


def _as_date(value: Any, name: str) -> pd.Timestamp:
    try:
        date = pd.Timestamp(value)
    except (ValueError, TypeError):
        date = pd.NaT
    if pd.isna(date):
        raise SonicError(f"{name} {value!r} is not a date; use YYYY-MM-DD (optionally with a time)")
    if date.tzinfo is not None:
        date = date.tz_convert("UTC").tz_localize(None)
    return date


def _day(date: pd.Timestamp) -> str:
    """``2019-02-01`` for a midnight, the full time otherwise."""
    return str(date.date()) if date == date.normalize() else date.isoformat(sep=" ")
