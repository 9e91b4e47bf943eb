"""Benchmark: BERT4Rec time per epoch at the journal's scale, frozen 768-d content items, on CPU (or CUDA).

The log is :mod:`evaluate_scale`'s generated tamm2025-shaped split (21,018 users x 55,262 tracks,
5.37 M train rows, 768-d vectors; ``--workdir DIR --reuse`` uses data generated there before).
Each side runs in a fresh process (so peak memory is its own):

- **library**, once per ``--loss`` (default both, ``softmax`` first, on the same batches and masks):
  ``bert4rec`` (``items="frozen"``, the study's use; every other option at its default) fitted by
  ``BERT4RecRecommender.fit`` on the train events and the embedding table, without validation (an
  epoch is the training pass alone). The real data path runs (catalogue, ordered
  histories, masking, the visible-items mask); only the list of an epoch's batches is cut to its first
  ``--steps`` batches (0: the whole epoch), and each step is timed. Seconds per epoch = setup +
  steps per epoch x the mean step (first step left out as warm-up) when fewer steps than an epoch
  ran: printed as an extrapolation, with the number of steps it rests on. Then each loss's epoch and
  peak memory against the full softmax's: the sampled loss (gBCE, 256 negatives per sequence) skips
  the (masked positions x 55 k tracks) score matrices.
- **plain** (with the softmax): the same network (``build_network``), the same optimiser, the same
  batch shapes (sequences, width and masked positions of each timed step), random tokens, no data
  pipeline and no visible-items mask: one forward + backward + AdamW step each. Also timed: the same
  with the visible-items mask (what excluding visible tracks from the softmax costs), and torch's
  float32 matmul rate.

    python benchmarks/bert4rec_scale.py [--workdir DIR [--reuse]] [--scale 1.0] [--steps 20] [--device cpu]
        [--loss softmax,gbce] [--option key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def library_side(directory: Path, steps: int, device: str, options: dict) -> dict:
    """Fit bert4rec (``options`` over the defaults) on the generated split, timing each step; batch shapes
    for the plain side; resident memory (MB) when the first step began."""
    import torch

    import sonic.rouge.models.bert4rec as b4
    from sonic.cream.data import load_events
    from sonic.tails.table import read_embeddings

    started = time.perf_counter()
    train = load_events(directory / "split" / "train.parquet")
    table = read_embeddings(directory / "emb" / "gen.parquet")
    read_seconds = time.perf_counter() - started
    stamps: list[float] = []
    cpu_stamps: list[float] = []
    shapes: list[list[int]] = []
    info: dict = {}
    cut = b4._length_batches
    mask = b4.mask_batch

    def timed_batches(users, lengths, batch_size, rng):
        batches = cut(users, lengths, batch_size, rng)
        info["steps_per_epoch"] = len(batches)
        chosen = batches if steps <= 0 else batches[:steps]

        def stamped():
            for batch in chosen:
                if not stamps:
                    info["rss_mb_at_first_step"] = resident_mb()
                stamps.append(time.perf_counter())
                cpu_stamps.append(time.process_time())
                yield batch
            stamps.append(time.perf_counter())
            cpu_stamps.append(time.process_time())

        return stamped()

    def recorded_mask(sequences, *args):
        tokens, labels = mask(sequences, *args)
        shapes.append([int(tokens.shape[0]), int(tokens.shape[1]), int((labels >= 0).sum())])
        return tokens, labels

    b4._length_batches, b4.mask_batch = timed_batches, recorded_mask
    model = b4.BERT4RecRecommender(**{"items": "frozen", "max_epochs": 1, **options})
    fit_started = time.perf_counter()
    model.fit(train, item_embeddings=table, device=device, seed=0)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    fit_seconds = time.perf_counter() - fit_started
    step_times = np.diff(stamps)
    peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    return {
        "read_seconds": read_seconds,
        "setup_seconds": stamps[0] - fit_started,
        "fit_seconds": fit_seconds,
        "step_seconds": step_times.tolist(),
        "step_cpu_seconds": np.diff(cpu_stamps).tolist(),
        "steps_per_epoch": info["steps_per_epoch"],
        "shapes": shapes,
        "n_items": int(model.describe()["n_catalogue_tracks"]),
        "threads": model.config.threads or torch.get_num_threads(),
        "peak_gpu_mb": peak_gpu,
        "rss_mb_at_first_step": info["rss_mb_at_first_step"],
        "precision": model.describe()["precision"],
    }


def resident_mb() -> float:
    """This process's resident memory now, in MB (Linux)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def plain_side(directory: Path, shapes: list[list[int]], n_items: int, device: str, threads: int = 0) -> dict:
    """The same network and optimiser on random batches of the given shapes; and torch's matmul rate."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    from sonic.rouge.models.bert4rec import BERT4RecConfig, visible_items
    from sonic.rouge.models.bert4rec_net import FIRST_ITEM, build_network

    config = BERT4RecConfig()
    torch.manual_seed(0)
    chosen = torch.device(device)
    content = torch.randn(n_items, 768)
    net = build_network(n_items, items="frozen", hidden=config.hidden, layers=config.layers, heads=config.heads,
                        max_len=config.max_len, dropout=config.dropout, content=content).to(chosen)
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(0)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=chosen.type == "cuda")

    def step(batch: int, width: int, masked: int, with_mask: bool) -> None:
        tokens = torch.randint(FIRST_ITEM, n_items + FIRST_ITEM, (batch, width), generator=generator)
        flat = torch.randperm(batch * width, generator=generator)[:masked]
        picked = torch.zeros(batch * width, dtype=torch.bool)
        picked[flat] = True
        picked = picked.view(batch, width)
        targets = torch.randint(0, n_items, (int(picked.sum()),), generator=generator)
        tokens, picked, targets = tokens.to(chosen), picked.to(chosen), targets.to(chosen)
        with autocast:
            vectors = net.item_vectors()
            states = net.encode(tokens, vectors)
            scores = net.scores(states[picked], vectors).float()
            if with_mask:
                excluded = visible_items(tokens, n_items)[picked.nonzero()[:, 0]]
                scores = scores.masked_fill(excluded, float("-inf"))
            loss = torch.nn.functional.cross_entropy(scores, targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        loss.item()

    def timed(with_mask: bool) -> list[float]:
        times = []
        for batch, width, masked in shapes:
            started = time.perf_counter()
            step(batch, width, masked, with_mask)
            if chosen.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        return times

    plain = timed(False)
    masked = timed(True)
    size = 2048
    a, b = torch.randn(size, size, device=chosen), torch.randn(size, size, device=chosen)
    a @ b
    rounds = 5
    started = time.perf_counter()
    for _ in range(rounds):
        a @ b
    if chosen.type == "cuda":
        torch.cuda.synchronize()
    gflops = rounds * 2 * size**3 / (time.perf_counter() - started) / 1e9
    return {"plain_step_seconds": plain, "masked_step_seconds": masked, "matmul_gflops": gflops,
            "threads": torch.get_num_threads()}


def run_side(side: str, directory: Path, **arguments) -> dict:
    """One side in a fresh interpreter: its result, wall seconds, CPU seconds and peak RSS (MB)."""
    code = (f"import sys, time, json, resource; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import bert4rec_scale as b; from pathlib import Path; t = time.perf_counter(); "
            f"r = b.{side}_side(Path({str(directory)!r}), **json.loads(sys.argv[1])); "
            f"s = time.perf_counter() - t; u = resource.getrusage(resource.RUSAGE_SELF); "
            f"print(json.dumps({{'seconds': s, 'cpu': u.ru_utime + u.ru_stime, 'peak_mb': u.ru_maxrss / 1024, **r}}))")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(arguments)], capture_output=True, text=True,
                          env=os.environ)
    if done.returncode != 0:
        raise SystemExit(f"{side} side failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    import evaluate_scale

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of users, tracks and rows")
    parser.add_argument("--steps", type=int, default=20, help="steps timed (0: a whole epoch)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated data here (default: temp)")
    parser.add_argument("--reuse", action="store_true", help="use the data generated in --workdir before")
    parser.add_argument("--loss", default="softmax,gbce", help="bert4rec losses, each timed in its own process")
    parser.add_argument("--option", action="append", default=[], help="another bert4rec option, key=value")
    args = parser.parse_args()
    from sonic.rouge.models.bert4rec import BERT4RecConfig
    from sonic.rouge.options import split_pairs, typed_options

    options = typed_options(BERT4RecConfig, split_pairs(args.option), "bert4rec")
    losses = args.loss.split(",")
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as temporary:
        directory = args.workdir or Path(temporary)
        if args.reuse and (directory / "sizes.json").is_file():
            sizes = json.loads((directory / "sizes.json").read_text())
        else:
            sizes = evaluate_scale.generate(directory, args.scale)
            (directory / "sizes.json").write_text(json.dumps(sizes))
        print("data: " + ", ".join(f"{key} {value:,}" for key, value in sizes.items()) + f"; {os.cpu_count()} CPUs; "
              f"device {args.device}", flush=True)
        libs = {loss: run_side("library", directory, steps=args.steps, device=args.device,
                               options={**options, "loss": loss}) for loss in losses}
        plain = None
        if "softmax" in libs:
            soft = libs["softmax"]
            plain = run_side("plain", directory, shapes=soft["shapes"], n_items=soft["n_items"], device=args.device,
                             threads=options.get("threads", 0))

    epochs = {}
    for loss, lib in libs.items():
        print(f"\nloss={loss} (precision {lib['precision']}" + "".join(f", {k}={v}" for k, v in options.items()) + ")")
        epochs[loss] = describe_library(lib)
    if plain is not None:
        describe_plain(libs["softmax"], plain)
    for loss in losses:
        if loss != "softmax" and "softmax" in libs:
            soft, other = libs["softmax"], libs[loss]
            print(f"\n{loss} against the full softmax, same batches: epoch {epochs[loss]:,.0f} s vs "
                  f"{epochs['softmax']:,.0f} s ({epochs['softmax'] / epochs[loss]:.1f}x faster); peak RSS "
                  f"{other['peak_mb']:,.0f} MB vs {soft['peak_mb']:,.0f} MB ({soft['peak_mb'] / other['peak_mb']:.1f}x "
                  f"lower); RSS when training began {other['rss_mb_at_first_step']:,.0f} MB vs "
                  f"{soft['rss_mb_at_first_step']:,.0f} MB; CPU per step {cpu_step(other):.3f} s vs "
                  f"{cpu_step(soft):.3f} s ({cpu_step(soft) / cpu_step(other):.1f}x)")
    print(f"load average after: {os.getloadavg()}")


def cpu_step(lib: dict) -> float:
    """Mean CPU seconds per timed step, the first left out when there are more."""
    cpu = np.asarray(lib["step_cpu_seconds"])
    return float((cpu[1:] if len(cpu) > 1 else cpu).mean())


def describe_library(lib: dict) -> float:
    """Print the library side's figures; returns the epoch's seconds (measured or extrapolated)."""
    steps = np.asarray(lib["step_seconds"])
    timed = steps[1:] if len(steps) > 1 else steps
    per_epoch, n_epoch = lib["steps_per_epoch"], len(steps)
    mean_step = float(timed.mean())
    shapes = np.asarray(lib["shapes"])
    print(f"catalogue {lib['n_items']:,} items; batches of {int(shapes[:, 0].max())} sequences; timed steps: width "
          f"{int(shapes[:, 1].min())}-{int(shapes[:, 1].max())}, masked positions {int(shapes[:, 2].min())}-"
          f"{int(shapes[:, 2].max())}; torch threads {lib['threads']}")
    print(f" library: read {lib['read_seconds']:.1f} s, fit setup {lib['setup_seconds']:.1f} s (catalogue, histories, "
          f"network), {n_epoch} steps of {per_epoch} per epoch: first {steps[0]:.2f} s, then mean {mean_step:.3f} s "
          f"(median {float(np.median(timed)):.3f}); peak {lib['peak_mb']:.0f} MB (when training began "
          f"{lib['rss_mb_at_first_step']:.0f} MB)"
          + (f", GPU peak {lib['peak_gpu_mb']:.0f} MB" if lib["peak_gpu_mb"] else ""))
    if n_epoch >= per_epoch:
        epoch = lib["setup_seconds"] + float(steps.sum())
        print(f"   epoch: {epoch:.1f} s measured (setup + {per_epoch} steps)")
        return epoch
    estimate = lib["setup_seconds"] + steps[0] + mean_step * (per_epoch - 1)
    print(f"   epoch: {estimate:.0f} s EXTRAPOLATED from {n_epoch} timed steps (setup + first step + "
          f"{per_epoch - 1} x mean of steps 2-{n_epoch}); training steps alone {mean_step * per_epoch:.0f} s; "
          f"CPU per step {cpu_step(lib):.3f} s")
    return float(estimate)


def describe_plain(lib: dict, plain: dict) -> None:
    """Print the plain side against the library's softmax side."""
    steps = np.asarray(lib["step_seconds"])
    mean_step = float((steps[1:] if len(steps) > 1 else steps).mean())
    plain_steps = np.asarray(plain["plain_step_seconds"])[1:] if len(steps) > 1 else plain["plain_step_seconds"]
    masked_steps = np.asarray(plain["masked_step_seconds"])[1:] if len(steps) > 1 else plain["masked_step_seconds"]
    print(f"   plain: same network, shapes and optimiser, random tokens, no mask: mean {plain_steps.mean():.3f} s/step;"
          f" with the visible-items mask {masked_steps.mean():.3f} s/step; peak {plain['peak_mb']:.0f} MB; "
          f"torch float32 matmul {plain['matmul_gflops']:.0f} GFLOP/s")
    print(f"   ratio library/plain per step: {mean_step / plain_steps.mean():.2f} (mask alone: "
          f"{masked_steps.mean() / plain_steps.mean():.2f}; library/plain-with-mask "
          f"{mean_step / masked_steps.mean():.2f})")


if __name__ == "__main__":
    main()
