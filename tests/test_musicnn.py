"""MusiCNN embedders on tiny random-weight checkpoints in TF's real format, loaded through the published path.

A plain-numpy forward pass written from the TF graph's semantics (NHWC tensors, TF "same" padding,
the back-end's interleaved max/mean pooling, NHWC flattening in vgg) is the reference here; the
published weights are compared with the original TF code in test_musicnn_reference.py.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sonic.errors import SonicError, UnknownNameError
from sonic.tails.base import EMBEDDERS
from sonic.tails.models.musicnn import MusiCNNEmbedder, from_name, patch_frames
from sonic.testing.musicnn_tiny import tiny_musicnn, tiny_vgg, write_tf_checkpoint

SR = 16000
EPS = 1e-3


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("musicnn")
    write_tf_checkpoint(f"{root}/musicnn/", tiny_musicnn(seed=0))  # hidden names, as in the wheel
    write_tf_checkpoint(root / "vgg" / "model", tiny_vgg(seed=1))
    return {"musicnn": root / "musicnn", "vgg": root / "vgg"}


def clip(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) * (1 + np.sin(2 * np.pi * rng.uniform(0.5, 4) * t))
    return (tone + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


# ---- numpy reference, TF semantics ---------------------------------------------------------------------
def bn(x, w, name):
    return (x - w[f"{name}/moving_mean"]) / np.sqrt(w[f"{name}/moving_variance"] + EPS) * w[f"{name}/gamma"] + w[
        f"{name}/beta"
    ]


def conv(x, w, name, pad_t=(0, 0), pad_f=(0, 0)):
    """NHWC valid convolution (cross-correlation) after zero padding, + bias."""
    kernel = w[f"{name}/kernel"].astype(np.float64)
    x = np.pad(x, ((0, 0), pad_t, pad_f, (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(x, kernel.shape[:2], axis=(1, 2))  # (B, T', F', C, kh, kw)
    return np.tensordot(windows, kernel, axes=([3, 4, 5], [2, 0, 1])) + w[f"{name}/bias"]


def relu(x):
    return np.maximum(x, 0)


def reference_musicnn(patches, w):
    x = bn(patches[..., None].astype(np.float64), w, "batch_normalization")
    features = []
    for i, name in enumerate(["conv2d", "conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4"]):
        kh = w[f"{name}/kernel"].shape[0]
        pad = (3, 3) if i < 2 else ((kh - 1) // 2, kh - 1 - (kh - 1) // 2)
        y = bn(relu(conv(x, w, name, pad_t=pad)), w, f"batch_normalization_{i + 1}")
        features.append(y.max(axis=2))  # (B, T, C)
    front = np.concatenate(features, axis=2)[..., None]  # (B, T, 561, 1)
    outputs, h = [front], front
    for i in range(3):
        y = bn(relu(conv(h, w, f"conv2d_{5 + i}", pad_t=(3, 3))), w, f"batch_normalization_{6 + i}")  # (B,T,1,64)
        y = y.transpose(0, 1, 3, 2)
        h = y if i == 0 else y + h
        outputs.append(h)
    stacked = np.concatenate(outputs, axis=2)  # (B, T, 753, 1)
    max_pool, mean_pool = stacked.max(axis=1), stacked.mean(axis=1)  # (B, 753, 1)
    flat = np.concatenate([max_pool, mean_pool], axis=2).reshape(len(patches), -1)
    hidden = relu(bn(flat, w, "batch_normalization_9") @ w["dense/kernel"] + w["dense/bias"])
    penultimate = bn(hidden, w, "batch_normalization_10")
    logits = penultimate @ w["dense_1/kernel"] + w["dense_1/bias"]
    return {"taggram": 1 / (1 + np.exp(-logits)), "penultimate": penultimate, "mean_pool": mean_pool[..., 0],
            "max_pool": max_pool[..., 0]}


def max_pool(x, size, stride):
    windows = np.lib.stride_tricks.sliding_window_view(x, size, axis=(1, 2))[:, :: stride[0], :: stride[1]]
    return windows.max(axis=(-2, -1))


def reference_vgg(patches, w):
    x = bn(patches[..., None].astype(np.float64), w, "batch_normalization")
    pools = [((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4))]
    for i, (size, stride) in enumerate(pools):
        x = bn(relu(conv(x, w, f"{i + 1}CNN", pad_t=(1, 1), pad_f=(1, 1))), w, f"batch_normalization_{i + 1}")
        x = max_pool(x, size, stride)
    flat = x.reshape(len(patches), -1)
    logits = flat @ w["dense/kernel"] + w["dense/bias"]
    return {"taggram": 1 / (1 + np.exp(-logits)), "penultimate": flat}


# ---- tests -----------------------------------------------------------------------------------------------
def test_patch_length_is_the_packages():
    assert patch_frames(3.0) == 187


@pytest.mark.parametrize("kind", ["musicnn", "vgg"])
def test_forward_equals_the_numpy_reference(checkpoints, kind):
    name = "musicnn" if kind == "musicnn" else "MSD_vgg"
    embedder = from_name(name, checkpoint=str(checkpoints[kind]), device="cpu")
    weights = (tiny_musicnn if kind == "musicnn" else tiny_vgg)(seed=0 if kind == "musicnn" else 1, optimizer=False)
    patches = embedder.patches(clip(6.5, seed=4))
    assert patches.shape == (2, 187, 96) and patches.dtype == np.float32
    ours = embedder.forward(patches)
    expected = (reference_musicnn if kind == "musicnn" else reference_vgg)(patches, weights)
    assert sorted(ours) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(ours[key], value, rtol=1e-4, atol=1e-5, err_msg=key)


def test_outputs_dims_and_pooling(checkpoints):
    batch = [clip(7.0, 1), clip(3.2, 2)]
    folder = str(checkpoints["musicnn"])
    embedder = from_name("musicnn", checkpoint=folder, device="cpu")
    outputs = embedder.forward(embedder.patches(batch[0]))  # two patches
    for output, width in [("penultimate", 6), ("mean_max_pool", 2 * (2 * 4 + 3 * 3 + 3 * 5)), ("taggram", 7)]:
        per_patch = outputs["taggram" if output == "taggram" else "penultimate"]
        if output == "mean_max_pool":
            per_patch = np.concatenate([outputs["mean_pool"], outputs["max_pool"]], axis=1)
        for pooling, factor in [("mean", 1), ("max", 1), ("mean+max", 2)]:
            embedder = from_name("MTT_musicnn", checkpoint=folder, device="cpu", output=output, pooling=pooling)
            vectors = embedder.embed(batch)
            assert embedder.dim == width * factor
            assert vectors.shape == (2, width * factor) and vectors.dtype == np.float32
            assert np.isfinite(vectors).all()
            pooled = {"mean": per_patch.mean(0), "max": per_patch.max(0)}
            pooled["mean+max"] = np.concatenate([pooled["mean"], pooled["max"]])
            np.testing.assert_allclose(vectors[0], pooled[pooling], rtol=1e-5, atol=1e-6)
    assert (outputs["taggram"] > 0).all() and (outputs["taggram"] < 1).all()


def test_deterministic_and_batch_invariant(checkpoints):
    batch = [clip(7.0, 1), clip(3.2, 2), clip(9.5, 3), clip(4.0, 5)]
    folder = str(checkpoints["musicnn"])
    together = from_name("musicnn", checkpoint=folder, device="cpu").embed(batch)
    again = from_name("musicnn", checkpoint=folder, device="cpu").embed(batch)
    np.testing.assert_array_equal(together, again)
    embedder = from_name("musicnn", checkpoint=folder, device="cpu")
    alone = np.stack([embedder.embed([waveform])[0] for waveform in batch])
    np.testing.assert_array_equal(alone, together)  # a clip's vector does not depend on its batch-mates
    np.testing.assert_array_equal(embedder.embed(batch[::-1]), together[::-1])
    one_patch_at_a_time = from_name("musicnn", checkpoint=folder, device="cpu", batch_size=1)
    np.testing.assert_allclose(one_patch_at_a_time.embed(batch), together, rtol=1e-5, atol=1e-6)
    assert from_name("musicnn", checkpoint=folder, device="cpu").embed([]).shape == (0, 6)


def test_short_clip_is_repeated_to_one_patch(checkpoints):
    embedder = from_name("musicnn", checkpoint=str(checkpoints["musicnn"]), device="cpu")
    short = clip(1.0, 7)
    patches = embedder.patches(short)
    assert patches.shape == (1, 187, 96)
    frames = embedder.log_mel(short)
    np.testing.assert_array_equal(patches[0, : len(frames)], frames)
    np.testing.assert_array_equal(patches[0, len(frames) : 2 * len(frames)], frames[: 187 - len(frames)])


def test_log_is_taken_in_float32_so_loud_audio_stays_finite(checkpoints):
    embedder = from_name("musicnn", checkpoint=str(checkpoints["musicnn"]), device="cpu")
    loud = np.sign(np.sin(2 * np.pi * 110 * np.arange(3 * SR) / SR)).astype(np.float32)  # full-scale square wave
    mel_power = (10.0 ** embedder.log_mel(loud).astype(np.float64) - 1) / 10000
    assert mel_power.max() > 6.55  # float16 would overflow here: 10000 * x > 65504
    assert np.isfinite(embedder.embed([loud])).all()


def test_registry_and_describe(checkpoints, monkeypatch):
    embedder = EMBEDDERS.create("MSD_vgg", checkpoint=str(checkpoints["vgg"]), device="cpu", output="taggram")
    assert isinstance(embedder, MusiCNNEmbedder)
    assert (embedder.name, embedder.dim, embedder.sample_rate, embedder.modality) == ("MSD_vgg", 7, 16000, "audio")
    described = embedder.describe()
    assert described["model"] == "MSD_vgg" and described["output"] == "taggram" and described["window_frames"] == 187
    assert list(described["checkpoint_sha256"]) == ["model.data-00000-of-00001"]
    assert len(described["checkpoint_sha256"]["model.data-00000-of-00001"]) == 64
    for name in ("musicnn", "MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"):
        assert name in EMBEDDERS


def test_bad_options_are_one_sentence(checkpoints):
    folder = str(checkpoints["musicnn"])
    with pytest.raises(SonicError, match="unknown option 'layers' for musicnn; known: checkpoint, device"):
        from_name("musicnn", checkpoint=folder, layers=3)
    with pytest.raises(SonicError, match="unknown musicnn output 'logits'; known: penultimate"):
        from_name("musicnn", checkpoint=folder, output="logits")
    with pytest.raises(SonicError, match="unknown pooling"):
        from_name("musicnn", checkpoint=folder, pooling="median")
    with pytest.raises(SonicError, match="batch_size must be a positive integer"):
        from_name("musicnn", checkpoint=folder, batch_size=0)
    with pytest.raises(UnknownNameError, match="unknown embedder 'MSD_vggish'; known: musicnn, MSD_musicnn"):
        from_name("MSD_vggish")
    vgg = str(checkpoints["vgg"])
    with pytest.raises(SonicError, match="no mean_max_pool output"):
        from_name("MTT_vgg", checkpoint=vgg, output="mean_max_pool", device="cpu")
    with pytest.raises(SonicError, match="3-second patches only"):
        from_name("MTT_vgg", checkpoint=vgg, window_seconds=5.0, device="cpu")
    with pytest.raises(SonicError, match="neither a musicnn"):
        bad = checkpoints["vgg"].parent / "other"
        write_tf_checkpoint(bad / "x", {"w": np.zeros(2, np.float32)})
        from_name("musicnn", checkpoint=str(bad), device="cpu")
    with pytest.raises(SonicError, match="no TensorFlow checkpoint"):
        from_name("musicnn", checkpoint=str(checkpoints["vgg"].parent / "absent"), device="cpu")


def test_longer_windows_for_musicnn(checkpoints):
    embedder = from_name("musicnn", checkpoint=str(checkpoints["musicnn"]), device="cpu", window_seconds=5.0)
    assert embedder.frames == patch_frames(5.0) == 312
    assert embedder.patches(clip(11.0, 2)).shape == (2, 312, 96)
    assert embedder.embed([clip(11.0, 2)]).shape == (1, 6)


def test_torch_loads_only_when_a_model_is_built(checkpoints, monkeypatch):
    code = "import sys, sonic.tails.base, sonic.tails.models.musicnn; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    with pytest.raises(SonicError, match=r"runs on PyTorch, which is not installed: pip install 'sonic\[models\]'"):
        from_name("musicnn", checkpoint=str(checkpoints["musicnn"]))


@pytest.mark.parametrize("kind", ["musicnn", "vgg"])
def test_bfloat16_is_opt_in_close_to_float32_and_recorded(checkpoints, kind):
    name = "musicnn" if kind == "musicnn" else "MSD_vgg"
    folder = str(checkpoints[kind])
    batch = [clip(7.0, 1), clip(3.2, 2)]
    exact = from_name(name, checkpoint=folder, device="cpu")
    reduced = from_name(name, checkpoint=folder, device="cpu", precision="bfloat16")
    assert exact.describe()["precision"] == "float32" and reduced.describe()["precision"] == "bfloat16"
    patches = exact.patches(batch[0])
    ours, theirs = reduced.forward(patches), exact.forward(patches)
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        assert ours[key].dtype == np.float32 and ours[key].shape == value.shape
        # bf16 keeps 8 significant bits: about 0.4% of each product, far more than float32's rounding
        np.testing.assert_allclose(ours[key], value, rtol=0.05, atol=0.05, err_msg=key)
    assert not np.array_equal(ours["penultimate"], theirs["penultimate"])  # it really ran in bf16
    vectors, expected = reduced.embed(batch), exact.embed(batch)
    cosine = (vectors * expected).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() > 0.999
    with pytest.raises(SonicError, match="unknown musicnn precision 'float16'; known: float32, bfloat16"):
        from_name(name, checkpoint=folder, precision="float16")


@pytest.mark.slow
def test_sonic_embed_takes_the_precision_option_and_records_it(checkpoints, tmp_path):
    from audio_fixtures import write
    from cli_runner import sonic

    from sonic.tails.table import read_embeddings

    audio = tmp_path / "audio"
    audio.mkdir()
    for i, seconds in enumerate((4.0, 6.5)):
        write(audio / f"track{i}.wav", clip(seconds, seed=10 + i), SR)
    tables = {}
    for precision in ("float32", "bfloat16"):
        done = sonic("embed", "--model-type", "musicnn", "--audio-dir", audio, "--checkpoint", checkpoints["musicnn"],
                     "--option", f"precision={precision}", "--device", "cpu", "--num-workers", "0",
                     "--out", tmp_path / precision)
        assert done.returncode == 0, done.stderr
        tables[precision] = read_embeddings(tmp_path / precision / "musicnn.parquet")
        assert tables[precision].manifest["precision"] == precision
    exact, reduced = tables["float32"].vectors, tables["bfloat16"].vectors
    assert tables["bfloat16"].track_ids.tolist() == ["track0", "track1"] and reduced.shape == (2, 6)
    cosine = (exact * reduced).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(reduced, axis=1)
    assert cosine.min() > 0.999 and not np.array_equal(exact, reduced)
    bad = sonic("embed", "--model-type", "musicnn", "--audio-dir", audio, "--checkpoint", checkpoints["musicnn"],
                "--option", "precision=half", "--out", tmp_path / "bad")
    assert bad.returncode == 2 and "unknown musicnn precision 'half'; known: float32, bfloat16" in bad.stderr
