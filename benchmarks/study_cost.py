"""Benchmark: what the whole Music4All study costs, measured on this machine, and docs/scale.md's estimate from it.

Measured here, in one run (the load average is printed before and after):

- **decoding**: sonic's ``decode`` of generated 30-s 44.1 kHz stereo mp3 clips (``embed_cpu.make_clips``)
  to mono, and soxr resampling of the result to each rate the embedders use, CPU and wall seconds per clip;
- **each audio/picture embedder** (``--models``; default: the study's): the published architecture at its
  published size with random weights (``published_shapes.py``), one warm-up call on a 5-s clip, then
  ``--clips`` decoded 30-s clips through ``embed`` in batches of ``min(--clips, 16)`` (16: the study's
  batch); CPU and wall seconds per clip. Random weights cost what the published ones cost;
- **knn**: one ``run_model("knn", ...)`` end to end (read, fit, rank the catalogue, evaluate val, test and
  cold_test at the study's ks, write the run folder) on ``evaluate_scale.py``'s journal-scale split
  (21,018 users x 55,262 tracks, 5.37 M train pairs, 768-d vectors). The generated split has no cold
  test: a copy of its test (10 k users; Onion's cold test has 4.5 k) stands in, so this is an upper bound;
- **snn** and **bert4rec** (each ``--bert4rec-loss``, when the option exists): ``fit`` on the same split
  (no validation), stopped after ``--steps`` optimiser steps; the epoch is extrapolated as steps per
  epoch x the mean step (the first, warm-up, left out), setup apart. A run's epochs come from
  ``--snn-epochs`` and ``--bert4rec-best-epoch`` (+ the model's early-stopping patience): the
  MovieLens/Onion figures, printed with where they came from.

Each recommender side runs in a fresh process. Without a GPU, GPU figures are ASSUMPTIONS made by one
stated rule (CPU seconds x this machine's measured matmul rate / ``--gpu-tflops``); on a GPU machine
(``--device cuda`` or ``auto``) the models run there and those rows are measured. The markdown goes
between the markers of ``docs/scale.md`` (``study_cost_table.py``), and the figures to ``--json``.

    python benchmarks/study_cost.py [--quick] [--models mert-v1-330m,musicnn] [--clips 2] [--device auto]
        [--json FILE] [--from-json FILE] [--page docs/scale.md | --no-write] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from study_cost_table import (  # noqa: E402
    DecodeCost,
    EmbedderCost,
    Machine,
    Measurements,
    RunCost,
    Study,
    section,
    write_section,
)

ROOT = Path(__file__).resolve().parents[1]
STUDY_FILE = ROOT / "examples" / "music4all-onion.toml"
MUSIC4ALL_TRACKS = 109_269
STUDY_BATCH = 16
KS = (1, 5, 10, 20, 50, 100)
#: bert4rec's best epoch on MovieLens-100k with frozen content items (the study's use), each loss, from
#: ``benchmarks/bert4rec.py --items frozen --loss softmax,gbce --max-epochs 200 --patience 15 --seed 0``
#: (2026-12-07): the softmax stopped early (epoch 108); gbce reached the 200-epoch cap still improving.
BERT4REC_BEST_EPOCHS = {"softmax": 78, "gbce": 178}
BERT4REC_SOURCES = {
    "softmax": ("best epoch {best} on MovieLens-100k (frozen SVD items, full softmax, stopped early) + patience "
                "{patience}"),
    "gbce": ("best epoch {best} on MovieLens-100k (frozen SVD items, gbce, a run capped at 200 epochs and still "
             "improving: a lower bound) + patience {patience}"),
}
#: No snn run on MovieLens or Onion is recorded; the earlier hand-made estimate's count stands.
SNN_EPOCHS = 30
SNN_SOURCE = "ASSUMPTION: no MovieLens/Onion snn run recorded; the earlier estimate's 30 epochs (patience 16)"
#: The GPU rule (runs without a GPU): an effective rate, and a floor per training step.
GPU_TFLOPS = 50.0
GPU_TFLOPS_WHY = ("three quarters of an H100's 67 TFLOP/s float32 rate without tensor cores: sonic runs the "
                  "embedders in float32 unless precision=bfloat16 is asked for")
GPU_STEP_MS = 10.0


class _Enough(BaseException):  # noqa: N818 - not an error: stops a fit after the timed steps
    """Raised by the optimiser hook once enough steps are timed (a BaseException: nothing in fit catches it)."""


# ----------------------------------------------------------------------------------------- this machine


def machine() -> Machine:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return Machine(cpu=cpu, cores=os.cpu_count() or 1, gpu=gpu, date=datetime.date.today().isoformat(),
                   load=tuple(round(x, 2) for x in os.getloadavg()))


def matmul_gflops(device: str = "cpu", size: int = 2048, rounds: int = 5) -> float:
    """torch's float32 matmul rate here (all threads), GFLOP/s."""
    import torch

    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    a @ b
    started = time.perf_counter()
    for _ in range(rounds):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return rounds * 2 * size**3 / (time.perf_counter() - started) / 1e9


def study_counts() -> Study:
    """The study of ``examples/music4all-onion.toml``, counted as docs/scale.md counts it."""
    from published_shapes import BUILDERS

    config = tomllib.loads(STUDY_FILE.read_text())
    names = config["embeddings"]["names"]
    recommenders = [entry["name"] for entry in config["recommenders"]]
    content = [entry for entry in config["recommenders"] if entry["name"] in ("knn", "snn", "bert4rec")]
    return Study(
        tracks=MUSIC4ALL_TRACKS,
        audio_embedders=tuple(n for n in names if n in BUILDERS),
        other_embedders=tuple(n for n in names if n not in BUILDERS),
        fusions=len(config["embeddings"].get("fusions", [])),
        seeds=len(config["evaluation"]["seeds"]),
        content_models=tuple(entry["name"] for entry in content),
        content_labels=tuple(entry.get("label", entry["name"]) for entry in content),
        baselines=tuple(n for n in recommenders if n not in ("knn", "snn", "bert4rec")),
    )


def clocked(function, *args, **kwargs):
    """(wall s, CPU s of this process, result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu, result


# ----------------------------------------------------------------------------------- decoding, embedders


def decode_costs(paths: list[Path], rates: list[int]) -> tuple[list[DecodeCost], int]:
    """Mono decoding (rate 0) and resampling to each of ``rates``, per clip; and the files' own rate."""
    from sonic.cream.audio import decode
    from sonic.cream.audio.load import resample

    walls, cpus, waveforms, native = [], [], [], 0
    for path in paths:
        wall, cpu, (waveform, native) = clocked(decode, path)
        walls.append(wall), cpus.append(cpu), waveforms.append(waveform)
    costs = [DecodeCost(0, len(paths), float(np.mean(walls)), float(np.mean(cpus)))]
    for rate in rates:
        timed = [clocked(resample, waveform, native, rate)[:2] for waveform in waveforms]
        costs.append(DecodeCost(rate, len(paths), *(float(x) for x in np.mean(timed, axis=0))))
    return costs, native


def embedder_cost(name: str, paths: list[Path], folder: Path, device: str) -> EmbedderCost:
    """``name`` at its published size (random weights) on the decoded clips of ``paths``."""
    from published_shapes import BUILDERS

    from sonic.cream.audio import decode

    batch = min(len(paths), STUDY_BATCH)
    embedder = BUILDERS[name](folder / name, device, STUDY_BATCH)
    waveforms = [decode(path, sample_rate=embedder.sample_rate)[0] for path in paths]
    embedder.embed([waveforms[0][: 5 * embedder.sample_rate]])  # warm-up: first calls, kernels
    wall, cpu = 0.0, 0.0
    for start in range(0, len(waveforms), batch):
        took_wall, took_cpu, vectors = clocked(embedder.embed, waveforms[start : start + batch])
        wall, cpu = wall + took_wall, cpu + took_cpu
        if vectors.shape != (len(waveforms[start : start + batch]), embedder.dim):
            raise SystemExit(f"{name} gave vectors of shape {vectors.shape}")
    cost = EmbedderCost(name=name, sample_rate=int(embedder.sample_rate), clips=len(paths), batch=batch,
                        wall_per_clip=wall / len(paths), cpu_per_clip=cpu / len(paths),
                        device="cuda" if str(getattr(embedder, "device", "cpu")).startswith("cuda") else "cpu",
                        gpu_runs=not getattr(embedder, "runs_in_workers", False))  # fmt: skip
    del embedder
    gc.collect()
    return cost


# ------------------------------------------------------------------------ recommenders (fresh processes)


def knn_side(directory: str) -> dict:
    """One knn run end to end at journal scale: wall and CPU seconds."""
    import shutil

    from sonic.rouge.run import run_model

    split = Path(directory) / "split"
    if not (split / "cold_test.parquet").is_file():  # the generated split has none: its test stands in
        shutil.copyfile(split / "test.parquet", split / "cold_test.parquet")
    out = Path(directory) / "knn-run"
    shutil.rmtree(out, ignore_errors=True)
    wall, cpu, _ = clocked(run_model, "knn", split, embedding=Path(directory) / "emb" / "gen.parquet",
                           mode=["val", "test", "cold_test"], ks=KS, out_dir=out)  # fmt: skip
    return {"wall": wall, "cpu": cpu}


def trained_side(directory: str, model: str, steps: int, device: str, options: dict) -> dict:
    """``model`` fitted on the journal-scale split (no validation), stopped after ``steps`` optimiser steps.

    Every optimiser step is stamped (wall, CPU) by a hook; the first is the warm-up. Steps per epoch:
    snn ``ceil(train pairs / batch_size)``, bert4rec ``ceil(users with a history / batch_size)`` (its
    batches cut one sorted list of users).
    """
    import torch

    from sonic.cream.data import load_events
    from sonic.rouge.base import RECOMMENDERS
    from sonic.tails.table import read_embeddings

    directory = Path(directory)
    read_wall, read_cpu, (train, table) = clocked(
        lambda: (load_events(directory / "split" / "train.parquet"), read_embeddings(directory / "emb" / "gen.parquet")))
    recommender = RECOMMENDERS.create(model, **options)
    batch_size = recommender.config.batch_size
    with_vector = train[train["track_id"].astype(str).isin(set(map(str, table.track_ids)))]
    if model == "snn":
        per_epoch = -(-len(with_vector[["user_id", "track_id"]].drop_duplicates()) // batch_size)
    else:
        per_epoch = -(-with_vector["user_id"].nunique() // batch_size)
    steps = max(2, min(steps, per_epoch))
    stamps: list[tuple[float, float]] = []

    def stamp(optimizer, args, kwargs) -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        stamps.append((time.perf_counter(), time.process_time()))
        if len(stamps) >= steps:
            raise _Enough

    from torch.optim.optimizer import register_optimizer_step_post_hook

    handle = register_optimizer_step_post_hook(stamp)
    started = (time.perf_counter(), time.process_time())
    try:
        recommender.fit(train, item_embeddings=table, device=device, seed=0)
    except _Enough:
        pass
    finally:
        handle.remove()
    if len(stamps) < steps:
        raise SystemExit(f"{model} trained {len(stamps)} steps, fewer than the {steps} asked for")
    times = np.diff(np.asarray([started, *stamps]), axis=0)  # (steps, 2): the first is setup + step 1
    step_wall, step_cpu = times[1:].mean(axis=0)
    return {"read_wall": read_wall, "read_cpu": read_cpu, "first": times[0].tolist(), "step_wall": step_wall,
            "step_cpu": step_cpu, "steps": steps, "per_epoch": per_epoch,
            "device": "cuda" if device.startswith("cuda") else "cpu",
            "patience": int(getattr(recommender.config, "patience", 0))}


def in_fresh_process(function: str, **arguments) -> dict:
    """``function(**arguments)`` of this module in a fresh interpreter (its own memory); its JSON result."""
    code = (f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); import study_cost; "
            f"print(json.dumps(study_cost.{function}(**json.loads(sys.argv[1]))))")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(arguments)], capture_output=True, text=True,
                          env=os.environ)
    if done.returncode != 0:
        raise SystemExit(f"{function} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bert4rec_losses(asked: list[str]) -> list[str]:
    """The losses asked for that this bert4rec has (only the softmax before its ``loss`` option existed)."""
    import dataclasses

    from sonic.rouge.models.bert4rec import BERT4RecConfig

    if "loss" not in {f.name for f in dataclasses.fields(BERT4RecConfig)}:
        return ["softmax"]
    return asked


def run_costs(directory: Path, args: argparse.Namespace, device: str) -> list[RunCost]:
    knn = in_fresh_process("knn_side", directory=str(directory))
    print(f"  knn run: {knn['wall']:.1f} s wall, {knn['cpu']:.1f} CPU-s", flush=True)
    costs = [RunCost(model="knn", variant="", device="cpu", setup_seconds=0.0, epoch_seconds=0.0,
                     epoch_cpu_seconds=0.0, steps_timed=0, steps_per_epoch=0, epochs=0, epochs_source="",
                     run_seconds=knn["wall"], run_cpu_seconds=knn["cpu"])]  # fmt: skip
    plans = [("snn", "", {}, args.snn_steps)]
    losses = bert4rec_losses(args.bert4rec_loss.split(","))
    for loss in losses:
        options = {"items": "frozen", **({"loss": loss} if len(losses) > 1 or loss != "softmax" else {})}
        plans.append(("bert4rec", f"loss={loss}", options, args.bert4rec_steps))
    for model, variant, options, steps in plans:
        side = in_fresh_process("trained_side", directory=str(directory), model=model, steps=steps, device=device,
                                options=options)
        if model == "snn":
            epochs, source = args.snn_epochs, args.snn_epochs_source
        else:
            loss = options.get("loss", "softmax")
            best = args.bert4rec_best_epoch or BERT4REC_BEST_EPOCHS[loss]
            epochs = best + side["patience"]
            source = args.bert4rec_epochs_source or BERT4REC_SOURCES[loss]
            source = source.format(best=best, patience=side["patience"])
        setup = side["read_wall"] + side["first"][0] - side["step_wall"]
        cost = RunCost(model=model, variant=variant, device=side["device"], setup_seconds=setup,
                       epoch_seconds=side["per_epoch"] * side["step_wall"],
                       epoch_cpu_seconds=side["per_epoch"] * side["step_cpu"], steps_timed=side["steps"],
                       steps_per_epoch=side["per_epoch"], epochs=epochs, epochs_source=source)  # fmt: skip
        print(f"  {cost.label}: {side['steps']} steps timed, {side['step_wall']:.3f} s wall / {side['step_cpu']:.3f} "
              f"CPU-s per step after the first; {side['per_epoch']:,} steps per epoch -> epoch "
              f"{cost.epoch_seconds:,.0f} s EXTRAPOLATED; setup {setup:.1f} s; {epochs} epochs ({source})", flush=True)
        costs.append(cost)
    return costs


# ------------------------------------------------------------------------------------------------- main


def measure(args: argparse.Namespace) -> Measurements:
    from embed_cpu import make_clips

    import evaluate_scale

    here = machine()
    device = args.device
    if device == "auto":
        device = "cuda" if here.gpu else "cpu"
    print(f"{here.short()}; load average {here.load}; device {device}", flush=True)
    study = study_counts()
    names = args.models.split(",") if args.models else list(study.audio_embedders)
    gflops = matmul_gflops()
    with tempfile.TemporaryDirectory() as temporary:
        scratch = Path(temporary)
        (scratch / "clips").mkdir()
        clips = make_clips(scratch / "clips", max(args.clips, args.decode_clips), 30.0)
        from published_shapes import BUILDERS

        rates = sorted({_rate(BUILDERS, name) for name in names})
        decodes, native = decode_costs(clips[: args.decode_clips], rates)
        for d in decodes:
            print(f"  {'decode' if d.sample_rate == 0 else f'resample {native} -> {d.sample_rate}'}: "
                  f"{d.cpu_per_clip:.3f} CPU-s, {d.wall_per_clip:.3f} s wall per clip", flush=True)
        embedders = []
        for name in names:
            cost = embedder_cost(name, clips[: args.clips], scratch / "models", device)
            print(f"  {name}: {cost.cpu_per_clip:.2f} CPU-s, {cost.wall_per_clip:.2f} s wall per clip on {cost.device} "
                  f"({cost.clips} clips, batches of {cost.batch})", flush=True)
            embedders.append(cost)
        directory = args.workdir or scratch / "journal"
        if not (directory / "sizes.json").is_file():
            sizes = evaluate_scale.generate(directory, 1.0)
            (directory / "sizes.json").write_text(json.dumps(sizes))
        runs = run_costs(directory, args, device) if not args.no_runs else []
    gflops = (gflops + matmul_gflops()) / 2  # before and after the models: the machine's load moves
    print(f"float32 matmul {gflops:,.0f} GFLOP/s; load average after {os.getloadavg()}", flush=True)
    notes = (
        "An epoch of `snn` and `bert4rec` here is the training pass alone; the study also validates after every "
        "epoch (val loss for `snn`, NDCG@10 for `bert4rec`), which is not counted.",
        "A `knn` run evaluates val, test and cold_test; the generated split has no cold test, so a copy of its test "
        "(10 k users; Onion's cold test has 4.5 k) stands in: an upper bound.",
        f"Load average when the run ended: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (the machine is shared; "
        "wall times move with it, CPU seconds less).",
    )
    return Measurements(machine=here, study=study, embedders=tuple(embedders), decodes=tuple(decodes),
                        runs=tuple(runs), matmul_gflops=gflops, gpu_tflops=args.gpu_tflops or GPU_TFLOPS,
                        gpu_step_ms=args.gpu_step_ms or GPU_STEP_MS, notes=notes)


def _rate(builders, name: str) -> int:
    from sonic.tails.base import CATALOGUE

    if name not in builders:
        raise SystemExit(f"no published-size builder for {name!r}; known: {', '.join(builders)}")
    rates = {entry.name: entry.sample_rate for entry in CATALOGUE}
    return rates.get(name, rates.get("mfcc_<N>") if name.startswith("mfcc_") else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer clips and steps (1 clip, 2 decodes, 3/5 steps)")
    parser.add_argument("--models", default="", help="embedders, comma-separated (default: the study's 11)")
    parser.add_argument("--clips", type=int, default=None, help="30-s clips per embedder (default 2; 16 on a GPU)")
    parser.add_argument("--decode-clips", type=int, default=None, help="clips decoded (default 4)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--snn-steps", type=int, default=None, help="snn optimiser steps timed (default 5)")
    parser.add_argument("--bert4rec-steps", type=int, default=None, help="bert4rec steps timed (default 12)")
    parser.add_argument("--bert4rec-loss", default="softmax,gbce", help="losses costed (those bert4rec has)")
    parser.add_argument("--snn-epochs", type=int, default=SNN_EPOCHS)
    parser.add_argument("--snn-epochs-source", default=SNN_SOURCE)
    parser.add_argument("--bert4rec-best-epoch", type=int, default=None,
                        help="one best epoch for every loss (default: each loss's MovieLens figure)")
    parser.add_argument("--bert4rec-epochs-source", default=None, help="where --bert4rec-best-epoch comes from")
    parser.add_argument("--gpu-tflops", type=float, default=None,
                        help=f"the GPU rule's effective rate (default {GPU_TFLOPS:g}: {GPU_TFLOPS_WHY})")
    parser.add_argument("--gpu-step-ms", type=float, default=None,
                        help=f"the GPU rule's floor per training step (default {GPU_STEP_MS:g} ms)")
    parser.add_argument("--no-runs", action="store_true", help="embedders and decoding only")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated split here and reuse it")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures (and the rule) here")
    parser.add_argument("--from-json", type=Path, default=None, help="render figures saved by --json; measure nothing")
    parser.add_argument("--page", type=Path, default=ROOT / "docs" / "scale.md")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing the page")
    args = parser.parse_args()
    gpu = machine().gpu is not None and args.device != "cpu"
    args.clips = args.clips or (1 if args.quick else STUDY_BATCH if gpu else 2)
    args.decode_clips = args.decode_clips or (2 if args.quick else 4)
    args.snn_steps = args.snn_steps or (3 if args.quick else 5)
    args.bert4rec_steps = args.bert4rec_steps or (5 if args.quick else 12)

    if args.from_json:
        measurements = Measurements.from_json(args.from_json.read_text())
        for name in ("gpu_tflops", "gpu_step_ms"):  # the rule may be restated without measuring again
            if getattr(args, name) is not None:
                measurements = dataclasses.replace(measurements, **{name: getattr(args, name)})
    else:
        measurements = measure(args)
    if args.json:
        args.json.write_text(measurements.to_json())
    body = section(measurements)
    if args.no_write:
        print(body)
    else:
        write_section(args.page, body)
        print(f"wrote the estimate into {args.page}")


if __name__ == "__main__":
    main()
