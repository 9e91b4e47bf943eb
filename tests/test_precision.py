"""Precision: float32 on every device unless an embedder declares bfloat16 safe.

The runner's context (:func:`sonic.tails.neural.embedder_context`) never enters autocast for a float32
embedder, also on CUDA (the device is mocked here: torch.autocast is recorded, not entered). And the
embedders that must stay float32 (MusiCNN, DINO, the transformers at their default) switch autocast
off inside their own forward pass, so a caller's autocast region leaves their vectors as they are.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from audio_fixtures import noise, tone  # noqa: E402

from sonic.tails.neural import declared_precision, embedder_context  # noqa: E402


@pytest.fixture
def recorded_autocast(monkeypatch):
    """torch.autocast replaced by a recorder (CUDA autocast cannot be entered on a CPU-only torch)."""
    import contextlib

    calls = []

    def autocast(*args, **kwargs):
        calls.append((args, kwargs))
        return contextlib.nullcontext()

    monkeypatch.setattr(torch, "autocast", autocast)
    return calls


def tiny_embedders(tmp_path):
    from sonic.testing.embedders import embedder_fixture

    for name in ("musicnn", "dino_vits16", "mert-v1-95m"):
        yield embedder_fixture(name)(tmp_path / name)


class _Declared:
    def __init__(self, precision=None):
        self.device = torch.device("cuda")
        if precision is not None:
            self.precision = precision


def test_float32_embedders_get_no_autocast_on_cuda(recorded_autocast, tmp_path):
    for embedder in [_Declared(), _Declared("float32"), *tiny_embedders(tmp_path)]:
        embedder.device = torch.device("cuda")  # mocked: what the runner would see on a GPU
        with embedder_context(embedder)():
            assert not torch.is_grad_enabled()
        assert declared_precision(embedder) == "float32"
    assert recorded_autocast == []


def test_an_embedder_declaring_bfloat16_gets_cuda_autocast_and_only_on_cuda(recorded_autocast):
    with embedder_context(_Declared("bfloat16"))():
        pass
    assert recorded_autocast == [((), {"device_type": "cuda", "dtype": torch.bfloat16})]
    cpu = _Declared("bfloat16")
    cpu.device = torch.device("cpu")
    with embedder_context(cpu)():
        pass
    assert len(recorded_autocast) == 1


def test_musicnn_dino_and_transformers_stay_float32_inside_an_outer_cpu_autocast(tmp_path):
    clips = [tone(440.0, 3.5, 16_000) + noise(3.5, 16_000, seed=1)]
    for embedder in tiny_embedders(tmp_path):
        batch = [np.resize(clips[0], int(3.5 * embedder.sample_rate)).astype(np.float32)]
        exact = embedder.embed(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            under = embedder.embed(batch)
        np.testing.assert_allclose(under, exact, rtol=0, atol=1e-5, err_msg=embedder.name)
        assert embedder.describe()["precision"] == "float32"
