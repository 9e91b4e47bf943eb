"""Benchmark: DINO ViT-S/16 pictures per second on this machine (CPU, or CUDA with ``--device cuda``).

A random-weight ViT-S/16 at its real size (width 384, 12 blocks, 6 heads, 224 x 224 pictures) is
written in timm's checkpoint layout to a temporary folder and loaded as ``dino_vits16`` is. Then, in
the same run, taking turns, on the same ``--images`` normalised pictures in batches of ``--batch-size``:

- ours: ``DinoEmbedder.picture_vectors`` (our ViT, the class token after the final norm), under the
  runner's inference context (bf16 autocast on CUDA);
- baseline: timm's own ``VisionTransformer.forward_features(x)[:, 0]`` with the same weights, under
  ``torch.inference_mode`` (float32). Importing timm imports torchvision; where torchvision's compiled
  operators do not match this torch, the two operator schemas its import needs are declared first.

It prints pictures per second of both and ours / baseline, and (for where the time goes end to end)
how many pictures per second ``spectrogram_images`` makes from 30 s clips on one CPU core. The class
tokens must agree (to 1e-3 of the largest value on CPU) or the script exits with status 1.

    python benchmarks/dino.py [--images 64] [--batch-size 32] [--repeats 3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from timing import timed

from sonic.tails.models.dino import DinoEmbedder, DinoOptions
from sonic.testing.vit_tiny import write_timm_checkpoint
from sonic.tails.shard_work import inference_context
from sonic.tails.vision import ImageConfig, spectrogram_images


def import_timm():
    try:
        import timm
    except RuntimeError as error:  # a torchvision built for another torch: declare what its import registers
        if "torchvision::" not in str(error):
            raise
        for name in [name for name in sys.modules if name.startswith(("torchvision", "timm"))]:
            del sys.modules[name]
        for op in ("nms", "qnms"):
            torch.library.define(f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import timm
    return timm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        write_timm_checkpoint(folder, patch_size=16, embed_dim=384, depth=12, img_size=224)
        ours = DinoEmbedder("dino_vits16", DinoOptions(checkpoint=folder, device=args.device))
        from safetensors.torch import load_file

        state = load_file(str(Path(folder) / "model.safetensors"))
    timm = import_timm()
    theirs = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0)
    theirs.load_state_dict(state, strict=True)
    theirs = theirs.eval().to(ours.device)

    rng = np.random.default_rng(0)
    pictures = torch.from_numpy(rng.standard_normal((args.images, 3, 224, 224)).astype(np.float32))
    batches = [pictures[i : i + args.batch_size].to(ours.device) for i in range(0, args.images, args.batch_size)]
    context = inference_context(ours)

    def run_ours():
        with context():
            out = torch.cat([ours.picture_vectors(batch).float() for batch in batches])
        return synced(out)

    def run_timm():
        with torch.inference_mode():
            out = torch.cat([theirs.forward_features(batch)[:, 0] for batch in batches])
        return synced(out)

    def synced(out):
        if out.is_cuda:
            torch.cuda.synchronize()
        return out.cpu().numpy()

    run_ours(), run_timm()  # warm-up
    seconds, results = timed({"ours": run_ours, "timm": run_timm}, args.repeats)

    clips = [rng.standard_normal(30 * 22050).astype(np.float32) * 0.1 for _ in range(2)]
    started = time.perf_counter()
    made = spectrogram_images(clips, config=ImageConfig())
    picture_rate = len(made.images) / (time.perf_counter() - started)

    print(f"DINO ViT-S/16 (random weights, real size), {args.images} pictures 224x224, batch {args.batch_size}, "
          f"device {ours.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}")
    for name, value in seconds.items():
        print(f"  {name:5s} {args.images / value:8.1f} pictures/s")
    print(f"ours / timm: {seconds['timm'] / seconds['ours']:.2f}x")
    print(f"pictures made by spectrogram_images: {picture_rate:.1f}/s on one core "
          f"({len(made.images)} tiles from 2 clips of 30 s)")
    scale = np.abs(results["timm"]).max()
    difference = np.abs(results["ours"] - results["timm"]).max() / scale
    tolerance = 1e-3 if ours.device.type == "cpu" else 5e-2  # bf16 on CUDA
    print(f"largest difference of the class tokens: {difference:.2e} of the largest value")
    return 0 if difference < tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
