"""MuQ (``muq``, ``muq-mulan``): OpenMuQ's music models at 24 kHz, as modules of ours.

The ``muq`` package (0.1.0) installs beside our pins but does not run here: it imports ``torchaudio``,
and the only torchaudio on PyPI for it (2.11.1) is a CUDA build whose ``_torchaudio.so`` needs
``libc10_cuda.so``, which torch 2.13.0+cpu lacks (``import torchaudio`` fails). Its model is small to
state, so :mod:`sonic.tails.models.mel_conformer` builds it with the same parameter names; the
conformer is transformers' own ``Wav2Vec2ConformerEncoder``, as in the package.

A published checkpoint (``OpenMuQ/MuQ-large-msd-iter``) is a folder with ``config.json`` (the
package's ``MuQConfig``: ``encoder_dim``, ``encoder_depth``, ``conv_dim``, ``stat`` with the mel
mean and standard deviation, ``w2v2_config`` for the conformer...) and ``model.safetensors`` whose
names start with ``model.``; the pre-training heads (``linear``, ``cls_token``, quantizers) are
ignored. 13 hidden states of 1024 at 25 frames/s. ``muq-mulan`` (the music-text model) adds its
audio head on top: :mod:`sonic.tails.models.muq_mulan`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sonic.errors import SonicError
from sonic.tails.models.checkpoints import (
    find_weights,
    modern_names,
    read_json,
    read_state_dict,
)
from sonic.tails.models.huggingface import require_transformers
from sonic.tails.models.mel_conformer import MelConformerConfig, loaded_mel_conformer
from sonic.tails.models.windowed import WaveformModel, WindowedEmbedder, transformer_options
from sonic.tails.neural import resolve_checkpoint

CHECKPOINTS = {"muq": "OpenMuQ/MuQ-large-msd-iter", "muq-mulan": "OpenMuQ/MuQ-MuLan-large"}
DEFAULT_WINDOW_SECONDS = 30.0
#: MuQ-MuLan embeds 10 s clips (``mulan.clip_secs``) and averages their latents.
MULAN_WINDOW_SECONDS = 10.0
FEATURE = "melspec_2048"


def from_name(name: str, **options: Any) -> WindowedEmbedder:
    """The MuQ embedder ``name`` with ``options`` (:class:`~sonic.tails.models.windowed.TransformerOptions`)."""
    if name not in CHECKPOINTS:
        raise SonicError(f"unknown MuQ model {name!r}; known: {', '.join(CHECKPOINTS)}")
    chosen = transformer_options(name, options, checkpoint=CHECKPOINTS[name])
    if name == "muq-mulan":
        from sonic.tails.models.muq_mulan import load_muq_mulan

        model = load_muq_mulan(chosen.checkpoint)
        return WindowedEmbedder(name, model, chosen, default_window_seconds=MULAN_WINDOW_SECONDS)
    return WindowedEmbedder(name, load_muq(chosen.checkpoint), chosen, default_window_seconds=DEFAULT_WINDOW_SECONDS)


def muq_config(config: dict[str, Any], *, source: str) -> MelConformerConfig:
    """The :class:`MelConformerConfig` of a MuQ ``config.json``; what this module cannot run is refused."""
    if config.get("features", [FEATURE]) != [FEATURE]:
        raise SonicError(f"MuQ config {source!r} asks for features {config.get('features')}; only [{FEATURE!r}] exists")
    if int(config.get("label_rate", 25)) != 25:
        raise SonicError(f"MuQ config {source!r} has label_rate {config.get('label_rate')}; the 24 kHz MuQ runs at 25")
    stat = config.get("stat") or {}
    try:
        mean, std = float(stat[f"{FEATURE}_mean"]), float(stat[f"{FEATURE}_std"])
    except (KeyError, TypeError, ValueError):
        raise SonicError(f"MuQ config {source!r} lacks stat.{FEATURE}_mean and stat.{FEATURE}_std") from None
    return MelConformerConfig(
        conv_dim=int(config.get("conv_dim", 512)),
        encoder_dim=int(config.get("encoder_dim", 1024)),
        encoder_depth=int(config.get("encoder_depth", 12)),
        mel_mean=mean,
        mel_std=std,
        conformer=dict(config.get("w2v2_config") or {}),
        n_mels=int(config.get("n_mels", 128)),
        hop_length=int(config.get("hop_length", 240)),
    )


def load_muq(checkpoint: str) -> WaveformModel:
    """The MuQ checkpoint ``checkpoint`` (hub name or folder) as a :class:`WaveformModel`."""
    require_transformers()
    folder = resolve_checkpoint(checkpoint, needs=("config.json",))
    config = muq_config(read_json(folder / "config.json"), source=str(folder / "config.json"))
    weights = find_weights(folder)
    state = modern_names(read_state_dict(weights), strip_prefixes=("model.",))
    return loaded_mel_conformer(config, state, weights=weights, checkpoint=str(checkpoint))


def tiny_embedder(name: str, folder: Path) -> WindowedEmbedder:
    """For the embedder contract: ``name`` on tiny random checkpoints in the published formats under ``folder``
    (MuQ at its published width, one layer; MuQ-MuLan's head over it, with its 512-d latent)."""
    from sonic.tails.models.tiny import tiny_muq, tiny_muq_mulan

    backbone, state = tiny_muq(folder / "MuQ-large-msd-iter", encoder_dim=1024, encoder_depth=1)
    if name == "muq":
        return from_name(name, checkpoint=str(backbone), device="cpu")
    mulan, _ = tiny_muq_mulan(folder / "MuQ-MuLan-large", backbone, state, model_dim=1024, dim_latent=512)
    return from_name(name, checkpoint=str(mulan), device="cpu")
