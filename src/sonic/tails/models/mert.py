"""MERT-v1 (``mert-v1-95m``, ``mert-v1-330m``): music transformers at 24 kHz, without remote code.

MERT-v1's published ``modeling_MERT.py`` subclasses transformers' ``HubertModel`` and keeps its
parameter names: the same convolutional feature encoder (``feat_extract_norm`` group or layer), the
same feature projection (a layer norm when ``feat_proj_layer_norm``), the same positional convolution
and encoder layers. What it adds, and how it maps here:

- ``feature_extractor_cqt``: a CQT input branch, false in every MERT-v1 checkpoint; a config with it
  true is refused (it would change the projection's input width).
- ``deepnorm``: post-norm layers whose residual is scaled by ``(2 * layers) ** 0.25``; built here by
  :class:`DeepNormLayer`, a ``HubertEncoderLayer`` with that one change (same parameter names).
- ``attention_relax``: subtracts each row's maximum before the softmax, scaled; softmax is unchanged by
  a shift, so the output is the same up to rounding, and ``HubertAttention`` is used as it is.

So the model is transformers' ``HubertModel`` built from a ``HubertConfig`` carrying MERT's values,
with the published weights copied in by name. Hidden states: 13 (95M) or 25 (330M), the first being
the encoder's input after the positional convolution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sonic.errors import SonicError
from sonic.tails.models.huggingface import config_values, load_waveform_model, transformers_files
from sonic.tails.models.windowed import WindowedEmbedder, transformer_options

if TYPE_CHECKING:
    import torch

#: Embedder name -> the published checkpoint (hub name).
CHECKPOINTS = {"mert-v1-95m": "m-a-p/MERT-v1-95M", "mert-v1-330m": "m-a-p/MERT-v1-330M"}
#: What ``sonic fetch`` downloads: config, preprocessor config and one weights file (not the fairseq ``.pt``).
HUB_FILES = {name: (transformers_files(repo),) for name, repo in CHECKPOINTS.items()}
SAMPLE_RATE = 24_000
#: MERT-v1 was shown 5 s excerpts in training; the study embedded each 30 s clip whole.
DEFAULT_WINDOW_SECONDS = 30.0
#: MERT's own config keys, handled here rather than passed to HubertConfig.
MERT_KEYS = ("feature_extractor_cqt", "feature_extractor_cqt_bins", "deepnorm", "attention_relax", "sample_rate")


def from_name(name: str, **options: Any) -> WindowedEmbedder:
    """The MERT-v1 embedder ``name`` (``mert-v1-95m`` or ``mert-v1-330m``) with ``options``.

    Options: those of :class:`~sonic.tails.models.windowed.TransformerOptions`; ``checkpoint``
    defaults to the published hub name (downloaded into the Hugging Face cache on first use).
    """
    if name not in CHECKPOINTS:
        raise SonicError(f"unknown MERT model {name!r}; known: {', '.join(CHECKPOINTS)}")
    chosen = transformer_options(name, options, checkpoint=CHECKPOINTS[name])
    model = load_waveform_model(
        name, chosen.checkpoint, build=lambda config: (build_mert(config), {}), sample_rate=SAMPLE_RATE,
        revision=chosen.revision,
    )
    return WindowedEmbedder(name, model, chosen, default_window_seconds=DEFAULT_WINDOW_SECONDS)


def build_mert(config: dict[str, Any]) -> torch.nn.Module:
    """transformers' ``HubertModel`` for a MERT ``config.json`` (random weights, eval mode)."""
    from transformers import HubertConfig, HubertModel

    if config.get("model_type") not in ("mert_model", "hubert"):
        raise SonicError(f"a MERT config.json has model_type 'mert_model', got {config.get('model_type')!r}")
    if config.get("feature_extractor_cqt", False):
        raise SonicError("this MERT config has feature_extractor_cqt true (a CQT input branch); MERT-v1 has it false")
    deepnorm = bool(config.get("deepnorm", False))
    hubert = HubertConfig(**config_values(config, drop=MERT_KEYS))
    if deepnorm and hubert.do_stable_layer_norm:
        raise SonicError(
            "this MERT config asks for deepnorm with do_stable_layer_norm; MERT allows deepnorm only post-norm"
        )
    model = HubertModel(hubert)
    if deepnorm:
        layer_class = deep_norm_layer_class()
        model.encoder.layers = type(model.encoder.layers)(layer_class(hubert) for _ in model.encoder.layers)
    return model.eval()


def deep_norm_layer_class() -> type:
    """``DeepNormLayer``: a post-norm ``HubertEncoderLayer`` whose residuals are scaled (built lazily)."""
    from transformers.models.hubert.modeling_hubert import HubertEncoderLayer

    class DeepNormLayer(HubertEncoderLayer):
        """``x = norm(alpha * x + attention(x)); x = final_norm(alpha * x + feed_forward(x))``, alpha = (2L)^0.25."""

        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self.residual_alpha = (2.0 * config.num_hidden_layers) ** 0.25

        def forward(self, hidden_states, attention_mask=None, **kwargs):  # noqa: ANN001 - transformers' signature
            attended, _ = self.attention(hidden_states, attention_mask=attention_mask, **kwargs)
            hidden_states = self.layer_norm(hidden_states * self.residual_alpha + self.dropout(attended))
            return self.final_layer_norm(hidden_states * self.residual_alpha + self.feed_forward(hidden_states))

    return DeepNormLayer
