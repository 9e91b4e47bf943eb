"""Benchmark: the shallow net's pair loss (forward and backward) from one users x tracks score matrix,
against mapping every sampled row through the shared layer (the formula before).

A catalogue of ``--tracks`` content vectors (``--dim``), ``--users`` users, one batch of ``--batch`` pairs
with ``--negatives`` negatives each, as ``ShallowNetRecommender`` trains. Both sides compute the loss and
its gradients on the same network and batch, taking turns ``--repeats`` times (median seconds); the losses
and gradients must agree to 1e-5 or the script exits with status 1.

    python benchmarks/snn_pair_loss.py [--tracks 240] [--dim 104] [--users 1000] [--batch 10000] [--negatives 20]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from timing import timed

from sonic.rouge.models.snn import _network, hinge_loss


def per_row_loss(net, users, positives, negatives, margin):
    """The formula before: every sampled row through the shared layer."""
    u = net.user_space(users)
    pos = (u * net.item_space(positives)).sum(-1)
    neg = torch.einsum("bh,bmh->bm", u, net.item_space(negatives))
    return hinge_loss(pos, neg, margin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (("tracks", 240), ("dim", 104), ("users", 1000), ("batch", 10_000), ("negatives", 20),
                          ("repeats", 3)):
        parser.add_argument(f"--{name}", type=int, default=default)
    args = parser.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    items = rng.standard_normal((args.tracks, args.dim)).astype(np.float32)
    users = rng.standard_normal((args.users, args.dim)).astype(np.float32)
    net = _network(args.users, args.dim, args.dim, users, items)
    batch_users = torch.randint(args.users, (args.batch,))
    positives = torch.randint(args.tracks, (args.batch,))
    negatives = torch.randint(args.tracks, (args.batch, args.negatives))

    def step(loss_of):
        def run():
            net.zero_grad()
            loss = loss_of(net, batch_users, positives, negatives, 0.2)
            loss.backward()
            return loss.item(), [p.grad.clone() for p in net.parameters()]
        return run

    seconds, results = timed({"ours": step(lambda n, *a: n.pair_loss(*a)), "baseline": step(per_row_loss)},
                             args.repeats)
    (loss_ours, grads_ours), (loss_base, grads_base) = results["ours"], results["baseline"]
    agree = abs(loss_ours - loss_base) < 1e-5 and all(torch.allclose(a, b, atol=1e-5)
                                                      for a, b in zip(grads_ours, grads_base))
    print(f"{args.tracks} tracks, {args.batch} pairs x {args.negatives} negatives, dim {args.dim}")
    print(f"ours (one score matrix): {seconds['ours']:.3f} s per step")
    print(f"baseline (every row):    {seconds['baseline']:.3f} s per step")
    print(f"baseline / ours: {seconds['baseline'] / seconds['ours']:.1f}x; same loss and gradients: {agree}")
    if not agree:
        sys.exit(1)


if __name__ == "__main__":
    main()
