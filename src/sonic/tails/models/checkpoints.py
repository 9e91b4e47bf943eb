"""Reading a published checkpoint folder: its json files and its weights file (sha256: sonic.tails.neural).

Weights are read only as tensors: ``.safetensors`` through safetensors, ``.bin``/``.pt`` through
``torch.load(weights_only=True)``; nothing in a checkpoint is ever run. Parameter names written by
older transformers releases (``weight_g``/``weight_v`` of a weight-normed convolution) are renamed to
the names today's modules use.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sonic.errors import SonicError

if TYPE_CHECKING:
    import torch

#: Weight files looked for in a checkpoint folder, in order of preference.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
#: Old weight-norm parameter names and the parametrization names that replaced them.
_LEGACY_WEIGHT_NORM = {
    ".weight_g": ".parametrizations.weight.original0",
    ".weight_v": ".parametrizations.weight.original1",
}


def read_json(path: Path) -> dict[str, Any]:
    """The json object in ``path``; a missing or malformed file is one sentence."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SonicError(f"checkpoint file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SonicError(f"checkpoint file {str(path)!r} is not valid json ({error})") from None
    if not isinstance(value, dict):
        raise SonicError(f"checkpoint file {str(path)!r} must hold a json object, got {type(value).__name__}")
    return value


def find_weights(folder: Path, names: Iterable[str] = WEIGHT_FILES) -> Path:
    """The first of ``names`` present in ``folder``; none present is one sentence naming them."""
    names = tuple(names)
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise SonicError(f"checkpoint folder {str(folder)!r} holds no weights file; expected one of {', '.join(names)}")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor in the weights file ``path`` (on the CPU), by parameter name.

    A file that is not a weights file (or a pickle holding anything but tensors) is a SonicError.
    """
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any reader failure means: not a usable weights file
        raise SonicError(f"cannot read weights file {str(path)!r} ({type(error).__name__}: {error})") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SonicError(f"weights file {str(path)!r} does not hold a mapping of parameter names to tensors")
    return dict(state)


def modern_names(state: Mapping[str, torch.Tensor], *, strip_prefixes: Iterable[str] = ()) -> dict[str, torch.Tensor]:
    """``state`` with legacy weight-norm names renamed and any of ``strip_prefixes`` removed."""
    prefixes = tuple(strip_prefixes)
    renamed = {}
    for key, value in state.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        for old, new in _LEGACY_WEIGHT_NORM.items():
            if key.endswith(old):
                key = key[: -len(old)] + new
        renamed[key] = value
    return renamed


def load_parameters(
    module: torch.nn.Module, state: Mapping[str, torch.Tensor], *, source: Path, optional: Iterable[str] = ()
) -> tuple[str, ...]:
    """Copy ``state`` into ``module``; return the names in ``state`` the module has no place for.

    Every parameter and buffer of ``module`` must be in ``state`` (with the same shape), except
    those in ``optional``; otherwise a SonicError names the first few missing or mismatched.
    """
    own = module.state_dict()
    optional = set(optional)
    missing = sorted(name for name in own if name not in state and name not in optional)
    if missing:
        raise SonicError(
            f"weights file {str(source)!r} lacks {len(missing)} parameters its config implies "
            f"(e.g. {', '.join(missing[:3])}); is the config.json beside it from the same model?"
        )
    wrong = [name for name in own if name in state and tuple(state[name].shape) != tuple(own[name].shape)]
    if wrong:
        name = wrong[0]
        raise SonicError(
            f"weights file {str(source)!r} has {name} of shape {tuple(state[name].shape)} where its config "
            f"implies {tuple(own[name].shape)}; is the config.json beside it from the same model?"
        )
    module.load_state_dict({name: state[name] for name in own if name in state}, strict=False)
    return tuple(sorted(name for name in state if name not in own))
