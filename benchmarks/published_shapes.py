"""The audio and picture embedders at their published sizes, with random weights, for cost measurements.

Nothing is downloaded: each network is built by sonic's own model module from the published
architecture (the values of each checkpoint's ``config.json`` or the module's defaults for it) and
keeps the weights its constructor draws. The cost of a forward pass depends on the shapes, not on the
values, so these embedders cost what the published ones cost; their vectors mean nothing.

:data:`BUILDERS` maps an embedder name to ``(folder, device, batch_size) -> Embedder``; ``folder`` is a
scratch folder for the few families whose loader reads a file (MusiCNN, DINO).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

#: MERT-v1-95M's and MERT-v1-330M's published config.json values that set the cost (REFERENCE.md 11:
#: 95M post-norm, 330M pre-norm; both the 7-layer 512-channel feature encoder, 75 frames/s at 24 kHz).
MERT_FEATURE_ENCODER = {
    "conv_dim": [512] * 7, "conv_kernel": [10, 3, 3, 3, 3, 2, 2], "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "num_feat_extract_layers": 7, "num_conv_pos_embeddings": 128, "num_conv_pos_embedding_groups": 16,
    "feat_extract_norm": "group", "conv_bias": False, "feat_proj_layer_norm": True, "model_type": "mert_model",
    "sample_rate": 24000,
}  # fmt: skip
MERT = {
    "mert-v1-95m": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
                    "do_stable_layer_norm": False},
    "mert-v1-330m": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                     "intermediate_size": 4096, "do_stable_layer_norm": True},
}  # fmt: skip
#: music2vec-v1: data2vec-audio base (transformers' Data2VecAudioConfig defaults are that model).
MUSIC2VEC = {
    "model_type": "data2vec-audio", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "intermediate_size": 3072, "conv_dim": [512] * 7, "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2], "num_feat_extract_layers": 7, "conv_pos_kernel_size": 19,
    "num_conv_pos_embeddings": 5, "num_conv_pos_embedding_groups": 16,
}  # fmt: skip
#: MuQ-large-msd-iter's config.json (the backbone of muq and muq-mulan): 12 conformer layers of 1024.
MUQ = {"conv_dim": 512, "encoder_dim": 1024, "encoder_depth": 12, "stat": {"melspec_2048_mean": 6.768,
       "melspec_2048_std": 18.417}, "w2v2_config": {"num_attention_heads": 16, "intermediate_size": 4096,
       "hidden_act": "swish", "position_embeddings_type": "rotary", "rotary_embedding_base": 10000,
       "conv_depthwise_kernel_size": 31, "layer_norm_eps": 1e-5}}  # fmt: skip
#: The DINO ViTs (timm's shapes): width, depth, heads, patch, picture side, MLP width.
VITS = {"dino_vits16": (384, 12, 6, 16), "dino_vits8": (384, 12, 6, 8), "dino_vitb16": (768, 12, 12, 16),
        "dino_vitb8": (768, 12, 12, 8)}  # fmt: skip
#: MSD_musicnn's widths (musicnn 0.1.0: front end 1.6 x 128 timbral and 1.6 x 32 temporal filters,
#: 64 mid-end filters, 200 dense units, 50 tags).
MUSICNN = {"timbral": 204, "temporal": 51, "mid": 64, "units": 200, "tags": 50}


def _placeholder(folder: Path) -> Path:
    """A file standing in for the weights file in the manifest (the weights are random)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "RANDOM_WEIGHTS.txt"
    path.write_text("random weights drawn at construction; built for timing only\n")
    return path


def _windowed(name: str, folder: Path, device: str, batch_size: int, *, module: Any, hidden_states: Callable,
              sample_rate: int, hidden_size: int, n_hidden_states: int, min_samples: int, do_normalize: bool,
              window_seconds: float, tail: str = "drop") -> Any:
    from sonic.tails.models.windowed import TransformerOptions, WaveformModel, WindowedEmbedder

    weights = _placeholder(folder)
    model = WaveformModel(
        module=module.eval(), hidden_states=hidden_states, sample_rate=sample_rate, hidden_size=hidden_size,
        n_hidden_states=n_hidden_states, min_samples=min_samples, do_normalize=do_normalize,
        checkpoint="random weights (published shape)", weights_file=weights, weights_sha256="-",
    )
    options = TransformerOptions(checkpoint="random", device=device, batch_size=batch_size)
    return WindowedEmbedder(name, model, options, default_window_seconds=window_seconds, default_tail=tail)


def mert(name: str, folder: Path, device: str, batch_size: int) -> Any:
    from sonic.tails.models import mert as family
    from sonic.tails.models.huggingface import encoder_hidden_states
    from sonic.tails.models.windowed import min_input_samples

    config = {**MERT_FEATURE_ENCODER, **MERT[name]}
    return _windowed(
        name, folder, device, batch_size, module=family.build_mert(config), hidden_states=encoder_hidden_states,
        sample_rate=family.SAMPLE_RATE, hidden_size=config["hidden_size"],
        n_hidden_states=config["num_hidden_layers"] + 1,
        min_samples=min_input_samples(config["conv_kernel"], config["conv_stride"]), do_normalize=True,
        window_seconds=family.DEFAULT_WINDOW_SECONDS,
    )


def music2vec(name: str, folder: Path, device: str, batch_size: int) -> Any:
    from sonic.tails.models import music2vec as family
    from sonic.tails.models.huggingface import encoder_hidden_states
    from sonic.tails.models.windowed import min_input_samples

    module, _ = family.build_data2vec_audio(MUSIC2VEC)
    return _windowed(
        name, folder, device, batch_size, module=module, hidden_states=encoder_hidden_states,
        sample_rate=family.SAMPLE_RATE, hidden_size=768, n_hidden_states=13,
        min_samples=min_input_samples(MUSIC2VEC["conv_kernel"], MUSIC2VEC["conv_stride"]), do_normalize=True,
        window_seconds=family.DEFAULT_WINDOW_SECONDS,
    )


def encodecmae(name: str, folder: Path, device: str, batch_size: int) -> Any:
    from sonic.tails.models import encodecmae as family

    config = family.EncodecMAEConfig()  # the defaults are encodecmae-base's: 768 wide, 10 layers, 12 heads
    return _windowed(
        name, folder, device, batch_size, module=family.build_encodecmae(config),
        hidden_states=lambda model, waveforms: model(waveforms), sample_rate=family.SAMPLE_RATE,
        hidden_size=config.model_dim, n_hidden_states=config.num_layers + 1, min_samples=family.HOP_LENGTH,
        do_normalize=False, window_seconds=family.DEFAULT_WINDOW_SECONDS, tail="keep",
    )


def _mel_conformer(name: str, folder: Path, device: str, batch_size: int, *, config: Any,
                   window_seconds: float) -> Any:
    from sonic.tails.models import mel_conformer

    return _windowed(
        name, folder, device, batch_size, module=mel_conformer.build_mel_conformer(config),
        hidden_states=mel_conformer.mel_conformer_hidden_states, sample_rate=mel_conformer.SAMPLE_RATE,
        hidden_size=config.encoder_dim, n_hidden_states=config.encoder_depth + 1,
        min_samples=mel_conformer.min_samples(config.n_fft), do_normalize=False, window_seconds=window_seconds,
    )


def muq(name: str, folder: Path, device: str, batch_size: int) -> Any:
    from sonic.tails.models import muq as family
    from sonic.tails.models.muq_backbone import muq_config

    if name == "muq":
        return _mel_conformer(name, folder, device, batch_size, config=muq_config(MUQ, source="published shape"),
                              window_seconds=family.DEFAULT_WINDOW_SECONDS)
    return muq_mulan(name, folder, device, batch_size)


def muq_mulan(name: str, folder: Path, device: str, batch_size: int) -> Any:
    """MuQ-MuLan's audio tower: the MuQ backbone, then its 8-layer 768-wide head into the 512-d latent."""
    import torch

    from sonic.tails.models import mel_conformer, muq as family
    from sonic.tails.models.mulan_head import MulanHeadConfig, build_mulan_head
    from sonic.tails.models.muq_backbone import muq_config
    from sonic.tails.neural import select_layer

    backbone = muq_config(MUQ, source="published shape")
    head = MulanHeadConfig()  # the defaults are MuQ-MuLan-large's audio tower
    module = torch.nn.Module()
    module.backbone = mel_conformer.build_mel_conformer(backbone)
    module.head = build_mulan_head(head)

    def latent(model: Any, waveforms: Any) -> tuple:
        return (model.head(select_layer(model.backbone(waveforms), -1))[:, None, :],)

    return _windowed(
        name, folder, device, batch_size, module=module, hidden_states=latent, sample_rate=mel_conformer.SAMPLE_RATE,
        hidden_size=head.dim_latent, n_hidden_states=1, min_samples=mel_conformer.min_samples(backbone.n_fft),
        do_normalize=False, window_seconds=family.MULAN_WINDOW_SECONDS, tail="wrap",
    )


def musicfm(name: str, folder: Path, device: str, batch_size: int) -> Any:
    from sonic.tails.models import musicfm as family
    from sonic.tails.models.mel_conformer import MelConformerConfig

    config = MelConformerConfig(conv_dim=512, encoder_dim=1024, encoder_depth=12, mel_mean=6.768, mel_std=18.417,
                                conformer=dict(family.ROPE_LARGE))  # fmt: skip
    return _mel_conformer(name, folder, device, batch_size, config=config,
                          window_seconds=family.DEFAULT_WINDOW_SECONDS)


def dino(name: str, folder: Path, device: str, batch_size: int) -> Any:
    """A ViT of the published shape in timm's checkpoint layout (timm's untrained initialisation), loaded
    as a downloaded one is; the random control is built as a user builds it (its own shape)."""
    from sonic.tails.models.dino import MODELS, DinoEmbedder, DinoOptions
    from sonic.tails.models.dino_random import RANDOM_CONTROLS, write_random_checkpoint
    from sonic.tails.models.vit import ViTShape

    if name in RANDOM_CONTROLS:
        return DinoEmbedder(name, DinoOptions(device=device, batch_size=batch_size), random_folder=folder / name)
    width, depth, heads, patch = VITS[name]
    shape = ViTShape(embed_dim=width, depth=depth, num_heads=heads, patch_size=patch, img_size=224,
                     mlp_hidden=4 * width)
    timm_name = MODELS[name][0].split("/")[1].split(".")[0]  # timm/vit_small_patch16_224.dino -> vit_small_patch16_224
    write_random_checkpoint(folder / name, shape, architecture=timm_name, seed=0)
    return DinoEmbedder(name, DinoOptions(checkpoint=str(folder / name), device=device, batch_size=batch_size))


def musicnn(name: str, folder: Path, device: str, batch_size: int) -> Any:
    """MSD_musicnn's widths written in TensorFlow's checkpoint format and read as the wheel's are."""
    from sonic.tails.models.musicnn import from_name
    from sonic.testing.musicnn_tiny import tiny_musicnn, write_tf_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    write_tf_checkpoint(f"{folder}/", tiny_musicnn(**MUSICNN, optimizer=False))
    return from_name(name, checkpoint=str(folder), device=device)


def mfcc(name: str, folder: Path, device: str, batch_size: int) -> Any:
    from sonic.tails.base import EMBEDDERS

    return EMBEDDERS.create(name)


#: Embedder name -> builder ``(folder, device, batch_size) -> Embedder`` at the published size.
BUILDERS: dict[str, Callable[[Path, str, int], Any]] = {
    "mfcc_104": partial(mfcc, "mfcc_104"),
    "musicnn": partial(musicnn, "musicnn"),
    "mert-v1-95m": partial(mert, "mert-v1-95m"),
    "mert-v1-330m": partial(mert, "mert-v1-330m"),
    "music2vec-v1": partial(music2vec, "music2vec-v1"),
    "encodecmae-base": partial(encodecmae, "encodecmae-base"),
    "muq": partial(muq, "muq"),
    "muq-mulan": partial(muq_mulan, "muq-mulan"),
    "musicfm": partial(musicfm, "musicfm"),
    **{name: partial(dino, name) for name in (*VITS, "dino_vits16_random")},
}
