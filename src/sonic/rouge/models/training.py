"""What the torch recommenders share: importing torch, seeding, numeric precision, early stopping with the
best weights restored, the training curve, and the validation metric (full-ranking NDCG@k over held-out
tracks)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sonic.errors import SonicError
from sonic.rouge.shared import SeenTracks
from sonic.rouge.models.history import Histories

if TYPE_CHECKING:
    import torch

    from sonic.tails.table import EmbeddingTable

INSTALL_HINT = "pip install 'sonic[models]' (or pip install 'torch>=2.4,<3' 'safetensors>=0.4.3,<1')"


def require_torch(model: str) -> Any:
    """The ``torch`` module, or one sentence on how to install it."""
    try:
        import torch
    except ImportError:
        raise SonicError(f"{model} needs PyTorch, which is not installed; {INSTALL_HINT}") from None
    return torch


def device_for(device: str) -> torch.device:
    """``"auto"`` is CUDA when torch sees one, else CPU; anything else is checked."""
    from sonic.tails.neural import pick_device

    return pick_device(device)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` CPU threads in torch (0: leave torch's own choice), then restore.

    Small models on a busy machine run many times faster on one thread than on several that spin.
    """
    torch = require_torch("training")
    before = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


#: ``precision`` options: ``auto`` is bfloat16 autocast on CUDA and float32 elsewhere.
PRECISIONS = ("auto", "float32", "bfloat16")


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision ``precision`` means on ``device``: ``"float32"`` or ``"bfloat16"``.

    ``"auto"`` is bfloat16 on CUDA (tensor cores; the weights stay float32) and float32 on CPU, where
    bfloat16 matrix products are fast only on CPUs with AMX.
    """
    if precision not in PRECISIONS:
        raise SonicError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bfloat16" if device.type == "cuda" else "float32"
    return precision


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The context a forward pass runs in: torch autocast to bfloat16 on ``device``'s type for
    ``precision == "bfloat16"`` (already resolved), else no autocast at all (float32)."""
    if precision == "bfloat16":
        torch = require_torch("training")
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    torch = require_torch("training")
    torch.manual_seed(int(seed))
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


class TorchTraining:
    """``fit`` of the protocol for the torch models: the model's own ``_fit`` under ``config.threads`` threads.

    A subclass defines ``_fit(train, validation, item_embeddings, device, seed)``, documented there.
    """

    def fit(
        self,
        train: pd.DataFrame,
        *,
        validation: pd.DataFrame | None = None,
        item_embeddings: EmbeddingTable | None = None,
        device: str = "auto",
        seed: int = 0,
    ) -> Any:
        """Train on ``train`` (see ``_fit``); ``validation`` only decides when to stop."""
        with torch_threads(self.config.threads):
            return self._fit(train, validation, item_embeddings, device, seed)


class EarlyStopping:
    """Watches one validation value per epoch; keeps a copy of the best weights; says when to stop.

    ``mode`` is ``"min"`` (a loss) or ``"max"`` (a metric). An epoch counts as better only if it
    beats the best by more than ``min_delta``. After ``patience`` epochs without improvement
    :meth:`step` returns True. :meth:`restore` loads the best weights back into the module.
    """

    def __init__(self, patience: int, mode: str = "min", min_delta: float = 0.0) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.patience, self.mode, self.min_delta = int(patience), mode, float(min_delta)
        self.best_value: float | None = None
        self.best_epoch = -1
        self._best_state: dict[str, Any] | None = None
        self._waited = 0

    def step(self, value: float, epoch: int, module: torch.nn.Module) -> bool:
        better = self.best_value is None or (
            value < self.best_value - self.min_delta if self.mode == "min" else value > self.best_value + self.min_delta
        )
        if better:
            self.best_value, self.best_epoch, self._waited = float(value), epoch, 0
            self._best_state = {key: tensor.detach().clone() for key, tensor in module.state_dict().items()}
            return False
        self._waited += 1
        return self._waited >= self.patience

    def restore(self, module: torch.nn.Module) -> None:
        if self._best_state is not None:
            module.load_state_dict(self._best_state)


class Curve:
    """Rows of the training curve, one per epoch; :meth:`frame` gives the DataFrame."""

    def __init__(self) -> None:
        self._rows: list[dict[str, float]] = []
        self._started = time.perf_counter()

    def add(self, epoch: int, **values: float | None) -> None:
        row = {"epoch": epoch, **{k: (np.nan if v is None else float(v)) for k, v in values.items()}}
        row["seconds"] = time.perf_counter() - self._started
        self._rows.append(row)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self._rows)


def ndcg_at(
    score_users: Callable[[np.ndarray], np.ndarray],
    targets: Histories,
    seen: SeenTracks,
    *,
    k: int = 10,
    batch_size: int = 256,
    lengths: np.ndarray | None = None,
) -> float:
    """Mean NDCG@k over the users with targets: full ranking of the catalogue, seen tracks removed.

    ``score_users(user_rows)`` returns (b, n_tracks) scores. With ``lengths`` (n_users,), users are
    scored in batches of similar length (sequence models pad less). DCG = sum over the top k of
    [track in targets] / log2(rank + 1); IDCG the DCG of min(|targets|, k) hits (REFERENCE section 5).
    """
    users = np.flatnonzero(targets.lengths > 0)
    if lengths is not None:
        users = users[np.argsort(lengths[users], kind="stable")]
    if len(users) == 0:
        return float("nan")
    discounts = 1.0 / np.log2(np.arange(k) + 2.0)
    total = 0.0
    for start in range(0, len(users), batch_size):
        rows = users[start : start + batch_size]
        scores = np.array(score_users(rows), dtype=np.float32, copy=True)
        scores[seen.seen_mask(rows)] = -np.inf
        width = min(k, scores.shape[1])
        top = np.argpartition(-scores, width - 1, axis=1)[:, :width]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        for row, user in zip(top, rows):
            relevant = targets.of(user)
            hits = np.isin(row, relevant)
            ideal = discounts[: min(len(relevant), width)].sum()
            total += float(hits @ discounts[:width]) / ideal
    return total / len(users)
