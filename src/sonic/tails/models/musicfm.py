"""MusicFM (``musicfm``): ByteDance's music foundation model at 24 kHz, as a module of ours.

MusicFM (MIT) has no package; its published files (hub ``minzwon/MusicFM``) are
``pretrained_msd.pt`` (a ``torch.save`` of ``{"state_dict": {"model.<name>": tensor}}``, read here
with ``weights_only=True``) and ``msd_stats.json`` (the log-mel ``melspec_2048_mean`` and
``melspec_2048_std``); the FMA pair (``pretrained_fma.pt``, ``fma_stats.json``) is used when the MSD
one is absent. The network is the one MuQ later reused (:mod:`sonic.tails.models.mel_conformer`):
512-channel residual subsampling, then a 12-layer 1024-d conformer configured as
``facebook/wav2vec2-conformer-rope-large-960h-ft`` (16 heads, 4096 feed-forward, swish, rotary
positions), whose values are fixed here rather than fetched; widths, depth, feed-forward size and
depthwise kernel are read from the tensors' shapes (so a smaller checkpoint of the same design loads).

The vector is the chosen hidden state averaged over TIME (the earlier research code averaged over
channels and kept a 750-long time profile).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sonic.errors import SonicError
from sonic.tails.models.checkpoints import modern_names, read_json, read_state_dict
from sonic.tails.models.huggingface import require_transformers
from sonic.tails.models.mel_conformer import MelConformerConfig, loaded_mel_conformer
from sonic.tails.models.windowed import WaveformModel, WindowedEmbedder, transformer_options
from sonic.tails.models.hub import HubFiles, checkpoint_files

CHECKPOINTS = {"musicfm": "minzwon/MusicFM"}
#: What a hub name downloads (and ``sonic fetch``): the MSD checkpoint and its statistics, not the FMA pair.
HUB_FILES = {"musicfm": (HubFiles(CHECKPOINTS["musicfm"], required=("pretrained_msd.pt", "msd_stats.json")),)}
DEFAULT_WINDOW_SECONDS = 30.0
#: (weights, statistics) file pairs looked for in a checkpoint folder, in order.
FILE_PAIRS = (("pretrained_msd.pt", "msd_stats.json"), ("pretrained_fma.pt", "fma_stats.json"))
#: facebook/wav2vec2-conformer-rope-large-960h-ft's conformer values that differ from transformers' defaults.
ROPE_LARGE = {
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "hidden_act": "swish",
    "position_embeddings_type": "rotary",
    "rotary_embedding_base": 10000,
    "conv_depthwise_kernel_size": 31,
    "layer_norm_eps": 1e-5,
}


def from_name(name: str, **options: Any) -> WindowedEmbedder:
    """The MusicFM embedder ``name`` with ``options`` (:class:`~sonic.tails.models.windowed.TransformerOptions`)."""
    if name not in CHECKPOINTS:
        raise SonicError(f"unknown MusicFM model {name!r}; known: {', '.join(CHECKPOINTS)}")
    chosen = transformer_options(name, options, checkpoint=CHECKPOINTS[name])
    model = load_musicfm(chosen.checkpoint, revision=chosen.revision)
    return WindowedEmbedder(name, model, chosen, default_window_seconds=DEFAULT_WINDOW_SECONDS)


def musicfm_config(stats: dict[str, Any], state: dict[str, Any], *, source: str) -> MelConformerConfig:
    """The MusicFM network for the log-mel statistics ``stats`` and the tensors ``state`` (names without ``model.``)."""
    try:
        mean, std = float(stats["melspec_2048_mean"]), float(stats["melspec_2048_std"])
    except (KeyError, TypeError, ValueError):
        raise SonicError(f"MusicFM statistics {source!r} lack melspec_2048_mean and melspec_2048_std") from None
    try:
        layers = {int(key.split(".")[2]) for key in state if key.startswith("conformer.layers.")}
        ffn = state["conformer.layers.0.ffn1.intermediate_dense.weight"]
        depthwise = state["conformer.layers.0.conv_module.depthwise_conv.weight"]
        return MelConformerConfig(
            conv_dim=int(state["conv.conv.0.conv1.weight"].shape[0]),
            encoder_dim=int(state["conv.linear.weight"].shape[0]),
            encoder_depth=len(layers),
            mel_mean=mean,
            mel_std=std,
            conformer={
                **ROPE_LARGE,
                "intermediate_size": int(ffn.shape[0]),
                "conv_depthwise_kernel_size": int(depthwise.shape[-1]),
            },
        )
    except (KeyError, IndexError, ValueError):
        raise SonicError(f"weights in {source!r} are not a MusicFM checkpoint (no conv and conformer layers)") from None


def load_musicfm(checkpoint: str, *, revision: str | None = None) -> WaveformModel:
    """The MusicFM checkpoint ``checkpoint`` (hub name or folder) as a :class:`WaveformModel`.

    A folder holding the MSD pair is read as MSD, one holding only the FMA pair as FMA.
    """
    require_transformers()
    folder = Path(checkpoint).expanduser()
    pairs = FILE_PAIRS if folder.is_dir() else FILE_PAIRS[:1]
    pair = next(((w, s) for w, s in pairs if (folder / w).is_file() and (folder / s).is_file()), pairs[0])
    if folder.is_dir() and not all((folder / name).is_file() for name in pair):
        expected = " or ".join(f"{w} with {s}" for w, s in FILE_PAIRS)
        raise SonicError(f"MusicFM checkpoint folder {str(folder)!r} lacks its files; expected {expected}")
    files = checkpoint_files(checkpoint, HubFiles(checkpoint, required=pair), name="musicfm", revision=revision)
    weights, stats = files.path(pair[0]), files.path(pair[1])
    state = modern_names(read_state_dict(weights), strip_prefixes=("model.",))
    config = musicfm_config(read_json(stats), state, source=str(weights))
    return loaded_mel_conformer(config, state, weights=weights, checkpoint=str(checkpoint), sources=(files,))
