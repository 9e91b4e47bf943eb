"""Shared neural-embedder helpers: equal windows, layer choice, pooling, checkpoint lookup, options."""

import numpy as np
import pytest

from sonic.errors import SonicError
from sonic.tails.neural import NeuralOptions, check_layer, equal_windows, pool, resolve_checkpoint


def test_equal_windows_drop_a_partial_tail_and_never_pad_a_short_clip():
    y = np.arange(10, dtype=np.float32)

    assert equal_windows(y, 4).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert equal_windows(y, 20).shape == (1, 10)
    with pytest.raises(SonicError, match="non-empty 1-d"):
        equal_windows(np.zeros(0, dtype=np.float32), 4)


def test_layer_choices_and_pooling():
    assert check_layer("last") == "last" and check_layer("6") == 6 and check_layer(-1) == -1
    with pytest.raises(SonicError, match="unknown layer 'first'"):
        check_layer("first")
    vectors = np.array([[1.0, 4.0], [3.0, 2.0]], dtype=np.float32)
    assert pool(vectors, "mean").tolist() == [2.0, 3.0]
    assert pool(vectors, "mean+max").tolist() == [2.0, 3.0, 3.0, 4.0]
    with pytest.raises(SonicError, match="unknown pooling"):
        NeuralOptions(pooling="median")


def test_select_layer_by_name_and_index():
    torch = pytest.importorskip("torch")
    from sonic.tails.neural import select_layer

    states = [torch.full((1, 2, 3), float(i)) for i in range(4)]
    assert select_layer(states, "last").eq(3).all()
    assert select_layer(states, "mean").eq(1.5).all()
    assert select_layer(states, 1).eq(1).all()
    with pytest.raises(SonicError, match="hidden states 0..3"):
        select_layer(states, 7)


def test_checkpoint_folder_must_hold_its_files_and_an_uncached_hub_name_is_one_sentence(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    assert resolve_checkpoint(tmp_path, needs=("config.json",)) == tmp_path
    with pytest.raises(SonicError, match="lacks model.safetensors"):
        resolve_checkpoint(tmp_path, needs=("config.json", "model.safetensors"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(SonicError, match="not in the Hugging Face cache .*HF_HUB_OFFLINE is set; run `hf download m-a-p/MERT-v1-95M`.*--checkpoint"):
        resolve_checkpoint("m-a-p/MERT-v1-95M")
    with pytest.raises(SonicError, match="neither an existing folder nor a hub name"):
        resolve_checkpoint(str(tmp_path / "missing" / "folder"))


def test_inference_runs_without_autograd_in_float32_on_the_cpu():
    torch = pytest.importorskip("torch")
    from sonic.tails.neural import autocast_dtype, inference, pins_memory, to_device

    layer = torch.nn.Linear(3, 2)
    batch = np.arange(6, dtype=np.float64).reshape(2, 3)
    with inference("cpu"):
        out = layer(to_device(batch, "cpu"))

    assert not out.requires_grad and out.dtype == torch.float32
    torch.testing.assert_close(out, layer(torch.tensor(batch, dtype=torch.float32)).detach())
    assert autocast_dtype("cpu") is None and not pins_memory("cpu")


def test_cuda_batches_autocast_only_when_asked_and_use_pinned_memory():
    torch = pytest.importorskip("torch")
    from sonic.tails.neural import autocast_dtype, pins_memory

    assert autocast_dtype("cuda") is None and autocast_dtype("cuda:1") is None
    assert autocast_dtype("cuda", bf16=True) is torch.bfloat16 and autocast_dtype("cpu", bf16=True) is None
    assert pins_memory("cuda:0")


@pytest.mark.gpu
def test_on_a_gpu_the_forward_pass_is_float32_unless_bf16_is_asked_for():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from sonic.tails.neural import inference, to_device

    layer = torch.nn.Linear(3, 2).cuda()
    with inference("cuda"):
        assert layer(to_device(np.ones((2, 3), np.float32), "cuda")).dtype == torch.float32
    with inference("cuda", bf16=True):
        assert layer(to_device(np.ones((2, 3), np.float32), "cuda")).dtype == torch.bfloat16


def test_sha256_of_a_weights_file(tmp_path):
    import hashlib

    from sonic.tails.neural import sha256_file

    path = tmp_path / "model.safetensors"
    path.write_bytes(bytes(range(256)) * 5000)

    assert sha256_file(path, chunk_bytes=4096) == hashlib.sha256(path.read_bytes()).hexdigest()
