"""Run as a script by test_dino.py: tiny ViT checkpoints in both formats, and timm's own forward on them.

``python dino_timm_reference.py OUT_DIR`` reads ``OUT_DIR/pictures_*.npy`` (normalised pictures,
(n, 3, 32, 32) float32) and writes:

- ``OUT_DIR/timm/``: a random tiny ViT saved by timm's own ``save_for_hf`` (config.json + model.safetensors);
- ``OUT_DIR/dino_tiny_pretrain.pth``: the same weights as the original DINO release stores them (a plain
  state dict, ``torch.save``);
- ``OUT_DIR/dino_tiny_full_checkpoint.pth``: as DINO's training checkpoints store them (``teacher`` and
  ``student`` entries, ``backbone.`` / ``module.backbone.`` prefixes, a projection ``head`` beside);
- ``OUT_DIR/reference_<pictures>.npz``: timm's outputs on each picture file.

It runs in its own process because importing timm imports torchvision: where the installed torchvision
wheel was built for another torch (its compiled operators fail to load), the two operator schemas
torchvision's import registers fake kernels for are declared first. The ViT uses none of them.
"""

import sys
from pathlib import Path

import numpy as np
import torch


def import_timm():
    try:
        import timm
    except RuntimeError as error:  # torchvision's compiled ops missing: declare the two schemas it needs
        if "torchvision::" not in str(error):
            raise
        for name in list(sys.modules):
            if name.startswith(("torchvision", "timm")):
                del sys.modules[name]
        for op in ("nms", "qnms"):
            torch.library.define(f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import timm
    return timm


def main(out: Path) -> None:
    timm = import_timm()
    from timm.models import save_for_hf

    torch.manual_seed(0)
    model = timm.create_model(
        "vit_small_patch16_224", pretrained=False, num_classes=0, embed_dim=128, depth=3, num_heads=2, img_size=32
    ).eval()
    with torch.no_grad():  # timm initialises biases and norms to constants: randomise them so every term counts
        for name, tensor in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                tensor.add_(0.1 * torch.randn_like(tensor))
    save_for_hf(model, str(out / "timm"), safe_serialization=True)
    state = model.state_dict()
    torch.save(state, out / "dino_tiny_pretrain.pth")
    head = {"head.mlp.0.weight": torch.randn(16, 128), "head.last_layer.weight_g": torch.ones(1, 8)}
    torch.save(
        {
            "teacher": {**{f"backbone.{k}": v for k, v in state.items()}, **head},
            "student": {**{f"module.backbone.{k}": v for k, v in state.items()}},
            "epoch": torch.tensor(100),
        },
        out / "dino_tiny_full_checkpoint.pth",
    )
    for path in sorted(out.glob("pictures_*.npy")):
        x = torch.from_numpy(np.load(path))
        with torch.no_grad():
            features = model.forward_features(x)  # (n, 1 + 4, 128), after the final norm
            pooled = model(x)  # timm's head with global_pool="token": the class token
            first = model.forward_intermediates(
                x, indices=[0], norm=True, output_fmt="NLC", return_prefix_tokens=True, intermediates_only=True
            )[0]
            every = model.forward_intermediates(
                x, indices=None, norm=True, output_fmt="NLC", return_prefix_tokens=True, intermediates_only=True
            )
        np.savez(
            out / f"reference_{path.stem.removeprefix('pictures_')}.npz",
            cls=pooled.numpy(),
            cls_features=features[:, 0].numpy(),
            patch_mean=features[:, 1:].mean(dim=1).numpy(),
            cls_block0=first[1][:, 0].numpy(),
            cls_mean_blocks=torch.stack([prefix[:, 0] for _, prefix in every]).mean(dim=0).numpy(),
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
