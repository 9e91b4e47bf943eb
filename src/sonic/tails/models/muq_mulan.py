"""MuQ-MuLan (``muq-mulan``): the audio tower of OpenMuQ's music-text model, a 512-d L2-normalised latent.

A published checkpoint (``OpenMuQ/MuQ-MuLan-large``) is a folder with ``config.json`` (the muq
package's ``MuQMuLanConfig``: ``mulan`` (``sr``, ``clip_secs``, ``dim_latent``), ``audio_model``
(``name`` of the MuQ backbone, ``model_dim``, ``use_layer_idx``), ``audio_transformer`` (``dim``,
``tf_depth``, ``heads``, ``dim_head``, ``ff_mult``) and the text tower's settings) and
``model.safetensors`` holding both towers. The backbone's weights are in that file
(``mulan.audio.model.model.``); its architecture and mel statistics are in the backbone's own
``config.json``, found through ``audio_model.name`` (a hub name: only that ``config.json`` is
downloaded), or in the folder given as ``backbone``. The text tower is not loaded.

The model's output is one vector per window (it has a single "hidden state" of one frame); the
package averages the latents of 10 s clips, as the ``mean`` pooling over 10 s windows does here,
and completes a last partial clip by wrapping around to the clip's start (``tail="wrap"``, the
default here too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sonic.errors import SonicError
from sonic.tails.models.checkpoints import load_parameters, read_json, read_state_dict
from sonic.tails.models.hub import HubFiles, checkpoint_files
from sonic.tails.models.huggingface import WEIGHTS, require_transformers
from sonic.tails.models.mel_conformer import SAMPLE_RATE, build_mel_conformer, min_samples
from sonic.tails.models.mulan_head import MulanHeadConfig, build_mulan_head
from sonic.tails.models.muq_backbone import muq_config
from sonic.tails.models.windowed import WaveformModel
from sonic.tails.neural import select_layer, sha256_file

if TYPE_CHECKING:
    import torch

#: Published name prefixes -> ours.
RENAMES = (
    ("mulan.audio.model.model.", "backbone."),
    ("mulan.audio.proj.", "head.proj."),
    ("mulan.audio.transformer.", "head.transformer."),
    ("mulan.audio_to_latents.", "head.audio_to_latents."),
)


def load_muq_mulan(checkpoint: str, *, backbone: str | None = None, revision: str | None = None) -> WaveformModel:
    """The MuQ-MuLan checkpoint ``checkpoint`` (hub name or folder) as a one-state :class:`WaveformModel`.

    ``backbone``: a folder (or hub name) holding the MuQ ``config.json`` (None: ``audio_model.name``).
    """
    import torch

    require_transformers()
    spec = HubFiles(checkpoint, required=("config.json",), weights=WEIGHTS)
    files = checkpoint_files(checkpoint, spec, name="muq-mulan", revision=revision)
    folder = files.folder
    config = read_json(files.path("config.json"))
    try:
        mulan, audio, tower = config["mulan"], config["audio_model"], config["audio_transformer"]
        backbone_name = str(audio["name"])
    except (KeyError, TypeError):
        raise SonicError(
            f"{str(folder / 'config.json')!r} is not a MuQ-MuLan config "
            "(it needs mulan, audio_model and audio_transformer)"
        ) from None
    if int(mulan.get("sr", SAMPLE_RATE)) != SAMPLE_RATE:
        raise SonicError(f"MuQ-MuLan config {str(folder)!r} declares {mulan.get('sr')} Hz; muq-mulan runs at 24000 Hz")
    backbone_name = backbone or backbone_name
    backbone_files = checkpoint_files(backbone_name, HubFiles(backbone_name, required=("config.json",)),
                                      name="muq-mulan")  # fmt: skip
    backbone_config = muq_config(read_json(backbone_files.path("config.json")), source=backbone_name)
    head_config = MulanHeadConfig(
        model_dim=int(audio.get("model_dim", backbone_config.encoder_dim)),
        dim=int(tower.get("dim", 768)),
        depth=int(tower.get("tf_depth", 8)),
        heads=int(tower.get("heads", 8)),
        dim_head=int(tower.get("dim_head", 64)),
        ff_mult=float(tower.get("ff_mult", 4)),
        dim_latent=int(mulan.get("dim_latent", 512)),
    )
    layer = int(audio.get("use_layer_idx", -1))

    module = torch.nn.Module()
    module.backbone = build_mel_conformer(backbone_config)
    module.head = build_mulan_head(head_config)
    weights = files.weights(spec)
    state = {}
    for key, value in read_state_dict(weights).items():
        for published, ours in RENAMES:
            if key.startswith(published):
                state[ours + key[len(published) :]] = value
                break
        else:
            state[key] = value
    ignored = load_parameters(module, state, source=weights)

    def latent(model: torch.nn.Module, waveforms: torch.Tensor) -> tuple[torch.Tensor]:
        states = model.backbone(waveforms)
        return (model.head(select_layer(states, layer))[:, None, :],)

    return WaveformModel(
        module=module.eval(),
        hidden_states=latent,
        sample_rate=SAMPLE_RATE,
        hidden_size=head_config.dim_latent,
        n_hidden_states=1,
        min_samples=min_samples(backbone_config.n_fft),
        do_normalize=False,
        checkpoint=str(checkpoint),
        weights_file=weights,
        weights_sha256=sha256_file(weights),
        ignored_parameters=ignored,
        sources=(files, backbone_files),
        notes={"backbone": backbone_name},
    )

