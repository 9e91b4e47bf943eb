"""The TF checkpoint reader, on checkpoints written by the independent writer in sonic.testing.musicnn_tiny."""

from __future__ import annotations

import numpy as np
import pytest

from sonic.errors import SonicError
from sonic.testing.musicnn_tiny import tiny_musicnn, write_tf_checkpoint
from sonic.tails.models.tf_checkpoint import index_path, read_tf_checkpoint


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "dense/kernel": rng.standard_normal((5, 3)).astype(np.float32),
        "dense/kernel/Adam": rng.standard_normal((5, 3)).astype(np.float32),
        "dense/kernel/Adam_1": rng.standard_normal((5, 3)).astype(np.float32),
        "dense/bias": rng.standard_normal(3).astype(np.float32),
        "global_step": np.array(1234, dtype=np.int64),
        "scale": np.array(0.5, dtype=np.float64),
        "counts": np.arange(7, dtype=np.int32).reshape(7, 1, 1),
        "a_very_long_shared_prefix/first": np.ones((2, 2), np.float32),
        "a_very_long_shared_prefix/second": np.zeros((1,), np.float32),
    }


@pytest.mark.parametrize("entries_per_block", [1, 3, 100])
def test_reads_every_tensor_exactly(tmp_path, entries_per_block):
    tensors = _tensors()
    write_tf_checkpoint(tmp_path / "model", tensors, entries_per_block=entries_per_block)
    everything = read_tf_checkpoint(tmp_path / "model", include_optimizer=True)
    assert sorted(everything) == sorted(tensors)
    for name, value in tensors.items():
        assert everything[name].dtype == value.dtype and everything[name].shape == value.shape
        np.testing.assert_array_equal(everything[name], value)


def test_skips_optimizer_state_by_default(tmp_path):
    write_tf_checkpoint(tmp_path / "model", _tensors())
    names = set(read_tf_checkpoint(tmp_path / "model"))
    assert names == {"dense/kernel", "dense/bias", "scale", "counts", "a_very_long_shared_prefix/first",
                     "a_very_long_shared_prefix/second"}


def test_folder_prefix_and_index_path_all_work(tmp_path):
    weights = tiny_musicnn(seed=3)
    index = write_tf_checkpoint(f"{tmp_path}/ckpt/", weights)  # an empty prefix, as in the musicnn wheel
    assert index.name == ".index"
    from_folder = read_tf_checkpoint(tmp_path / "ckpt")
    from_index = read_tf_checkpoint(index)
    model_only = sorted(k for k in weights if "Adam" not in k and "power" not in k)
    assert sorted(from_folder) == sorted(from_index) == model_only
    np.testing.assert_array_equal(from_folder["conv2d/kernel"], weights["conv2d/kernel"])
    assert index_path(tmp_path / "ckpt") == index


def test_bad_inputs_are_one_sentence(tmp_path):
    with pytest.raises(SonicError, match="no TensorFlow checkpoint"):
        read_tf_checkpoint(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SonicError, match="holds no .index file"):
        read_tf_checkpoint(tmp_path / "empty")
    (tmp_path / "junk.index").write_bytes(b"this is not a table" * 5)
    with pytest.raises(SonicError, match="not a readable TensorFlow checkpoint index"):
        read_tf_checkpoint(tmp_path / "junk.index")
    write_tf_checkpoint(tmp_path / "two" / "a", _tensors())
    write_tf_checkpoint(tmp_path / "two" / "b", _tensors())
    with pytest.raises(SonicError, match="2 .index files"):
        read_tf_checkpoint(tmp_path / "two")


def test_missing_or_short_data_file(tmp_path):
    write_tf_checkpoint(tmp_path / "m", _tensors())
    data = tmp_path / "m.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:20])
    with pytest.raises(SonicError, match="damaged"):
        read_tf_checkpoint(tmp_path / "m")
    data.unlink()
    with pytest.raises(SonicError, match="is missing"):
        read_tf_checkpoint(tmp_path / "m")
