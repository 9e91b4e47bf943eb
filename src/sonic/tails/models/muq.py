"""MuQ (``muq``, ``muq-mulan``): OpenMuQ's music models at 24 kHz, as modules of ours.

The ``muq`` package (0.1.0) installs beside our pins but does not run here: it imports ``torchaudio``,
and the only torchaudio on PyPI for it (2.11.1) is a CUDA build whose ``_torchaudio.so`` needs
``libc10_cuda.so``, which torch 2.13.0+cpu lacks (``import torchaudio`` fails). Its model is small to
state, so :mod:`sonic.tails.models.mel_conformer` builds it with the same parameter names; the
conformer is transformers' own ``Wav2Vec2ConformerEncoder``, as in the package.

The MuQ backbone and its checkpoint format: :mod:`sonic.tails.models.muq_backbone`. ``muq-mulan`` (the
music-text model) adds its audio head on top: :mod:`sonic.tails.models.muq_mulan`.
"""

from __future__ import annotations

from typing import Any

from sonic.errors import SonicError
from sonic.tails.models.hub import HubFiles
from sonic.tails.models.huggingface import WEIGHTS
from sonic.tails.models.muq_backbone import load_muq
from sonic.tails.models.muq_mulan import load_muq_mulan
from sonic.tails.models.windowed import WindowedEmbedder, transformer_options

CHECKPOINTS = {"muq": "OpenMuQ/MuQ-large-msd-iter", "muq-mulan": "OpenMuQ/MuQ-MuLan-large"}
#: What ``sonic fetch`` downloads: config and one weights file; MuQ-MuLan also its backbone's config.json
#: (the backbone's weights are inside MuQ-MuLan's own file).
HUB_FILES = {
    "muq": (HubFiles(CHECKPOINTS["muq"], required=("config.json",), weights=WEIGHTS),),
    "muq-mulan": (
        HubFiles(CHECKPOINTS["muq-mulan"], required=("config.json",), weights=WEIGHTS),
        HubFiles(CHECKPOINTS["muq"], required=("config.json",)),
    ),
}
DEFAULT_WINDOW_SECONDS = 30.0
#: MuQ-MuLan embeds 10 s clips (``mulan.clip_secs``) and averages their latents.
MULAN_WINDOW_SECONDS = 10.0


def from_name(name: str, **options: Any) -> WindowedEmbedder:
    """The MuQ embedder ``name`` with ``options`` (:class:`~sonic.tails.models.windowed.TransformerOptions`;
    ``muq-mulan`` also takes ``backbone``: a local folder holding the MuQ ``config.json`` its config names,
    instead of that hub name)."""
    if name not in CHECKPOINTS:
        raise SonicError(f"unknown MuQ model {name!r}; known: {', '.join(CHECKPOINTS)}")
    backbone = options.pop("backbone", None) if name == "muq-mulan" else None
    chosen = transformer_options(name, options, checkpoint=CHECKPOINTS[name])
    if name == "muq-mulan":
        model = load_muq_mulan(chosen.checkpoint, backbone=backbone, revision=chosen.revision)
        return WindowedEmbedder(name, model, chosen, default_window_seconds=MULAN_WINDOW_SECONDS, default_tail="wrap")
    model = load_muq(chosen.checkpoint, revision=chosen.revision)
    return WindowedEmbedder(name, model, chosen, default_window_seconds=DEFAULT_WINDOW_SECONDS)
