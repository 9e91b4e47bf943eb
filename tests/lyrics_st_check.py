"""Run as a script by test_lyrics.py: the lyrics embedder on a tiny random sentence-transformers model.

``python lyrics_st_check.py OUT_DIR`` writes a tiny BERT (random weights, a WordPiece vocabulary of the
words used here) with mean pooling, saved by sentence-transformers itself (``modules.json`` ...) under
``OUT_DIR/st``, embeds texts through ``LyricsEmbedder(model=OUT_DIR/st)`` and the model's own
``encode``, and writes what the test checks to ``OUT_DIR/result.json``.

It runs in its own process because importing transformers imports torchvision when installed: where the installed
torchvision wheel was built for another torch (its compiled operators fail to load), the two
operator schemas torchvision's import registers fake kernels for are declared first.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

WORDS = "the rain keeps falling on empty street i wait for you beside window every night la lluvia sigue".split()


def declare_torchvision_ops() -> None:
    try:
        import torchvision  # noqa: F401
    except ImportError:  # no torchvision at all: nothing to declare
        return
    except RuntimeError as error:
        if "torchvision::" not in str(error):
            raise
        for name in [name for name in sys.modules if name.startswith("torchvision")]:
            del sys.modules[name]
        for op in ("nms", "qnms"):
            torch.library.define(f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


def main(out: Path) -> None:
    declare_torchvision_ops()
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    bert_dir = out / "bert"
    bert_dir.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS))]
    (bert_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(bert_dir / "vocab.txt")).save_pretrained(bert_dir)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(bert_dir)
    transformer = Transformer(str(bert_dir), max_seq_length=12)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(out / "st"))

    from sonic.tails.models.lyrics import LyricsEmbedder, LyricsOptions

    embedder = LyricsEmbedder(LyricsOptions(model=str(out / "st"), device="cpu"))
    reference = SentenceTransformer(str(out / "st"), device="cpu")
    short = "the rain keeps falling"
    long_text = "\n".join(["the rain keeps falling on the empty street", "i wait for you beside the window",
                           "every night", "la lluvia sigue"] * 3)
    vectors = embedder.embed([short, long_text, ""])
    chunks = __import__("sonic.tails.models.lyrics", fromlist=["chunk_text"]).chunk_text(
        long_text, lambda t: len(reference.tokenizer(t, add_special_tokens=False)["input_ids"]), embedder.max_tokens)
    counts = [len(reference.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in chunks]
    chunk_vectors = reference.encode(chunks, convert_to_numpy=True)
    pooled = (chunk_vectors * np.array(counts)[:, None]).sum(0) / sum(counts)
    result = {
        "dim": embedder.dim,
        "max_tokens": embedder.max_tokens,
        "short_gap": float(np.abs(vectors[0] - reference.encode([short], convert_to_numpy=True)[0]).max()),
        "long_gap": float(np.abs(vectors[1] - pooled).max()),
        "empty_is_zero": bool((vectors[2] == 0).all()),
        "chunk_tokens": counts,
        "text_words": len(long_text.split()),
        "chunk_words": sum(len(c.split()) for c in chunks),
        "description": embedder.describe(),
    }
    (out / "result.json").write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
