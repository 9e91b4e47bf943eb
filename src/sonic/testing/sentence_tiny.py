"""A tiny random sentence-transformers model in the published folder layout (``modules.json``, the
transformer's ``config.json`` and tokenizer files at the root, ``1_Pooling/config.json``), as
``sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2`` is stored: a BERT encoder with mean
pooling, here 2 layers of width 32 with a WordPiece vocabulary of a few words (the published one has an
XLM-R tokenizer; loading goes through the same sentence-transformers code either way).
"""

from __future__ import annotations

from pathlib import Path

#: Words the tiny vocabulary knows (any other word is [UNK]).
WORDS = ("la love you baby je ne regrette rien der mond ist aufgegangen o sole mio the rain keeps falling on "
         "empty street i wait for beside window every night lluvia sigue").split()


def tiny_sentence_transformer(folder: Path, *, seed: int = 0, max_seq_length: int = 12) -> Path:
    """Write the tiny model into ``folder`` (saved by sentence-transformers itself); returns ``folder``."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(seed)
    bert = Path(folder).with_name(f".{Path(folder).name}.bert")
    bert.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS)), ",", "."]
    (bert / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(bert / "vocab.txt")).save_pretrained(bert)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(bert)
    transformer = Transformer(str(bert), max_seq_length=max_seq_length)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(folder))
    return Path(folder)
