"""Music2Vec (``music2vec-v1``): a data2vec-audio model trained on music, at 16 kHz.

The published checkpoint (``m-a-p/music2vec-v1``) is a transformers ``Data2VecAudioModel`` folder
(``model_type`` ``data2vec-audio``), so transformers' own class is built from its config and the
weights are copied in by name. 13 hidden states (the encoder's input and 12 layers), 768-d.

Its ``config.json`` was written by a converter, not by transformers: it is reported to hold
``vocab_size`` as a file path (the fairseq dictionary) and keys of wav2vec2's pre-training heads.
transformers 5's strict config classes reject the path, so only the fields the encoder reads are
passed on (:data:`HEAD_ONLY` and keys ``Data2VecAudioConfig`` does not know are dropped, and named
in the manifest's ``config_keys_dropped``).

The model card loads its feature extractor from ``facebook/data2vec-audio-base-960h`` rather than
shipping ``preprocessor_config.json``; when the folder has none, that processor's values are used
(:data:`DATA2VEC_PREPROCESSOR`), and the manifest says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sonic.errors import SonicError
from sonic.tails.models.huggingface import BOOKKEEPING, load_waveform_model, transformers_files
from sonic.tails.models.windowed import WindowedEmbedder, transformer_options

if TYPE_CHECKING:
    import torch

CHECKPOINTS = {"music2vec-v1": "m-a-p/music2vec-v1"}
#: What ``sonic fetch`` downloads (``preprocessor_config.json`` when the repository has one).
HUB_FILES = {name: (transformers_files(repo, preprocessor=False),) for name, repo in CHECKPOINTS.items()}
SAMPLE_RATE = 16_000
#: The study embedded each 30 s clip whole.
DEFAULT_WINDOW_SECONDS = 30.0
#: ``facebook/data2vec-audio-base-960h``'s ``preprocessor_config.json`` (a ``Wav2Vec2FeatureExtractor``),
#: which music2vec-v1's model card loads: zero mean and unit variance per input, 16 kHz mono.
DATA2VEC_PREPROCESSOR = {
    "source": "facebook/data2vec-audio-base-960h's preprocessor_config.json (the processor the model card names)",
    "do_normalize": True,
    "feature_extractor_type": "Wav2Vec2FeatureExtractor",
    "feature_size": 1,
    "padding_side": "right",
    "padding_value": 0.0,
    "return_attention_mask": True,
    "sampling_rate": 16000,
}
#: Config fields only the task heads read (CTC, sequence and x-vector classification, tokens).
HEAD_ONLY = frozenset(
    {
        "vocab_size", "ctc_loss_reduction", "ctc_zero_infinity", "use_weighted_layer_sum", "classifier_proj_size",
        "tdnn_dim", "tdnn_kernel", "tdnn_dilation", "xvector_output_dim", "pad_token_id", "bos_token_id",
        "eos_token_id", "final_dropout", "id2label", "label2id", "problem_type",
    }
)  # fmt: skip


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
        revision=chosen.revision,
        strip_prefixes=("data2vec_audio.",),
        default_preprocessor=DATA2VEC_PREPROCESSOR,
    )
    return WindowedEmbedder(name, model, chosen, default_window_seconds=DEFAULT_WINDOW_SECONDS)


def encoder_config(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The fields of a ``data2vec-audio`` ``config.json`` the encoder reads, and the keys dropped."""
    import dataclasses

    from transformers import Data2VecAudioConfig

    known = {field.name for field in dataclasses.fields(Data2VecAudioConfig)} - HEAD_ONLY - BOOKKEEPING
    kept = {key: value for key, value in config.items() if key in known}
    dropped = sorted(key for key in config if key not in kept and key not in BOOKKEEPING)
    return kept, dropped


def build_data2vec_audio(config: dict[str, Any]) -> tuple[torch.nn.Module, dict[str, Any]]:
    """transformers' ``Data2VecAudioModel`` for a ``data2vec-audio`` ``config.json`` (random weights, eval
    mode), and the manifest's ``config_keys_dropped``."""
    from transformers import Data2VecAudioConfig, Data2VecAudioModel

    if config.get("model_type") != "data2vec-audio":
        raise SonicError(f"a Music2Vec config.json has model_type 'data2vec-audio', got {config.get('model_type')!r}")
    kept, dropped = encoder_config(config)
    try:
        built = Data2VecAudioConfig(**kept)
    except Exception as error:  # noqa: BLE001 - transformers' strict validation: an encoder field of a wrong type
        reason = " ".join(str(error).split())
        raise SonicError(f"the Music2Vec config.json has an encoder field transformers rejects ({reason})") from None
    return Data2VecAudioModel(built).eval(), {"config_keys_dropped": dropped}
