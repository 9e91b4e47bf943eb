"""Benchmark: where a training step of ``bert4rec`` and ``snn`` goes at the journal's scale.

The log is :mod:`evaluate_scale`'s generated tamm2025-shaped split (21,018 users x 55,262 tracks,
5.37 M train pairs, 768-d vectors; ``--workdir DIR --reuse`` uses data generated there before). Each
model is built as its ``fit`` builds it (catalogue, standardised vectors, network, optimiser, its
default options) and runs ``--steps`` real training steps made of the library's own pieces, in the
library's order, with a timer around each. The backward pass is split at the pieces' boundaries: each
piece's output is detached and its gradient handed back by hand, which gives the gradients one
backward gives. For comparison, the same batches also run as the library's step (one forward, one
backward): its mean must match the sum of the pieces.

- **bert4rec** (``items="frozen"``, 64 sequences of up to 300 tracks per step), for each ``--loss``:
  data (windows, masks), projection of the 768-d vectors (forward, backward), encoder (forward,
  backward), then the loss: for ``softmax`` the visible-items mask, the scores of every masked position
  against the whole catalogue and the cross-entropy; for ``gbce`` the negatives drawn per sequence and
  which of them each position keeps, the scores of the positive and of the negatives, and gBCE; then
  AdamW.
- **snn** (10,000 pairs of 20 negatives per step, hidden 768): sampling, the user mapping, the track
  mapping (path ``rows``: every sampled row, 210,000 per step; path ``tracks``: every catalogue track
  once, then picked), cosines + hinge loss, the backward of each, Adam.

Printed: mean wall and CPU seconds per piece over the steps (the first left out as warm-up), its share
of the step's CPU time, and the epoch the mean step implies (steps per epoch x step). Wall time on a
shared machine moves with its load; with ``--threads 1`` the CPU time is the work itself (threads that
spin waiting for a busy core count as CPU time too). The load average is printed before and after.

    python benchmarks/train_profile.py [--workdir DIR [--reuse]] [--steps 6] [--models bert4rec,snn]
        [--loss softmax,gbce] [--option key=value ...] [--snn-paths rows,tracks] [--threads 0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


class Timer:
    """Wall and CPU seconds per named piece; :meth:`lap` closes the piece begun at the last lap."""

    def __init__(self) -> None:
        self.pieces: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.start()

    def start(self) -> None:
        self._last = (time.perf_counter(), time.process_time())

    def lap(self, name: str) -> None:
        now = (time.perf_counter(), time.process_time())
        self.pieces[name].append((now[0] - self._last[0], now[1] - self._last[1]))
        self._last = now


def clocked(step) -> tuple[float, float]:
    """(wall, CPU) seconds of ``step()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    return time.perf_counter() - wall, time.process_time() - cpu


def load(directory: Path):
    from sonic.cream.data import load_events
    from sonic.rouge.models.content import content_catalogue
    from sonic.tails.table import read_embeddings

    train = load_events(directory / "split" / "train.parquet")
    table = read_embeddings(directory / "emb" / "gen.parquet")
    return train, *content_catalogue(train, table, standardise=True)


def bert4rec_profile(train, seen, content, loss_name: str, steps: int, options: dict) -> tuple[Timer, list, int]:
    """The pieces of ``steps`` bert4rec steps (``options`` over the defaults), the library's whole step on the
    same batches, steps per epoch."""
    import torch

    from sonic.rouge.models import bert4rec as b4
    from sonic.rouge.models.bert4rec_loss import (
        batch_rows,
        gbce_loss,
        masked_item_loss,
        sample_negatives,
        visible_items,
    )
    from sonic.rouge.models.bert4rec_net import build_network
    from sonic.rouge.models.history import ordered_histories

    config = b4.BERT4RecConfig(**{**options, "loss": loss_name})
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    sampler = b4._negative_generator(0, torch.device("cpu"))
    settings = b4._loss_settings(config, seen.n_tracks)
    net = build_network(seen.n_tracks, items="frozen", hidden=config.hidden, layers=config.layers,
                        heads=config.heads, max_len=config.max_len, dropout=config.dropout, content=content,
                        attention_dropout=config.attention_dropout)
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr)
    histories = ordered_histories(train, seen, what="train")
    batches = b4._length_batches(np.flatnonzero(histories.lengths > 0), histories.lengths, config.batch_size, rng)
    n_items, timer = seen.n_tracks, Timer()

    def masked(users):
        tokens, labels = b4.mask_batch([histories.of(u) for u in users], config.max_len, config.mask_prob,
                                       config.last_mask_prob, rng, config.prefix_prob)
        return torch.as_tensor(tokens), torch.as_tensor(labels)

    net.train()
    for users in batches[:steps]:
        timer.start()
        tokens, labels = masked(users)
        timer.lap("data: windows, masks")
        negatives = needed = None
        if loss_name == "gbce":  # as fit: the negatives first, then only the batch's rows projected
            negatives = sample_negatives(len(tokens), n_items, settings.negatives, sampler)
            needed = batch_rows(tokens, labels, negatives)
            timer.lap("loss: negatives, the batch's rows")
        vectors = net.item_vectors(needed)
        timer.lap("projection fwd")
        vectors_in = vectors.detach().requires_grad_()
        states = net.encode(tokens, vectors_in)
        timer.lap("encoder fwd")
        states_in = states.detach().requires_grad_()
        picked = labels >= 0
        rows, targets, hidden = picked.nonzero()[:, 0], labels[picked], states_in[picked]
        if loss_name == "softmax":
            excluded = visible_items(tokens, n_items)[rows]
            timer.lap("loss: visible-items mask")
            scores = net.scores(hidden, vectors_in)
            timer.lap("loss: scores, whole catalogue fwd")
            scores_in = scores.detach().requires_grad_()
            loss = masked_item_loss(scores_in, targets, excluded)
            timer.lap("loss: cross-entropy fwd")
        else:
            keep = (negatives[rows] != targets[:, None]) & ~visible_items(tokens, n_items).gather(1, negatives)[rows]
            timer.lap("loss: kept draws")
            scores = torch.cat([net.pair_scores(hidden, vectors_in, targets)[:, None],
                                net.scores_of(states_in, vectors_in, negatives)[picked]], dim=1)
            timer.lap("loss: scores, sampled fwd")
            scores_in = scores.detach().requires_grad_()
            loss = gbce_loss(scores_in[:, 0], scores_in[:, 1:], settings.beta, keep)
            timer.lap("loss: gbce fwd")
        loss.backward()
        timer.lap("loss: " + ("cross-entropy" if loss_name == "softmax" else "gbce") + " bwd")
        scores.backward(scores_in.grad)
        timer.lap("loss: scores bwd")
        states.backward(states_in.grad)
        timer.lap("encoder bwd")
        vectors.backward(vectors_in.grad)
        timer.lap("projection bwd")
        optimiser.step()
        optimiser.zero_grad()
        timer.lap("AdamW")

    def library_step(users):  # as fit runs it
        tokens, labels = masked(users)
        negatives = needed = None
        if loss_name == "gbce":
            negatives = sample_negatives(len(tokens), n_items, settings.negatives, sampler)
            needed = batch_rows(tokens, labels, negatives)
        vectors = net.item_vectors(needed)
        loss = b4.batch_loss(net, net.encode(tokens, vectors), vectors, tokens, labels, settings,
                             negatives=negatives)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    whole = [clocked(lambda: library_step(users)) for users in batches[:steps]]
    return timer, whole, len(batches)


def snn_profile(seen, vectors, path: str, steps: int) -> tuple[Timer, list[float], int]:
    """The pieces of ``steps`` snn steps mapping tracks by ``path``, the library's step, steps per epoch."""
    import torch

    from sonic.rouge.models import snn

    config = snn.SNNConfig()
    user_rows, track_rows = np.divmod(seen.seen_keys, seen.n_tracks)
    users = snn._mean_track_vectors(user_rows, track_rows, vectors, len(seen.user_ids))
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    net = snn._network(len(seen.user_ids), vectors.shape[1], vectors.shape[1], users, vectors)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.lr)
    train_users, train_tracks = torch.as_tensor(user_rows), torch.as_tensor(track_rows)
    order = torch.randperm(len(train_users), generator=generator)
    per_epoch = -(-len(order) // config.batch_size)
    timer = Timer()
    for step in range(steps):
        timer.start()
        batch = order[step * config.batch_size : (step + 1) * config.batch_size]
        negatives = torch.randint(seen.n_tracks, (len(batch), config.negatives), generator=generator)
        batch_users, positives = train_users[batch], train_tracks[batch]
        timer.lap("sampling")
        mapped_users = net.user_space(batch_users)
        timer.lap("user mapping fwd")
        if path == "tracks":
            mapped = net.item_space()
            timer.lap("track mapping fwd (every track once)")
            mapped_in = mapped.detach().requires_grad_()
            positive_rows, negative_rows = mapped_in[positives], mapped_in[negatives]
        else:
            mapped = torch.cat([net.item_space(positives)[:, None], net.item_space(negatives)], dim=1)
            timer.lap(f"track mapping fwd ({len(batch) * (1 + config.negatives):,} rows)")
            mapped_in = mapped.detach().requires_grad_()
            positive_rows, negative_rows = mapped_in[:, 0], mapped_in[:, 1:]
        users_in = mapped_users.detach().requires_grad_()
        loss = snn.hinge_loss((users_in * positive_rows).sum(-1),
                              torch.einsum("bh,bmh->bm", users_in, negative_rows), config.margin)
        timer.lap("cosines + hinge fwd")
        loss.backward()
        timer.lap("cosines + hinge bwd")
        mapped.backward(mapped_in.grad)
        timer.lap("track mapping bwd")
        mapped_users.backward(users_in.grad)
        timer.lap("user mapping bwd")
        optimiser.step()
        optimiser.zero_grad()
        timer.lap("Adam")

    def library_step(step):
        batch = order[step * config.batch_size : (step + 1) * config.batch_size]
        negatives = torch.randint(seen.n_tracks, (len(batch), config.negatives), generator=generator)
        loss = net.pair_loss(train_users[batch], train_tracks[batch], negatives, config.margin, path)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    whole = [clocked(lambda: library_step(step)) for step in range(steps)]
    return timer, whole, per_epoch


def report(title: str, timer: Timer, whole: list[tuple[float, float]], per_epoch: int) -> np.ndarray:
    """Print the pieces' table; returns the library step's mean (wall, CPU) seconds."""

    def mean(times):
        return np.mean(np.asarray(times[1:] if len(times) > 1 else times), axis=0)

    means = {name: mean(times) for name, times in timer.pieces.items()}
    step, library = sum(means.values()), mean(whole)
    print(f"\n{title}: {len(whole)} steps (first left out), {per_epoch} steps per epoch")
    print(f"  {'piece':42s} {'wall s':>8s} {'CPU s':>8s} {'CPU share':>9s}")
    for name, (wall, cpu) in means.items():
        print(f"  {name:42s} {wall:8.3f} {cpu:8.3f} {100 * cpu / step[1]:8.1f}%")
    print(f"  {'sum of the pieces':42s} {step[0]:8.3f} {step[1]:8.3f}  -> epoch {step[0] * per_epoch:,.0f} s wall, "
          f"{step[1] * per_epoch:,.0f} CPU-s")
    print(f"  {'library step (one backward)':42s} {library[0]:8.3f} {library[1]:8.3f}  -> epoch "
          f"{library[0] * per_epoch:,.0f} s wall, {library[1] * per_epoch:,.0f} CPU-s")
    return library


def main() -> None:
    import evaluate_scale

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of users, tracks and rows")
    parser.add_argument("--steps", type=int, default=6, help="steps timed per model (the first is warm-up)")
    parser.add_argument("--models", default="bert4rec,snn")
    parser.add_argument("--loss", default="softmax,gbce", help="bert4rec losses to profile")
    parser.add_argument("--option", action="append", default=[], help="a bert4rec option, key=value")
    parser.add_argument("--snn-paths", default="rows,tracks", help="snn track-mapping paths to profile")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's choice)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated data here (default: temp)")
    parser.add_argument("--reuse", action="store_true", help="use the data generated in --workdir before")
    args = parser.parse_args()
    import torch

    from sonic.rouge.models.bert4rec import BERT4RecConfig
    from sonic.rouge.options import split_pairs, typed_options

    options = typed_options(BERT4RecConfig, split_pairs(args.option), "bert4rec")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()}; {os.cpu_count()} CPUs; torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as temporary:
        directory = args.workdir or Path(temporary)
        if not (args.reuse and (directory / "sizes.json").is_file()):
            sizes = evaluate_scale.generate(directory, args.scale)
            (directory / "sizes.json").write_text(json.dumps(sizes))
        train, seen, vectors = load(directory)
    print(f"data: {len(seen.user_ids):,} users x {seen.n_tracks:,} tracks, {len(train):,} train rows, "
          f"{vectors.shape[1]}-d vectors")
    models = args.models.split(",")
    library = {}
    if "bert4rec" in models:
        for loss in args.loss.split(","):
            title = f"bert4rec loss={loss}" + "".join(f", {key}={value}" for key, value in options.items())
            library[loss] = report(title, *bert4rec_profile(train, seen, vectors, loss, args.steps, options))
        if {"softmax", "gbce"} <= set(library):
            wall, cpu = library["softmax"] / library["gbce"]
            print(f"\nbert4rec library step softmax / gbce: {wall:.1f}x wall, {cpu:.1f}x CPU")
    if "snn" in models:
        steps = {}
        for path in args.snn_paths.split(","):
            steps[path] = report(f"snn path={path}", *snn_profile(seen, vectors, path, args.steps))
        if {"rows", "tracks"} <= set(steps):
            wall, cpu = steps["rows"] / steps["tracks"]
            print(f"\nsnn library step rows / tracks: {wall:.1f}x wall, {cpu:.1f}x CPU")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
