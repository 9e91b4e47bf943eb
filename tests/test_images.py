"""Model-ready spectrogram pictures (sonic.tails.vision.images): shapes, ranges, known rows, tiles, errors."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from audio_fixtures import noise, tone

from sonic.cream.spectra.core import mel_frequencies, n_frames
from sonic.errors import AudioError, SonicError
from sonic.tails.vision.colours import IMAGENET_MEAN, IMAGENET_STD, colour_images, colour_table, denormalise
from sonic.tails.vision.images import (
    ImageBatch,
    ImageConfig,
    cut_tiles,
    mel_power,
    resize_bilinear,
    spectrogram_images,
    square_images,
    tile_starts,
    unit_spectrogram,
)

SR = 22050


def expected_tiles(n_samples: int, config: ImageConfig) -> int:
    """The documented count: ``1 + ceil(max(0, n_frames - n_mels) / tile_hop)``."""
    frames = n_frames(n_samples, config.hop_length)
    return 1 + math.ceil(max(0, frames - config.n_mels) / config.tile_hop)


def unit_pictures(waveform: np.ndarray, config: ImageConfig) -> np.ndarray:
    """The recipe up to RGB in [0, 1], before normalisation: (n, 3, size, size)."""
    unit = unit_spectrogram(mel_power(waveform, config=config), top_db=config.top_db)
    return colour_images(square_images(unit, config=config), colormap=config.colormap)


def test_batch_is_float32_channels_first_squares_with_owners_per_clip():
    config = ImageConfig()
    clips = [tone(440.0, 30.0, SR), tone(880.0, 1.0, SR), noise(7.0, SR)]

    batch = spectrogram_images(clips, config=config, sample_rate=SR)

    counts = [expected_tiles(len(clip), config) for clip in clips]
    assert counts == [20, 1, 4]  # frames 1292 -> 1 + ceil(1164 / 64); 44 -> one padded tile; 302 -> 1 + ceil(174 / 64)
    assert batch.images.shape == (sum(counts), 3, 224, 224)
    assert batch.images.dtype == np.float32 and batch.images.flags.c_contiguous
    assert batch.owners.dtype == np.int64 and batch.n_clips == 3
    np.testing.assert_array_equal(batch.owners, np.repeat([0, 1, 2], counts))


def test_values_are_in_unit_range_before_normalisation_and_the_inverse_gives_them_back():
    config = ImageConfig()
    waveform = tone(1000.0, 4.0, SR) + noise(4.0, SR)
    before = unit_pictures(waveform, config)

    after = spectrogram_images([waveform], config=config).images

    assert before.min() >= 0.0 and before.max() <= 1.0
    mean, std = np.reshape(IMAGENET_MEAN, (3, 1, 1)), np.reshape(IMAGENET_STD, (3, 1, 1))
    np.testing.assert_allclose(after, (before - mean) / std, atol=1e-5)
    restored = denormalise(after, mean=config.mean, std=config.std)
    assert restored.min() >= -1e-6 and restored.max() <= 1.0 + 1e-6  # never 0..255
    np.testing.assert_allclose(restored, before, atol=1e-6)


@pytest.mark.parametrize("sample_rate", [22050, 44100])
def test_a_4khz_sine_lights_the_row_of_the_4khz_mel_band_at_any_sample_rate(sample_rate):
    config = ImageConfig(sample_rate=sample_rate, colormap="gray", fit="resize")
    centres_hz = mel_frequencies(config.n_mels, fmax_hz=sample_rate / 2)  # band 0 is the lowest
    band = int(np.argmin(np.abs(centres_hz - 4000.0)))
    waveform = tone(4000.0, 5.0, sample_rate)

    unit = unit_spectrogram(mel_power(waveform, config=config), top_db=config.top_db)
    picture = denormalise(spectrogram_images([waveform], config=config).images, mean=config.mean, std=config.std)

    assert int(np.argmax(unit.mean(axis=1))) == config.n_mels - 1 - band  # low frequencies at the bottom
    bright_row = int(np.argmax(picture[0, 0].mean(axis=1)))  # 128 rows stretched to 224, corners aligned
    assert abs(bright_row * (config.n_mels - 1) / 223 - (config.n_mels - 1 - band)) <= 1.0
    assert abs(centres_hz[band] - 4000.0) < 100.0


def test_the_4khz_band_index_follows_the_sample_rate():
    bands = {}
    for sample_rate in (22050, 44100):
        config = ImageConfig(sample_rate=sample_rate)
        unit = unit_spectrogram(mel_power(tone(4000.0, 2.0, sample_rate), config=config), top_db=80.0)
        bands[sample_rate] = config.n_mels - 1 - int(np.argmax(unit.mean(axis=1)))

    assert bands == {22050: 90, 44100: 75}  # different filterbanks, the same 4 kHz


def test_tiles_start_every_hop_and_the_last_ends_on_the_last_frame():
    np.testing.assert_array_equal(tile_starts(1292, tile_frames=128, tile_hop=64), [*range(0, 1152 + 1, 64), 1164])
    np.testing.assert_array_equal(tile_starts(128, tile_frames=128, tile_hop=64), [0])
    np.testing.assert_array_equal(tile_starts(44, tile_frames=128, tile_hop=64), [0])
    for frames in (129, 191, 192, 193, 1000):
        assert len(tile_starts(frames, tile_frames=128, tile_hop=64)) == 1 + math.ceil((frames - 128) / 64)


def test_adjacent_tiles_share_the_overlap_fraction_of_their_columns():
    config = ImageConfig(tile_overlap=0.75)
    unit = np.tile(np.arange(700, dtype=np.float32) / 700, (config.n_mels, 1))  # each column: its frame

    tiles = cut_tiles(unit, tile_hop=config.tile_hop)

    shared = config.n_mels - config.tile_hop
    assert (config.tile_hop, shared) == (32, 96)
    for left, right in zip(tiles[:-2], tiles[1:-1]):
        np.testing.assert_array_equal(right[:, :shared], left[:, -shared:])
        assert right[0, shared] > left[0, -1]  # the rest is new
    np.testing.assert_array_equal(tiles[-1][:, -1], unit[:, -1])


def test_a_clip_shorter_than_a_tile_is_one_tile_padded_with_the_floor():
    config = ImageConfig(colormap="gray")
    waveform = tone(440.0, 1.0, SR)
    unit = unit_spectrogram(mel_power(waveform, config=config), top_db=config.top_db)  # (128, 44)

    tiles = cut_tiles(unit, tile_hop=config.tile_hop)
    batch = spectrogram_images([waveform], config=config)

    assert tiles.shape == (1, 128, 128)
    np.testing.assert_array_equal(tiles[0, :, :44], unit)
    assert not tiles[0, :, 44:].any()
    assert len(batch.images) == 1


def test_resize_gives_one_picture_per_clip():
    config = ImageConfig(fit="resize")
    clips = [tone(440.0, seconds, SR) for seconds in (0.5, 3.0, 30.0)]

    batch = spectrogram_images(clips, config=config)

    assert batch.images.shape == (3, 3, 224, 224)
    np.testing.assert_array_equal(batch.owners, [0, 1, 2])


def test_bilinear_resize_keeps_ramps_and_averages_the_frames_it_shrinks():
    ramp = np.tile(np.arange(128, dtype=np.float32)[:, None], (1, 50))  # value = row
    stripes = np.tile(np.arange(1344) % 2, (128, 1)).astype(np.float32)  # 1344 = 6 x 224 columns

    np.testing.assert_allclose(resize_bilinear(ramp, size=224)[:, 7], np.linspace(0, 127, 224), atol=1e-4)
    np.testing.assert_allclose(resize_bilinear(stripes, size=224)[:, 1:-1], 0.5, atol=1e-6)


def test_gray_repeats_one_channel_three_times():
    config = ImageConfig(colormap="gray")

    rgb = unit_pictures(noise(3.0, SR), config)
    restored = denormalise(spectrogram_images([noise(3.0, SR)], config=config).images, mean=config.mean, std=config.std)

    np.testing.assert_array_equal(rgb[:, 0], rgb[:, 1])
    np.testing.assert_array_equal(rgb[:, 0], rgb[:, 2])
    np.testing.assert_allclose(restored[:, 0], restored[:, 2], atol=1e-6)
    np.testing.assert_allclose(colour_table("gray")[:, 0], np.linspace(0, 1, 256), atol=1e-7)


def test_a_colour_map_is_a_256_entry_table_from_matplotlib():
    matplotlib = pytest.importorskip("matplotlib")
    table = colour_table("magma")

    assert table.shape == (256, 3) and table.dtype == np.float32 and not table.flags.writeable
    np.testing.assert_allclose(table, matplotlib.colormaps["magma"].colors, atol=1e-7)


def test_silence_is_the_floor_colour_everywhere_without_nan():
    config = ImageConfig()

    images = spectrogram_images([np.zeros(2 * SR, dtype=np.float32)], config=config).images
    restored = denormalise(images, mean=config.mean, std=config.std)

    assert np.isfinite(images).all()
    floor_rgb = colour_table("magma")[0]  # the darkest colour of the map
    np.testing.assert_allclose(restored, np.broadcast_to(floor_rgb[:, None, None], restored.shape), atol=1e-6)


def test_pool_averages_each_clips_pictures():
    config = ImageConfig()
    batch = ImageBatch(np.zeros((3, 3, 224, 224), np.float32), np.array([0, 0, 1]), 2, config)

    pooled = batch.pool(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))

    np.testing.assert_allclose(pooled, [[2.0, 3.0], [5.0, 6.0]])
    assert pooled.dtype == np.float32
    with pytest.raises(SonicError, match=r"need \(3, dim\)"):
        batch.pool(np.zeros((2, 4)))


def test_to_tensor_shares_the_array_when_torch_is_installed():
    torch = pytest.importorskip("torch")
    batch = spectrogram_images([tone(440.0, 1.0, SR)], config=ImageConfig())

    tensor = batch.to_tensor()

    assert tensor.dtype == torch.float32 and tuple(tensor.shape) == (1, 3, 224, 224)
    assert np.shares_memory(tensor.numpy(), batch.images)


def test_to_tensor_without_torch_says_how_to_install_it(monkeypatch):
    batch = spectrogram_images([tone(440.0, 1.0, SR)], config=ImageConfig())
    monkeypatch.setitem(sys.modules, "torch", None)  # what `import torch` sees when it is not installed

    with pytest.raises(SonicError, match=r"needs PyTorch.*pip install 'sonic\[models\]'.*torch>=2\.4,<3"):
        batch.to_tensor()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"colormap": "magam"}, r"unknown colour map 'magam'; known: .*magma.*viridis"),
        ({"colormap": 7}, r"colormap must be a colour map's name, got 7"),
        ({"fit": "square"}, r"unknown image fit 'square'; known: tiles, resize"),
        ({"image_size": 0}, r"image_size must be a positive integer, got 0"),
        ({"image_size": 224.0}, r"image_size must be a positive integer, got 224\.0"),
        ({"tile_overlap": 1.0}, r"tile_overlap must be a fraction in \[0, 1\), got 1\.0"),
        ({"top_db": 0}, r"top_db must be a positive number"),
        ({"fmax_hz": 16000.0}, r"fmax_hz <= 11025 \(the Nyquist frequency at 22050 Hz\)"),
        ({"std": (0.2, 0.0, 0.2)}, r"std must be positive on every channel"),
        ({"mean": (0.5, 0.5)}, r"mean must be three numbers \(R, G, B\)"),
    ],
)
def test_a_bad_option_is_one_sonic_error_sentence(options, message):
    with pytest.raises(SonicError, match=message) as raised:
        ImageConfig(**options)

    assert "\n" not in str(raised.value)


def test_waveforms_at_another_rate_or_malformed_are_refused():
    with pytest.raises(AudioError, match=r"at 44100 Hz do not match the image config's 22050 Hz"):
        spectrogram_images([tone(440.0, 1.0, 44100)], config=ImageConfig(), sample_rate=44100)
    with pytest.raises(AudioError, match=r"waveform 1 of the batch is empty"):
        spectrogram_images([tone(440.0, 1.0, SR), np.zeros(0, np.float32)], config=ImageConfig())
    with pytest.raises(AudioError, match=r"waveform 0 of the batch has shape \(2, 22050\); need mono"):
        spectrogram_images([np.zeros((2, SR), np.float32)], config=ImageConfig())


def test_config_takes_lists_for_mean_and_std_and_stays_hashable():
    config = ImageConfig(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])

    assert config.mean == (0.5, 0.5, 0.5) and hash(config) == hash(ImageConfig(mean=(0.5,) * 3, std=(0.5,) * 3))
    assert spectrogram_images([], config=config).images.shape == (0, 3, 224, 224)
