"""Music2Vec (``music2vec-v1``): a data2vec-audio model trained on music, at 16 kHz.

The published checkpoint (``m-a-p/music2vec-v1``) is a plain transformers ``Data2VecAudioModel``
folder (``model_type`` ``data2vec-audio``), so transformers' own class is built from its config and
the weights are copied in by name. 13 hidden states (the encoder's input and 12 layers), 768-d.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sonic.errors import SonicError
from sonic.tails.models.huggingface import config_values, load_waveform_model
from sonic.tails.models.windowed import WindowedEmbedder, transformer_options

if TYPE_CHECKING:
    import torch

CHECKPOINTS = {"music2vec-v1": "m-a-p/music2vec-v1"}
SAMPLE_RATE = 16_000
#: The study embedded each 30 s clip whole.
DEFAULT_WINDOW_SECONDS = 30.0


def from_name(name: str, **options: Any) -> WindowedEmbedder:
    """The Music2Vec embedder ``name`` with ``options`` (:class:`~sonic.tails.models.windowed.TransformerOptions`)."""
    if name not in CHECKPOINTS:
        raise SonicError(f"unknown Music2Vec model {name!r}; known: {', '.join(CHECKPOINTS)}")
    chosen = transformer_options(name, options, checkpoint=CHECKPOINTS[name])
    model = load_waveform_model(
        name,
        chosen.checkpoint,
        build=build_data2vec_audio,
        sample_rate=SAMPLE_RATE,
        strip_prefixes=("data2vec_audio.",),
    )
    return WindowedEmbedder(name, model, chosen, default_window_seconds=DEFAULT_WINDOW_SECONDS)


def build_data2vec_audio(config: dict[str, Any]) -> torch.nn.Module:
    """transformers' ``Data2VecAudioModel`` for a ``data2vec-audio`` ``config.json`` (random weights, eval mode)."""
    from transformers import Data2VecAudioConfig, Data2VecAudioModel

    if config.get("model_type") != "data2vec-audio":
        raise SonicError(f"a Music2Vec config.json has model_type 'data2vec-audio', got {config.get('model_type')!r}")
    return Data2VecAudioModel(Data2VecAudioConfig(**config_values(config))).eval()
