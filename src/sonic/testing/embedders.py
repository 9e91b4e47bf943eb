"""A fixture for every registered embedder, for the embedder contract (``tests/test_embedder_contract.py``).

:data:`EMBEDDER_FIXTURES` maps a registered name to a function ``(folder) -> Embedder`` that writes tiny
random weights under ``folder`` in the published checkpoint format and builds the embedder from them
through the same code path as the published weights. :data:`NEEDS_NO_FIXTURE` names the embedders that
need no weights (built as a user builds them, offline). :func:`embedder_fixture` looks a name up and
fails for a registered name that has neither, so registering an embedder puts it under the contract.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sonic.tails.base import Embedder

EmbedderFixture = Callable[[Path], "Embedder"]


def _mert(name: str, folder: Path) -> Embedder:
    """The published width, one layer; the 330M one in its published layout (pre-norm, group norm, no conv bias)."""
    from sonic.tails.models.mert import from_name
    from sonic.testing.tiny import PUBLISHED_CONVOLUTIONS, tiny_mert

    if name == "mert-v1-330m":
        layout = {"hidden_size": 1024, "do_stable_layer_norm": True, "feat_extract_norm": "group", "conv_bias": False,
                  "attention_relax": 32.0}
    else:
        layout = {"hidden_size": 768}
    tiny_mert(folder / name, num_hidden_layers=1, **PUBLISHED_CONVOLUTIONS, **layout)
    return from_name(name, checkpoint=str(folder / name), device="cpu")


def _music2vec(name: str, folder: Path) -> Embedder:
    """data2vec-audio has MERT's feature encoder."""
    from sonic.tails.models.music2vec import from_name
    from sonic.testing.tiny import PUBLISHED_CONVOLUTIONS, tiny_music2vec

    tiny_music2vec(folder / name, hidden_size=768, num_hidden_layers=1, **PUBLISHED_CONVOLUTIONS)
    return from_name(name, checkpoint=str(folder / name), device="cpu")


def _encodecmae(name: str, folder: Path) -> Embedder:
    from sonic.tails.models.encodecmae import from_name
    from sonic.testing.tiny import tiny_encodecmae

    tiny_encodecmae(folder / name, model_dim=768)
    return from_name(name, checkpoint=str(folder / name), device="cpu")


def _muq(name: str, folder: Path) -> Embedder:
    """MuQ at its published width, one layer; MuQ-MuLan's head over it, with its 512-d latent."""
    from sonic.tails.models.muq import from_name
    from sonic.testing.tiny import tiny_muq, tiny_muq_mulan

    backbone, state = tiny_muq(folder / "MuQ-large-msd-iter", encoder_dim=1024, encoder_depth=1)
    if name == "muq":
        return from_name(name, checkpoint=str(backbone), device="cpu")
    mulan, _ = tiny_muq_mulan(folder / "MuQ-MuLan-large", backbone, state, model_dim=1024, dim_latent=512)
    return from_name(name, checkpoint=str(mulan), device="cpu")


def _musicfm(name: str, folder: Path) -> Embedder:
    from sonic.tails.models.musicfm import from_name
    from sonic.testing.tiny import tiny_musicfm

    tiny_musicfm(folder / "MusicFM", encoder_dim=1024, encoder_depth=1, conv_dim=4)
    return from_name(name, checkpoint=str(folder / "MusicFM"), device="cpu")


def _musicnn(name: str, folder: Path) -> Embedder:
    """Written as the wheel stores its checkpoints (the hidden ``.index`` / ``.data-00000-of-00001`` names
    of TF's format) and loaded as the published ones are."""
    from sonic.tails.models.musicnn import VARIANTS, from_name
    from sonic.testing.musicnn_tiny import tiny_musicnn, tiny_vgg, write_tf_checkpoint

    weights = tiny_vgg() if "vgg" in VARIANTS[name] else tiny_musicnn()
    write_tf_checkpoint(f"{Path(folder)}/", weights)
    return from_name(name, checkpoint=str(folder), device="cpu")


def _dino(name: str, folder: Path) -> Embedder:
    """A tiny ViT (width 64, 2 blocks, 32-pixel pictures) in timm's checkpoint layout; the random control
    draws the same tiny shape into ``folder``."""
    from sonic.tails.models.dino import MODELS, RANDOM_CONTROLS, DinoEmbedder, DinoOptions
    from sonic.tails.models.vit import ViTShape
    from sonic.testing.vit_tiny import write_timm_checkpoint

    if name in RANDOM_CONTROLS:
        tiny = ViTShape(embed_dim=64, depth=2, num_heads=1, patch_size=MODELS[RANDOM_CONTROLS[name]][1], img_size=32,
                        mlp_hidden=256)
        return DinoEmbedder(name, DinoOptions(device="cpu"), random_shape=tiny, random_folder=folder / "weights")
    write_timm_checkpoint(folder, patch_size=MODELS[name][1], embed_dim=64, depth=2, img_size=32)
    return DinoEmbedder(name, DinoOptions(checkpoint=str(folder), device="cpu"))


def _lyrics_minilm(name: str, folder: Path) -> Embedder:
    """The original study's lyrics model's layout (sentence-transformers, mean pooling), tiny and random."""
    from sonic.tails.models.lyrics import from_name
    from sonic.testing.sentence_tiny import tiny_sentence_transformer

    tiny_sentence_transformer(folder / "st")
    return from_name(name, checkpoint=str(folder / "st"), device="cpu")


def _each(factory: Callable[[str, Path], Embedder], *names: str) -> dict[str, EmbedderFixture]:
    return {name: partial(factory, name) for name in names}


#: Registered embedder name -> ``(folder) -> Embedder`` on tiny random weights in the published format.
EMBEDDER_FIXTURES: Mapping[str, EmbedderFixture] = MappingProxyType({
    **_each(_musicnn, "musicnn", "MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg"),
    **_each(_mert, "mert-v1-95m", "mert-v1-330m"),
    **_each(_music2vec, "music2vec-v1"),
    **_each(_encodecmae, "encodecmae-base"),
    **_each(_muq, "muq", "muq-mulan"),
    **_each(_musicfm, "musicfm"),
    **_each(_lyrics_minilm, "lyrics-minilm"),
    **_each(_dino, "dino_vits16", "dino_vits8", "dino_vitb16", "dino_vitb8", "dino_vits16_random"),
})  # fmt: skip

#: Registered embedders that need no weights: the contract builds them as a user does, offline.
NEEDS_NO_FIXTURE = frozenset({"mfcc_<N>", "lyrics", "metadata"})


def embedder_fixture(name: str) -> EmbedderFixture | None:
    """The fixture of the registered embedder ``name`` (a family's member, ``mfcc_20``, is looked up as
    ``mfcc_<N>``); None when it needs none. A name with neither raises :class:`LookupError`."""
    if name in EMBEDDER_FIXTURES:
        return EMBEDDER_FIXTURES[name]
    family = f"{name.rpartition('_')[0]}_<N>"
    if name in NEEDS_NO_FIXTURE or family in NEEDS_NO_FIXTURE:
        return None
    raise LookupError(
        f"embedder {name!r} has no fixture in sonic.testing; add one to EMBEDDER_FIXTURES "
        "(tiny weights in its published format) or its name to NEEDS_NO_FIXTURE"
    )
