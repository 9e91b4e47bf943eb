"""Waveform models whose published checkpoints are transformers folders, loaded without remote code.

A folder (or hub repository) holds ``config.json``, ``preprocessor_config.json`` and one weights file
(``model.safetensors`` or ``pytorch_model.bin``); only those are downloaded. The config is turned into
one of transformers' own model classes by the model file (never through ``auto_map`` or
``trust_remote_code``); the weights are read as tensors only and copied in by name
(:mod:`sonic.tails.models.checkpoints`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sonic.errors import SonicError
from sonic.tails.models.checkpoints import load_parameters, modern_names, read_json, read_state_dict
from sonic.tails.models.hub import HubFiles, checkpoint_files
from sonic.tails.models.windowed import WaveformModel, min_input_samples
from sonic.tails.neural import sha256_file

if TYPE_CHECKING:
    import torch

#: Weight files looked for, in order of preference (the first present is the only one downloaded).
WEIGHTS = ("model.safetensors", "pytorch_model.bin")
MISSING_MODELS_EXTRA = "this model needs torch and transformers: pip install 'sonic[models]'"


def transformers_files(repo: str, *, preprocessor: bool = True) -> HubFiles:
    """The files of a transformers waveform checkpoint (``preprocessor``: whether its preprocessor config is required)."""
    required = ("config.json", "preprocessor_config.json") if preprocessor else ("config.json",)
    optional = () if preprocessor else ("preprocessor_config.json",)
    return HubFiles(repo, required=required, weights=WEIGHTS, optional=optional)


def require_transformers() -> None:
    """A SonicError naming the ``models`` extra when torch or transformers is missing."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise SonicError(MISSING_MODELS_EXTRA) from None


def encoder_hidden_states(module: torch.nn.Module, input_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Hidden states of a transformers wav2vec2-style model, first to last, last one as the model outputs it.

    transformers 5 records a pre-norm ("stable layer norm") encoder's last hidden state before its
    final layer norm; earlier releases (the ones MERT was published with) recorded it after. The
    model's ``last_hidden_state`` is that normed one, so it replaces the last entry.
    """
    output = module(input_values, output_hidden_states=True, return_dict=True)
    return (*output.hidden_states[:-1], output.last_hidden_state)


def load_waveform_model(
    name: str,
    checkpoint: str,
    *,
    build: Callable[[dict[str, Any]], tuple[torch.nn.Module, Mapping[str, Any]]],
    sample_rate: int,
    revision: str | None = None,
    strip_prefixes: Sequence[str] = (),
    default_preprocessor: Mapping[str, Any] | None = None,
    hidden_states: Callable[[torch.nn.Module, torch.Tensor], Sequence[torch.Tensor]] = encoder_hidden_states,
) -> WaveformModel:
    """Load the transformers-format checkpoint ``checkpoint`` (hub name or folder) for embedder ``name``.

    ``build(config)`` makes the module from the parsed ``config.json`` and says what the manifest
    should know about how (config keys it dropped...); ``sample_rate`` is the rate the model was
    trained at, which the preprocessor config must agree with. ``default_preprocessor``: the
    preprocessor config used when the checkpoint has none (None: it must have one).
    """
    require_transformers()
    spec = transformers_files(checkpoint, preprocessor=default_preprocessor is None)
    files = checkpoint_files(checkpoint, spec, name=name, revision=revision)
    config = read_json(files.path("config.json"))
    notes: dict[str, Any] = {}
    if files.has("preprocessor_config.json"):
        preprocessor = read_json(files.path("preprocessor_config.json"))
    else:
        preprocessor = dict(default_preprocessor or {})
        notes["preprocessor"] = preprocessor.pop("source", "default")
    rate = int(preprocessor.get("sampling_rate", sample_rate))
    declared = int(config.get("sample_rate", rate))
    if rate != sample_rate or declared != sample_rate:
        raise SonicError(
            f"checkpoint {checkpoint!r} declares {rate} Hz (preprocessor) and {declared} Hz (config), "
            f"but {name} runs at {sample_rate} Hz"
        )
    weights = files.weights(spec)
    module, built = build(config)
    notes.update(built)
    state = modern_names(read_state_dict(weights), strip_prefixes=strip_prefixes)
    ignored = load_parameters(module, state, source=weights, optional=("masked_spec_embed",))
    module.eval()
    return WaveformModel(
        module=module,
        hidden_states=hidden_states,
        sample_rate=sample_rate,
        hidden_size=int(module.config.hidden_size),
        n_hidden_states=int(module.config.num_hidden_layers) + 1,
        min_samples=min_input_samples(module.config.conv_kernel, module.config.conv_stride),
        do_normalize=bool(preprocessor.get("do_normalize", True)),
        checkpoint=str(checkpoint),
        weights_file=weights,
        weights_sha256=sha256_file(weights),
        ignored_parameters=ignored,
        sources=(files,),
        notes=notes,
    )


#: Keys of a saved config that only describe the file.
BOOKKEEPING = frozenset(
    {"model_type", "architectures", "auto_map", "transformers_version", "torch_dtype", "dtype", "_name_or_path"}
)


def config_values(config: dict[str, Any], *, drop: Sequence[str] = ()) -> dict[str, Any]:
    """``config`` without the keys that only describe the file (``model_type``, ``auto_map``...) and ``drop``."""
    return {key: value for key, value in config.items() if key not in BOOKKEEPING and key not in set(drop)}
