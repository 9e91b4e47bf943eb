"""Simulated listeners whose tastes follow the demo's styles."""

from __future__ import annotations

import numpy as np
import pandas as pd

SECONDS_PER_DAY = 86_400


def simulate_listening(tracks: pd.DataFrame, *, n_users: int, start: pd.Timestamp, end: pd.Timestamp,
                       rng: np.random.Generator, mean_tracks_per_user: float = 12.0,
                       mean_new_tracks_per_user: float = 0.7) -> pd.DataFrame:
    """Raw listening events (one row per play): ``user_id, track_id, timestamp``.

    Each user has a favourite style (and, half the time, a second one); the tracks they
    discover are drawn without replacement with probability proportional to their taste
    for the track's style times the track's popularity (``tracks.popularity``). First listens
    are uniform over [start, end); re-listens follow at exponential gaps, before ``end``.
    Tracks with a ``release_date`` come out then: each user also plays a Poisson number (mean
    ``mean_new_tracks_per_user``) of them, drawn by the same taste, first listened to between
    their release and ``end`` (as they appear).
    """
    released = pd.to_datetime(tracks["release_date"]) if "release_date" in tracks.columns else None
    is_new = np.zeros(len(tracks), bool) if released is None else released.notna().to_numpy()
    release_seconds = (np.zeros(len(tracks)) if released is None
                       else ((released - start).dt.total_seconds().fillna(0.0)).to_numpy(np.float64))
    styles = np.sort(tracks["style"].unique())
    style_index = np.searchsorted(styles, tracks["style"].to_numpy())
    popularity = tracks["popularity"].to_numpy(dtype=float)
    window_seconds = (end - start).total_seconds()
    old, new = np.flatnonzero(~is_new), np.flatnonzero(is_new)
    rows_user, rows_track, rows_time = [], [], []
    for number in range(n_users):
        taste = np.full(len(styles), 0.04 / len(styles))
        favourite, second = rng.choice(len(styles), size=2, replace=False)
        if rng.random() < 0.5:
            taste[favourite] += 0.96
        else:
            taste[favourite] += 0.66
            taste[second] += 0.30
        weights = taste[style_index] * popularity
        n_tracks = int(np.clip(rng.lognormal(np.log(mean_tracks_per_user), 0.5), 4, len(old) // 6))
        chosen = old[rng.choice(len(old), size=n_tracks, replace=False, p=weights[old] / weights[old].sum())]
        first = rng.uniform(0, window_seconds, size=n_tracks)
        if len(new):
            n_new = min(int(rng.poisson(mean_new_tracks_per_user)), len(new))
            picked = new[rng.choice(len(new), size=n_new, replace=False, p=weights[new] / weights[new].sum())]
            chosen = np.concatenate([chosen, picked])
            first = np.concatenate([first, rng.uniform(release_seconds[picked], window_seconds)])
        plays = 1 + rng.geometric(0.45, size=len(chosen)) - 1
        for track, first_second, n_plays in zip(chosen, first, plays):
            gaps = rng.exponential(20 * SECONDS_PER_DAY, size=n_plays - 1)
            times = first_second + np.concatenate([[0.0], np.cumsum(gaps)])
            times = times[times < window_seconds]
            rows_user.extend([f"user_{number:05d}"] * len(times))
            rows_track.extend([tracks["track_id"].iat[track]] * len(times))
            rows_time.extend(times)
    stamps = start + pd.to_timedelta(np.round(rows_time), unit="s")
    events = pd.DataFrame({"user_id": rows_user, "track_id": rows_track, "timestamp": stamps})
    return events.sort_values(["timestamp", "user_id"], kind="stable").reset_index(drop=True)
