"""The MuQ backbone (``OpenMuQ/MuQ-large-msd-iter``), shared by ``muq`` and ``muq-mulan`` (:mod:`sonic.tails.models.muq`).

A published checkpoint is a folder with ``config.json`` (the package's ``MuQConfig``: ``encoder_dim``,
``encoder_depth``, ``conv_dim``, ``stat`` with the mel mean and standard deviation, ``w2v2_config`` for
the conformer...) and ``model.safetensors`` whose names start with ``model.``; the pre-training heads
(``linear``, ``cls_token``, quantizers) are ignored. 13 hidden states of 1024 at 25 frames/s.
"""

from __future__ import annotations

from typing import Any

from sonic.errors import SonicError
from sonic.tails.models.checkpoints import modern_names, read_json, read_state_dict
from sonic.tails.models.hub import HubFiles, checkpoint_files
from sonic.tails.models.huggingface import WEIGHTS, require_transformers
from sonic.tails.models.mel_conformer import MelConformerConfig, loaded_mel_conformer
from sonic.tails.models.windowed import WaveformModel

FEATURE = "melspec_2048"


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


def load_muq(checkpoint: str, *, revision: str | None = None) -> WaveformModel:
    """The MuQ checkpoint ``checkpoint`` (hub name or folder) as a :class:`WaveformModel`."""
    require_transformers()
    spec = HubFiles(checkpoint, required=("config.json",), weights=WEIGHTS)
    files = checkpoint_files(checkpoint, spec, name="muq", revision=revision)
    config = muq_config(read_json(files.path("config.json")), source=str(files.path("config.json")))
    weights = files.weights(spec)
    state = modern_names(read_state_dict(weights), strip_prefixes=("model.",))
    return loaded_mel_conformer(config, state, weights=weights, checkpoint=str(checkpoint), sources=(files,))
