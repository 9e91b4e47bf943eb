"""Tiny random-weight checkpoints written in each model's published format (files, config keys,
parameter names, file type), for the tests and the embedder contract (:mod:`sonic.testing.embedders`).

Each writer builds the model at a small depth (and any width), saves its weights the way the
published checkpoint stores them, and returns the folder with the model or state it wrote (the
reference for comparisons). Loading such a folder goes through the same code as the published one.
torch (and transformers, for MERT and Music2Vec) must be installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

#: MERT-v1's feature encoder strides (320 samples per frame: 75 frames/s at 24 kHz), at a tiny width.
PUBLISHED_CONVOLUTIONS = {
    "conv_dim": [16] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "num_feat_extract_layers": 7,
}

#: MERT-v1-95M's published config.json keys, with the sizes cut down (conv strides keep 75 frames/s at 24 kHz
#: only in the real model; here two conv layers of stride 5 and 2 give 2400 frames/s).
MERT_CONFIG = {
    "architectures": ["MERTModel"],
    "attention_dropout": 0.1,
    "attention_relax": -1.0,
    "auto_map": {"AutoConfig": "configuration_MERT.MERTConfig", "AutoModel": "modeling_MERT.MERTModel"},
    "classifier_proj_size": 256,
    "conv_bias": False,
    "conv_dim": [16, 16],
    "conv_kernel": [10, 3],
    "conv_stride": [5, 2],
    "ctc_loss_reduction": "sum",
    "ctc_zero_infinity": False,
    "deepnorm": False,
    "do_stable_layer_norm": False,
    "feat_extract_activation": "gelu",
    "feat_extract_norm": "group",
    "feat_proj_dropout": 0.1,
    "feat_proj_layer_norm": True,
    "feature_extractor_cqt": False,
    "feature_extractor_cqt_bins": 336,
    "final_dropout": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout": 0.1,
    "hidden_size": 32,
    "initializer_range": 0.02,
    "intermediate_size": 64,
    "layer_norm_eps": 1e-05,
    "layerdrop": 0.1,
    "mask_feature_length": 10,
    "mask_feature_prob": 0.0,
    "mask_time_length": 10,
    "mask_time_prob": 0.05,
    "model_type": "mert_model",
    "num_attention_heads": 4,
    "num_conv_pos_embedding_groups": 4,
    "num_conv_pos_embeddings": 16,
    "num_feat_extract_layers": 2,
    "num_hidden_layers": 3,
    "pad_token_id": 0,
    "sample_rate": 24000,
    "torch_dtype": "float32",
    "transformers_version": "4.25.1",
    "vocab_size": 32,
}
PREPROCESSOR = {
    "do_normalize": True,
    "feature_extractor_type": "Wav2Vec2FeatureExtractor",
    "feature_size": 1,
    "padding_side": "right",
    "padding_value": 0,
    "return_attention_mask": True,
    "sampling_rate": 24000,
}


def legacy_weight_norm_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Parametrized weight-norm names as transformers 4.2x saved them (``weight_g``/``weight_v``)."""
    renamed = {}
    for key, value in state.items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        renamed[key] = value.clone().contiguous()
    return renamed


def write_folder(folder: Path, config: dict, preprocessor: dict, state: dict, weights_name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    if weights_name.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file(state, str(folder / weights_name))
    else:
        torch.save(state, folder / weights_name)
    return folder


def _randomise(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter drawn afresh (norm weights around 1), so a missed copy cannot pass unnoticed."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator) * 0.2
            parameter.copy_(1.0 + noise if "norm" in name and parameter.ndim == 1 and "bias" not in name else noise)
    return model.eval()


def tiny_mert(folder: Path, *, seed: int = 0, weights_name: str = "pytorch_model.bin", **overrides):
    """A MERT-v1 checkpoint folder (legacy weight-norm names, as published) and its reference HubertModel."""
    from transformers import HubertConfig, HubertModel

    config = {**MERT_CONFIG, **overrides}
    drop = {"model_type", "architectures", "auto_map", "transformers_version", "torch_dtype", "sample_rate",
            "feature_extractor_cqt", "feature_extractor_cqt_bins", "deepnorm", "attention_relax"}
    reference = _randomise(HubertModel(HubertConfig(**{k: v for k, v in config.items() if k not in drop})), seed)
    state = legacy_weight_norm_names(reference.state_dict())
    return write_folder(folder, config, PREPROCESSOR, state, weights_name), reference


#: music2vec-v1's published config.json keys (a transformers Data2VecAudioModel), sizes cut down.
MUSIC2VEC_CONFIG = {
    "architectures": ["Data2VecAudioModel"],
    "activation_dropout": 0.0,
    "attention_dropout": 0.1,
    "conv_bias": True,
    "conv_dim": [16, 16],
    "conv_kernel": [10, 3],
    "conv_pos_kernel_size": 5,
    "conv_stride": [5, 2],
    "feat_extract_activation": "gelu",
    "feat_proj_dropout": 0.0,
    "final_dropout": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout": 0.1,
    "hidden_size": 32,
    "initializer_range": 0.02,
    "intermediate_size": 64,
    "layer_norm_eps": 1e-05,
    "layerdrop": 0.0,
    "mask_time_length": 10,
    "mask_time_prob": 0.65,
    "model_type": "data2vec-audio",
    "num_attention_heads": 4,
    "num_conv_pos_embedding_groups": 4,
    "num_conv_pos_embeddings": 3,
    "num_feat_extract_layers": 2,
    "num_hidden_layers": 3,
    "pad_token_id": 0,
    "torch_dtype": "float32",
    "transformers_version": "4.24.0",
    "vocab_size": 32,
}


#: Keys music2vec-v1's published config.json is reported to carry that transformers 5 rejects or does not
#: know: the fairseq dictionary's path as ``vocab_size``, and wav2vec2 pre-training settings.
MUSIC2VEC_PUBLISHED_EXTRAS = {
    "vocab_size": "/path/to/fairseq/dict.ltr.txt",
    "apply_spec_augment": True,
    "codevector_dim": 256,
    "contrastive_logits_temperature": 0.1,
    "diversity_loss_weight": 0.1,
    "do_stable_layer_norm": False,
    "feat_extract_norm": "layer",
    "feat_quantizer_dropout": 0.0,
    "num_codevector_groups": 2,
    "num_codevectors_per_group": 320,
    "num_negatives": 100,
    "proj_codevector_dim": 256,
}


def tiny_music2vec(folder: Path, *, seed: int = 0, preprocessor: bool = False, **overrides):
    """A music2vec-v1 checkpoint folder (``config.json`` with the published fields, ``vocab_size`` a path
    included, and ``pytorch_model.bin``; ``preprocessor_config.json`` only when ``preprocessor``, as the
    model card points at data2vec's processor instead) and the transformers model of its weights."""
    from transformers import Data2VecAudioConfig, Data2VecAudioModel

    values = {**MUSIC2VEC_CONFIG, **MUSIC2VEC_PUBLISHED_EXTRAS, **overrides}
    known = {"model_type", "architectures", "transformers_version", "torch_dtype", *MUSIC2VEC_PUBLISHED_EXTRAS}
    config = Data2VecAudioConfig(**{k: v for k, v in values.items() if k not in known})
    reference = _randomise(Data2VecAudioModel(config), seed)
    state = {key: value.clone().contiguous() for key, value in reference.state_dict().items()}
    write_folder(folder, values, {**PREPROCESSOR, "sampling_rate": 16000}, state, "pytorch_model.bin")
    if not preprocessor:
        (folder / "preprocessor_config.json").unlink()
    return folder, reference


#: A MuQ config.json (the muq package's MuQConfig, as OpenMuQ/MuQ-large-msd-iter publishes it), sizes cut down.
MUQ_CONFIG = {
    "label_rate": 25,
    "num_codebooks": 1,
    "codebook_dim": 16,
    "codebook_size": 64,
    "features": ["melspec_2048"],
    "hop_length": 240,
    "n_mels": 128,
    "conv_dim": 4,
    "encoder_dim": 32,
    "encoder_depth": 2,
    "mask_hop": 0.4,
    "mask_prob": 0.6,
    "is_flash": False,
    "stat": {"melspec_2048_cnt": 14282760192, "melspec_2048_mean": 6.768, "melspec_2048_std": 18.417},
    "w2v2_config": {
        "activation_dropout": 0.1,
        "attention_dropout": 0.1,
        "conv_depthwise_kernel_size": 5,
        "feat_proj_dropout": 0.1,
        "hidden_act": "swish",
        "hidden_dropout": 0.1,
        "intermediate_size": 64,
        "layer_norm_eps": 1e-05,
        "layerdrop": 0.1,
        "num_attention_heads": 4,
        "position_embeddings_type": "rotary",
        "rotary_embedding_base": 10000,
    },
    "use_rvq_target": True,
    "use_vq_target": False,
    "use_encodec_target": False,
    "rvq_ckpt_path": None,
    "recon_loss_ratio": None,
    "resume_checkpoint": None,
    "rvq_n_codebooks": 8,
    "rvq_multi_layer_num": 1,
}


def _mel_conformer_state(config, seed: int, prefix: str) -> dict[str, torch.Tensor]:
    """A random mel-conformer's state under ``prefix`` (BatchNorm statistics random too)."""
    from sonic.tails.models.mel_conformer import build_mel_conformer

    module = _randomise(build_mel_conformer(config), seed)
    generator = torch.Generator().manual_seed(seed + 100)
    state = {}
    for key, value in module.state_dict().items():
        if key.endswith("running_var"):
            value = 0.5 + torch.rand(value.shape, generator=generator)
        elif key.endswith("running_mean"):
            value = torch.randn(value.shape, generator=generator) * 0.1
        state[f"{prefix}{key}"] = value.clone().contiguous()
    return state


def tiny_muq(folder: Path, *, seed: int = 0, **overrides) -> tuple[Path, dict[str, torch.Tensor]]:
    """A MuQ checkpoint folder (``config.json`` + ``model.safetensors``, names under ``model.``, with the
    pre-training heads) and its state (names without the prefix)."""
    from safetensors.torch import save_file

    from sonic.tails.models.muq_backbone import muq_config

    values = {**MUQ_CONFIG, **overrides}
    dim = values["encoder_dim"]
    state = _mel_conformer_state(muq_config(values, source="tiny"), seed, "model.")
    generator = torch.Generator().manual_seed(seed + 101)
    state["model.linear.weight"] = torch.randn(values["codebook_size"], dim, generator=generator)
    state["model.cls_token"] = torch.randn(dim, generator=generator)
    state["model.rvq.quantizers.0.codebook.weight"] = torch.randn(1024, 16, generator=generator)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(values, indent=2))
    save_file(state, str(folder / "model.safetensors"))
    return folder, {key.removeprefix("model."): value for key, value in state.items()}


MUSICFM_STATS = {"melspec_2048_cnt": 14282760192, "melspec_2048_mean": 6.768, "melspec_2048_std": 18.417}


def tiny_musicfm(
    folder: Path, *, seed: int = 0, encoder_dim: int = 32, encoder_depth: int = 2, conv_dim: int = 4,
    intermediate_size: int = 64,
) -> tuple[Path, dict[str, torch.Tensor]]:
    """A MusicFM folder as published: ``pretrained_msd.pt`` (``torch.save`` of a training checkpoint whose
    ``state_dict`` names start with ``model.`` and include the pre-training heads) and ``msd_stats.json``.
    Returns it and the network's state (names without the prefix)."""
    from sonic.tails.models.mel_conformer import MelConformerConfig
    from sonic.tails.models.musicfm import ROPE_LARGE

    config = MelConformerConfig(
        conv_dim=conv_dim, encoder_dim=encoder_dim, encoder_depth=encoder_depth, mel_mean=6.768, mel_std=18.417,
        conformer={**ROPE_LARGE, "intermediate_size": intermediate_size},
    )
    state = _mel_conformer_state(config, seed, "model.")
    generator = torch.Generator().manual_seed(seed + 102)
    state["model.linear.weight"] = torch.randn(64, encoder_dim, generator=generator)
    state["model.cls_token"] = torch.randn(encoder_dim, generator=generator)
    state["model.quantizer_melspec_2048_0.random_projection"] = torch.randn(512, 16, generator=generator)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "epoch": 7, "global_step": 1000}, folder / "pretrained_msd.pt")
    (folder / "msd_stats.json").write_text(json.dumps(MUSICFM_STATS))
    return folder, {key.removeprefix("model."): value for key, value in state.items()}


#: MuQ-MuLan's config.json (the muq package's MuQMuLanConfig), sizes cut down; audio_model.name is set per test.
MULAN_CONFIG = {
    "mulan": {"sr": 24000, "clip_secs": 10, "dim_latent": 16, "decoupled_contrastive_learning": True,
              "hierarchical_contrastive_loss": False, "hierarchical_contrastive_loss_layers": None,
              "sigmoid_contrastive_loss": False, "rank_contrast": True},
    "audio_model": {"name": "OpenMuQ/MuQ-large-msd-iter", "model_dim": 32, "use_layer_idx": -1},
    "text_model": {"name": "OpenMuQ/MuQ-MuLan-large-text", "model_dim": 1024},
    "audio_transformer": {"dim": 24, "tf_depth": 2, "heads": 2, "dim_head": 8, "attn_dropout": 0.0,
                          "ff_dropout": 0.0, "ff_mult": 4},
    "text_transformer": {"dim": 24, "tf_depth": 2, "max_seq_len": 64, "dim_head": 8, "heads": 2,
                         "attn_dropout": 0.0, "ff_dropout": 0.0, "ff_mult": 4},
}


def tiny_muq_mulan(
    folder: Path, backbone: Path, backbone_state: dict, *, seed: int = 0, model_dim: int = 32, dim_latent: int = 16
):
    """A MuQ-MuLan folder (``config.json`` + ``model.safetensors`` with both towers' names) over the tiny
    MuQ ``backbone`` folder; returns it and the head's state under our names (``proj.``, ``transformer.``...)."""
    from safetensors.torch import save_file

    from sonic.tails.models.mulan_head import MulanHeadConfig, build_mulan_head

    tower = MULAN_CONFIG["audio_transformer"]
    head = _randomise(build_mulan_head(MulanHeadConfig(model_dim=model_dim, dim=24, depth=2, heads=2, dim_head=8,
                                                       dim_latent=dim_latent)), seed)
    generator = torch.Generator().manual_seed(seed + 7)
    state = {f"mulan.audio.model.model.{k}": v.clone() for k, v in backbone_state.items()}
    head_state = {k: v.clone().contiguous() for k, v in head.state_dict().items()}
    for key, value in head_state.items():
        prefix = "mulan." if key.startswith("audio_to_latents.") else "mulan.audio."
        state[prefix + key] = value
    state["mulan.audio.aggregator.weight"] = torch.randn(1, 25, 1, generator=generator)
    state["mulan.text.model.embeddings.word_embeddings.weight"] = torch.randn(50, tower["dim"], generator=generator)
    state["mulan.text_to_latents.weight"] = torch.randn(dim_latent, 24, generator=generator)
    config = {
        **MULAN_CONFIG,
        "mulan": {**MULAN_CONFIG["mulan"], "dim_latent": dim_latent},
        "audio_model": {**MULAN_CONFIG["audio_model"], "name": str(backbone), "model_dim": model_dim},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    save_file(state, str(folder / "model.safetensors"))
    return folder, head_state


ENCODECMAE_GIN = """NUM_ENCODEC_TARGETS=8
NUM_TOTAL_TARGETS=8
NUM_TARGET_TOKENS=1024
MODEL_DIM=32
NUM_ENCODER_LAYERS=2
NUM_ENCODER_HEADS=4
NUM_DECODER_LAYERS=1
NUM_DECODER_HEADS=4
encoder/tasks.models.transformers.MultiHeadAttention:
    model_dim=%MODEL_DIM
    num_heads=%NUM_ENCODER_HEADS
"""


def tiny_encodecmae(folder: Path, *, seed: int = 0, model_dim: int = 32) -> tuple[Path, dict[str, torch.Tensor]]:
    """An EncodecMAE folder as published: ``model.pt`` (a Lightning checkpoint whose ``state_dict`` has
    EnCodec's legacy weight-norm names, the decoder and the heads) and ``config.gin``. Returns it and
    the encoder's state under today's names."""
    from sonic.tails.models.encodecmae import EncodecMAEConfig, build_encodecmae

    config = EncodecMAEConfig(model_dim=model_dim, num_layers=2, num_heads=4, ff_dim=64)
    module = _randomise(build_encodecmae(config), seed)
    with torch.no_grad():  # EnCodec's convolutions: keep activations in range through 5 stages
        for name, parameter in module.named_parameters():
            if name.startswith("wav_encoder") and name.endswith("original1"):
                parameter.copy_(torch.randn(parameter.shape, generator=torch.Generator().manual_seed(seed)))
            if name.startswith("wav_encoder") and name.endswith("original0"):
                parameter.fill_(0.5)
    state = {k: v.clone().contiguous() for k, v in module.state_dict().items()}
    generator = torch.Generator().manual_seed(seed + 11)
    published = legacy_weight_norm_names(state)
    published["decoder.encoder_layers.0.att_layer.wq.weight"] = torch.randn(model_dim, model_dim, generator=generator)
    published["decoder_projector.weight"] = torch.randn(model_dim, model_dim, generator=generator)
    published["head.ln.weight"] = torch.randn(model_dim, generator=generator)
    checkpoint = {
        "epoch": 3,
        "global_step": 500000,
        "pytorch-lightning_version": "2.0.4",
        "state_dict": published,
        "optimizer_states": [{"state": {0: {"step": torch.tensor(5.0)}}, "param_groups": [{"lr": 1e-4}]}],
        "lr_schedulers": [],
    }
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, folder / "model.pt")
    (folder / "config.gin").write_text(ENCODECMAE_GIN)
    (folder / "imports").write_text("import encodecmae.tasks\n")
    return folder, state
