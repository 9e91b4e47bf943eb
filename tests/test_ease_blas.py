"""EASE's Cholesky never runs on several OpenBLAS threads: OpenBLAS 0.3.31's multithreaded ``dpotrf``
crashes on AVX-512 CPUs from about 16,000 tracks (REFERENCE section 12)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from sonic.rouge.models import ease


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_factorisation_runs_on_one_blas_thread_and_inverts(monkeypatch):
    from scipy.linalg import lapack

    seen_threads: list[list[int]] = []
    real = lapack.dpotrf

    def spying_dpotrf(*args, **kwargs):
        seen_threads.append(_blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(lapack, "dpotrf", spying_dpotrf)
    rng = np.random.default_rng(3)
    a = rng.standard_normal((300, 40))
    spd = a @ a.T + 50 * np.eye(300)
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        inverse = ease._symmetric_inverse(spd.copy())
        after = _blas_threads()
    assert seen_threads == [[1] * len(before)]  # every BLAS library on one thread while it factorises
    assert after == before  # and the limit is lifted afterwards
    np.testing.assert_allclose(inverse, np.linalg.inv(spd), rtol=1e-9, atol=1e-12)


_SIXTEEN_THOUSAND = textwrap.dedent(
    """
    import numpy as np, pandas as pd
    from threadpoolctl import threadpool_limits
    from sonic.rouge.models.ease import EASERecommender

    n_tracks, n_users = 16_000, 4_000
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(n_users), 60)
    tracks = np.concatenate([rng.choice(n_tracks, 60, replace=False) for _ in range(n_users)])
    tracks[: n_tracks] = np.arange(n_tracks)  # every track has a listener
    train = pd.DataFrame({"user_id": users.astype(str), "track_id": tracks.astype(str)})
    with threadpool_limits(limits=2, user_api="blas"):  # as many threads as the crash needs
        model = EASERecommender(l2=500.0).fit(train)
    ids, scores = model.recommend(["0", "1"], 10)
    assert model.describe()["n_catalogue_tracks"] == n_tracks
    assert np.isfinite(scores).all()
    print("fitted", n_tracks)
    """
)


@pytest.mark.slow
def test_ease_fits_sixteen_thousand_tracks_in_a_subprocess():
    done = subprocess.run([sys.executable, "-c", _SIXTEEN_THOUSAND], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert "fitted 16000" in done.stdout
