"""Benchmark: sonic's CPU attention with dropout and its activation dropout against torch's, in one run.

At BERT4Rec's training shapes (``--batch`` sequences of ``--length`` positions, ``--heads`` heads of
``--hidden`` / heads dimensions, left padding hiding ``--padding`` of the positions), forward + backward:

- attention with dropout on its weights: :func:`sonic.rouge.models.dropout.dropped_attention` against
  ``torch.nn.functional.scaled_dot_product_attention(..., dropout_p=p)`` (which, on CPU, leaves the
  fused kernel for its unfused path), and torch's fused kernel without dropout for scale;
- activation dropout on a (batch, length, 4 x hidden) tensor: :func:`sonic.rouge.models.dropout.dropped`
  against ``torch.nn.functional.dropout``.

Median CPU seconds of ``--repeats`` runs each (one torch thread unless ``--threads``), and the ratio.

    python benchmarks/dropout.py [--batch 64] [--length 300] [--hidden 64] [--heads 2] [--p 0.2] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def median_cpu(function, repeats: int) -> float:
    """Median CPU seconds of ``function()`` (forward) and the backward of its sum, after one warm-up."""
    seconds = []
    for _ in range(repeats + 1):
        started = time.process_time()
        function().sum().backward()
        seconds.append(time.process_time() - started)
    return float(np.median(seconds[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--padding", type=float, default=0.2, help="share of each sequence that is padding")
    parser.add_argument("--p", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    import torch

    from sonic.rouge.models.dropout import dropped, dropped_attention

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = (args.batch, args.heads, args.length, args.hidden // args.heads)
    q, k, v = (torch.randn(shape, requires_grad=True) for _ in range(3))
    hidden = torch.zeros(args.batch, args.length, dtype=torch.bool)
    hidden[:, : int(args.padding * args.length)] = True
    bias = torch.zeros(args.batch, args.length).masked_fill(hidden, float("-inf"))
    visible = ~hidden[:, None, None, :]
    sdpa = torch.nn.functional.scaled_dot_product_attention
    activations = torch.randn(args.batch, args.length, 4 * args.hidden, requires_grad=True)
    print(f"load average before: {os.getloadavg()}; torch threads {torch.get_num_threads()}; "
          f"q, k, v {tuple(shape)}, p {args.p}, median of {args.repeats} (forward + backward), CPU seconds")
    ours = median_cpu(lambda: dropped_attention(q, k, v, bias, args.p), args.repeats)
    theirs = median_cpu(lambda: sdpa(q, k, v, attn_mask=visible, dropout_p=args.p), args.repeats)
    fused = median_cpu(lambda: sdpa(q, k, v, attn_mask=visible), args.repeats)
    print(f"attention + dropout: sonic blocked {ours:.4f} s, torch {theirs:.4f} s ({theirs / ours:.2f}x); "
          f"torch's fused kernel without dropout {fused:.4f} s")
    ours = median_cpu(lambda: dropped(activations, args.p), args.repeats)
    theirs = median_cpu(lambda: torch.nn.functional.dropout(activations, args.p, True), args.repeats)
    plain = median_cpu(lambda: activations * 1.0, args.repeats)
    print(f"activation dropout {tuple(activations.shape)}: sonic {ours:.4f} s, torch {theirs:.4f} s "
          f"({theirs / ours:.2f}x); a plain multiply {plain:.4f} s")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
