"""BERT4Rec as a recommender: masked-track training over each user's time-ordered unique train tracks.

Training (one epoch = every user once, in random order): a window of at most ``max_len`` of the
user's tracks (the newest, or a random earlier window of a longer history); each track is replaced
by the mask token with probability ``mask_prob`` (at least one per sequence); with probability
``last_mask_prob`` only the newest track is masked instead, the case prediction meets. The loss
(:mod:`sonic.rouge.models.bert4rec_loss`) is ``loss="softmax"``, cross-entropy over the whole
catalogue at masked positions (by default without the tracks visible in the same sequence: in a
sequence of unique tracks they can never be the masked one, and prediction never recommends a seen
track either), or ``loss="gbce"``, gSASRec's calibrated binary cross-entropy over ``negatives``
tracks drawn per sequence for its masked positions, far cheaper on a large catalogue. With
validation events, every epoch scores NDCG@10 of the validation tracks, ranked from the train
sequence with seen tracks removed; training stops after ``patience`` epochs without a better value
and the best epoch's weights are restored (without validation: ``max_epochs`` epochs).

Prediction for a user appends the mask token to the newest ``max_len - 1`` tracks of their train
history (plus ``history`` events given to :meth:`recommend`, e.g. leave-last-out's validation track
when its test is scored) and ranks the catalogue by the scores there. It never reads the sequence
being scored (the seed project predicted from the test sequence itself).

Item vectors come from ``items``: ``"frozen"`` content vectors (standardised) through a trained
projection, ``"trainable"`` content vectors as initial values, or ``"ids"`` alone (no content).
``precision="auto"`` runs the forward passes under bfloat16 autocast on CUDA and in float32 on CPU;
``"float32"`` or ``"bfloat16"`` force one (``describe()["precision"]`` records what ran).

Cold start (content items): ``recommend(..., candidates=ids)`` ranks any track of the embedding table,
played or not. A track's output vector is the projection of its content vector, so a track without train
events gets one from its vector (standardised with the catalogue's numbers) through the same projection;
its output bias, learned per train track, is the mean of the train tracks' biases. A cold copy of a
frozen train track (the same vector, a new id) therefore scores its original's score minus the
original's bias plus that mean; among cold tracks alone the bias is one constant and the order is the
content's. ``trainable`` items score a cold track from its content vector as given, without the offset
training taught each train track. ``items="ids"`` has nothing to score a new track from
(``cold_start`` False).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd

from sonic.errors import DataError, SonicError
from sonic.rouge.shared import (
    SeenTracks,
    batches_by_history,
    check_k,
    check_train,
    empty_lists,
    make_config,
    top_k_unseen,
)
from sonic.rouge.models.bert4rec_loss import (
    LOSSES,
    LossSettings,
    batch_loss,
    batch_rows,
    gbce_beta,
    gbce_initial_logit,
    masked_item_loss,
    sample_negatives,
    visible_items,
)
from sonic.rouge.models.bert4rec_net import FIRST_ITEM, ITEM_SOURCES, MASK, PAD, build_network
from sonic.rouge.models.content import candidate_items, content_items
from sonic.rouge.models.history import Histories, concatenated, ordered_histories
from sonic.rouge.models.state import read_state, write_state
from sonic.rouge.models.training import (
    PRECISIONS,
    Curve,
    EarlyStopping,
    TorchTraining,
    autocast_context,
    device_for,
    ndcg_at,
    require_torch,
    resolve_precision,
    seeded_generator,
    torch_threads,
)
from sonic.tails.table import EmbeddingTable

_USERS_PER_BATCH = 256
_LOG = logging.getLogger(__name__)
# masked_item_loss and visible_items live in bert4rec_loss; importable from here as before
__all__ = ["BERT4RecConfig", "BERT4RecRecommender", "mask_batch", "masked_item_loss", "prediction_tokens",
           "visible_items"]


@dataclass(frozen=True)
class BERT4RecConfig:
    """``items``: frozen, trainable or ids (see the module docstring). ``hidden``, ``layers``, ``heads``,
    ``max_len`` (positions, the mask token included), ``dropout``, ``attention_dropout`` (on the
    attention weights; None: ``dropout``. On CPU attention and dropout run as
    :mod:`sonic.rouge.models.dropout` makes them, in cache-sized blocks): the network. ``mask_prob``,
    ``last_mask_prob``: the masking. ``lr``, ``weight_decay`` (AdamW), ``batch_size`` (sequences per
    step), ``max_epochs``, ``patience`` (validations without a better NDCG@10), ``eval_every`` (epochs
    between validations). ``exclude_visible``: leave the sequence's visible tracks out of the training
    loss (they can never be the masked track, and seen tracks are never recommended). ``loss``:
    ``softmax`` (the whole catalogue) or ``gbce`` (``negatives`` sampled tracks per sequence,
    calibration ``gbce_t`` in [0, 1]; see :mod:`sonic.rouge.models.bert4rec_loss`). ``precision``:
    auto, float32 or bfloat16 (see the module docstring). ``threads``: torch CPU threads (0: torch's
    choice)."""

    items: str = "frozen"
    hidden: int = 64
    layers: int = 2
    heads: int = 2
    max_len: int = 300
    dropout: float = 0.2
    attention_dropout: float | None = None
    mask_prob: float = 0.2
    last_mask_prob: float = 0.1
    prefix_prob: float = 0.5
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    max_epochs: int = 400
    patience: int = 30
    eval_every: int = 1
    exclude_visible: bool = True
    loss: Literal["softmax", "gbce"] = "softmax"
    negatives: int = 256
    gbce_t: float = 0.75
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    threads: int = 0

    def __post_init__(self) -> None:
        if self.items not in ITEM_SOURCES:
            raise SonicError(f"bert4rec items must be one of {', '.join(ITEM_SOURCES)}, got {self.items!r}")
        if self.loss not in LOSSES:
            raise SonicError(f"bert4rec loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.precision not in PRECISIONS:
            raise SonicError(f"bert4rec precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not 0.0 <= float(self.gbce_t) <= 1.0:
            raise SonicError(f"bert4rec gbce_t must lie in [0, 1], got {self.gbce_t!r}")
        for name in ("hidden", "layers", "heads", "batch_size", "max_epochs", "patience", "eval_every", "negatives"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SonicError(f"bert4rec {name} must be a positive integer, got {value!r}")
        if self.hidden % self.heads:
            raise SonicError(f"bert4rec hidden {self.hidden} must be a multiple of heads {self.heads}")
        if isinstance(self.max_len, bool) or not isinstance(self.max_len, int) or self.max_len < 2:
            raise SonicError(f"bert4rec max_len must be an integer of at least 2, got {self.max_len!r}")
        if not 0.0 <= float(self.prefix_prob) <= 1.0:
            raise SonicError(f"bert4rec prefix_prob must lie in [0, 1], got {self.prefix_prob!r}")
        if self.attention_dropout is not None and not 0.0 <= float(self.attention_dropout) < 1.0:
            raise SonicError(
                f"bert4rec attention_dropout must lie in [0, 1) or be None, got {self.attention_dropout!r}"
            )
        for name in ("mask_prob", "last_mask_prob", "dropout"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise SonicError(f"bert4rec {name} must lie in [0, 1), got {getattr(self, name)!r}")
        if not float(self.lr) > 0 or float(self.weight_decay) < 0:
            raise SonicError(f"bert4rec lr must be positive and weight_decay non-negative, got {self.lr!r}")


def mask_batch(
    sequences: list[np.ndarray],
    max_len: int,
    mask_prob: float,
    last_mask_prob: float,
    rng: np.random.Generator,
    prefix_prob: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Training tokens and labels for a batch of catalogue-row sequences.

    Each sequence is cut to a window of at most ``max_len``: with probability ``prefix_prob`` one that
    ends at a random earlier track (a prefix of the history, as if the user were seen then), otherwise
    the newest window, or for a longer history a random window. Windows are left-padded to the batch's
    longest. Returns ``tokens`` (B, T) int64 and ``labels`` (B, T) int64: the catalogue row at masked
    positions, -1 elsewhere.
    """
    windows = []
    for sequence in sequences:
        if prefix_prob and len(sequence) > 1 and rng.random() < prefix_prob:
            end = int(rng.integers(2, len(sequence) + 1))  # a prefix of 2 .. len tracks
            sequence = sequence[max(0, end - max_len) : end]
        elif len(sequence) > max_len:
            end = int(rng.integers(max_len, len(sequence) + 1))
            sequence = sequence[end - max_len : end]
        windows.append(sequence)
    width = max(len(w) for w in windows)
    tokens = np.full((len(windows), width), PAD, np.int64)
    labels = np.full((len(windows), width), -1, np.int64)
    for row, window in enumerate(windows):
        n = len(window)
        if rng.random() < last_mask_prob:
            masked = np.zeros(n, bool)
            masked[-1] = True
        else:
            masked = rng.random(n) < mask_prob
            if not masked.any():
                masked[rng.integers(n)] = True
        tokens[row, width - n :] = np.where(masked, MASK, window + FIRST_ITEM)
        labels[row, width - n :] = np.where(masked, window, -1)
    return tokens, labels


def prediction_tokens(sequences: list[np.ndarray], max_len: int) -> np.ndarray:
    """The newest ``max_len - 1`` tracks of each sequence then the mask token, left-padded: (B, T) int64."""
    windows = [s[-(max_len - 1) :] if len(s) else s for s in sequences]
    width = max(len(w) for w in windows) + 1
    tokens = np.full((len(windows), width), PAD, np.int64)
    for row, window in enumerate(windows):
        tokens[row, width - 1 - len(window) : width - 1] = window + FIRST_ITEM
        tokens[row, -1] = MASK
    return tokens


class BERT4RecRecommender(TorchTraining):
    """BERT4Rec over the train catalogue (tracks with a vector, for content items); see the module docstring."""

    name = "bert4rec"

    def __init__(self, **options: Any) -> None:
        self.config = make_config(BERT4RecConfig, options, self.name)
        self._seen: SeenTracks | None = None
        self._histories: Histories | None = None
        self._net: Any = None
        self._other_ids, self._other_vectors = np.zeros(0, str), np.zeros((0, 0), np.float32)
        self.curve: pd.DataFrame | None = None
        self._facts: dict[str, Any] = {}

    @property
    def content(self) -> bool:
        """True unless the items are ids alone."""
        return self.config.items != "ids"

    @property
    def cold_start(self) -> bool:
        """Content items score a track without train events from its vector; ids alone cannot."""
        return self.content

    def _fit(
        self,
        train: pd.DataFrame,
        validation: pd.DataFrame | None,
        item_embeddings: EmbeddingTable | None,
        device: str,
        seed: int,
    ) -> Self:
        """Train with masked tracks; stop on validation NDCG@10 and restore the best weights."""
        torch = require_torch(self.name)
        check_train(train)
        config = self.config
        seen, content, (self._other_ids, self._other_vectors) = _catalogue(train, item_embeddings, config.items)
        chosen = device_for(device)
        precision = resolve_precision(config.precision, chosen)
        seeded_generator(seed)  # seeds torch: initial weights, dropout
        rng = np.random.default_rng(seed)  # windows and masks
        sampler = _negative_generator(seed, chosen)
        settings = _loss_settings(config, seen.n_tracks)
        net = build_network(
            seen.n_tracks,
            items=config.items,
            hidden=config.hidden,
            layers=config.layers,
            heads=config.heads,
            max_len=config.max_len,
            dropout=config.dropout,
            attention_dropout=config.attention_dropout,
            content=content,
        ).to(chosen)
        if settings.loss == "gbce":
            with torch.no_grad():
                net.bias.fill_(gbce_initial_logit(settings.beta, settings.negatives))
        histories = ordered_histories(train, seen, what="train")
        self._seen, self._histories, self._net = seen, histories, net
        targets = ordered_histories(validation, seen, what="validation")
        watch = targets.items.size > 0
        optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        stopper = EarlyStopping(config.patience, mode="max")
        curve = Curve()
        trainable = np.flatnonzero(histories.lengths > 0)
        epoch = 0
        for epoch in range(1, config.max_epochs + 1):
            net.train()
            total, steps = 0.0, 0
            for users in _length_batches(trainable, histories.lengths, config.batch_size, rng):
                tokens, labels = mask_batch(
                    [histories.of(u) for u in users],
                    config.max_len,
                    config.mask_prob,
                    config.last_mask_prob,
                    rng,
                    config.prefix_prob,
                )
                tokens_t = torch.as_tensor(tokens, device=chosen)
                labels_t = torch.as_tensor(labels, device=chosen)
                negatives = rows = None
                if settings.loss == "gbce":  # the batch's own tracks and negatives: the only vectors it reads
                    negatives = sample_negatives(len(tokens_t), settings.n_items, settings.negatives, sampler)
                    rows = batch_rows(tokens_t, labels_t, negatives)
                with autocast_context(chosen, precision):
                    vectors = net.item_vectors(rows)
                    states = net.encode(tokens_t, vectors)
                    loss = batch_loss(net, states, vectors, tokens_t, labels_t, settings, negatives=negatives)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total, steps = total + loss.item(), steps + 1
            val_metric = None
            if watch and (epoch % config.eval_every == 0 or epoch == config.max_epochs):
                val_metric = ndcg_at(
                    lambda rows: self._scores(rows, histories), targets, seen, lengths=histories.lengths
                )
            curve.add(epoch, train_loss=total / max(steps, 1), val_metric=val_metric)
            _LOG.info("bert4rec epoch %d: train loss %.4f, val NDCG@10 %s", epoch, total / max(steps, 1), val_metric)
            if val_metric is not None and stopper.step(val_metric, epoch, net):
                break
        if watch:
            stopper.restore(net)
        net.eval()
        self.curve = curve.frame()
        self._facts = {
            "best_epoch": stopper.best_epoch if watch else epoch,
            "best_val_ndcg@10": stopper.best_value,
            "epochs_run": epoch,
            "seconds": float(self.curve["seconds"].iloc[-1]) if len(self.curve) else 0.0,
            "device": str(chosen),
            "precision": precision,
            **({"gbce_alpha": settings.alpha, "gbce_beta": settings.beta} if config.loss == "gbce" else {}),
            "seed": int(seed),
            "content_dim": None if content is None else int(content.shape[1]),
            "train_tracks_without_vector": int(train["track_id"].astype(str).nunique() - seen.n_tracks),
        }
        return self

    def recommend(
        self,
        users: Sequence[str],
        k: int,
        *,
        exclude_seen: bool = True,
        history: pd.DataFrame | None = None,
        candidates: Sequence[str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``ids`` (n, k) object and ``scores`` (n, k) float32, ranked from each user's train sequence
        followed by their ``history`` tracks; see :class:`sonic.rouge.base.Recommender`. ``candidates``
        (content items only): the track ids to rank, played or not (one without a vector is left out);
        None ranks the train catalogue."""
        with torch_threads(self.config.threads):
            seen, histories = self._fitted()
            if history is not None and len(history):
                histories = concatenated(histories, ordered_histories(history, seen, what="history"))
            chosen = None
            if candidates is not None:
                chosen = self._candidate_items(candidates)
                seen = seen.among(chosen.track_ids)
            seen = seen.extended(history)
            k, rows = check_k(k), seen.user_rows(users)
            ids, scores = empty_lists(len(rows), k)
            if seen.n_tracks == 0:
                return ids, scores
            for positions in batches_by_history(histories.lengths[rows], _USERS_PER_BATCH):
                batch = rows[positions]
                block = self._scores(batch, histories, chosen)
                block[histories.lengths[batch] == 0] = -np.inf  # nothing to predict from
                ids[positions], scores[positions] = top_k_unseen(block, batch, seen, k, exclude_seen=exclude_seen)
            return ids, scores

    def _candidate_items(self, candidates: Sequence[str]) -> Any:
        """``candidates`` with a content vector, in their order (:class:`~sonic.rouge.models.content.Candidates`):
        a train track's the network's (trained, for ``trainable``), another's its standardised table vector."""
        if not self.cold_start:
            raise SonicError(
                "bert4rec with items='ids' cannot score a track outside its train catalogue; rank candidates "
                "with content items (items='frozen' or 'trainable')"
            )
        seen, _ = self._fitted()
        content = self._net.content.detach().float().cpu().numpy()
        return candidate_items(seen.track_ids, content, self._other_ids, self._other_vectors, candidates)

    def describe(self) -> dict[str, Any]:
        seen, _ = self._fitted()
        warnings = []
        if self._facts.get("train_tracks_without_vector"):
            warnings.append(f"{self._facts['train_tracks_without_vector']} train tracks have no vector; left out")
        return {
            "name": self.name,
            "config": asdict(self.config),
            "n_train_users": len(seen.user_ids),
            "n_catalogue_tracks": seen.n_tracks,
            "n_other_tracks_with_vector": len(self._other_ids),
            **self._facts,
            "warnings": warnings,
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the fitted model to ``directory`` (weights as safetensors); :meth:`load` reads it back."""
        seen, histories = self._fitted()
        arrays = {**seen.to_arrays(), "history_offsets": histories.offsets, "history_items": histories.items,
                  "other_ids": self._other_ids.astype(str), "other_vectors": self._other_vectors}
        return write_state(
            directory, self.name, self.config, facts=self._facts, arrays=arrays, tensors=self._net.state_dict()
        )

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Self:
        saved = read_state(directory, cls.name)
        model = cls(**saved.config)
        config, tensors = model.config, saved.tensors or {}
        seen = SeenTracks.from_arrays(saved.arrays)
        content = tensors.get("content")
        if "bias" not in tensors or (config.items != "ids" and content is None):
            raise DataError(f"model folder '{directory}' has no bert4rec weights; save the model again")
        net = build_network(
            seen.n_tracks,
            items=config.items,
            hidden=config.hidden,
            layers=config.layers,
            heads=config.heads,
            max_len=config.max_len,
            dropout=config.dropout,
            attention_dropout=config.attention_dropout,
            content=content,
        )
        net.load_state_dict(tensors)
        net.eval()
        model._seen, model._net, model._facts = seen, net, saved.facts
        model._histories = Histories(saved.arrays["history_offsets"], saved.arrays["history_items"])
        model._other_ids = np.asarray(saved.arrays.get("other_ids", np.zeros(0, str))).astype(str)  # older saves: none
        model._other_vectors = np.asarray(saved.arrays.get("other_vectors", np.zeros((0, 0), np.float32)))
        return model

    def _scores(self, rows: np.ndarray, histories: Histories, candidates: Any = None) -> np.ndarray:
        """Scores (b, n_items) float32 of the mask appended to each user's history; with ``candidates``
        (:meth:`_candidate_items`) (b, c) over those tracks (see the module docstring)."""
        torch = require_torch(self.name)
        net = self._net
        device = next(net.parameters()).device
        was_training = net.training
        net.eval()
        tokens = torch.as_tensor(prediction_tokens([histories.of(u) for u in rows], self.config.max_len), device=device)
        with torch.no_grad(), autocast_context(device, resolve_precision(self.config.precision, device)):
            vectors = net.item_vectors()
            states = net.encode(tokens, vectors)[:, -1]
            if candidates is None:
                scores = net.scores(states, vectors).float().cpu().numpy()
            else:
                chosen = torch.as_tensor(candidates.vectors, device=device)
                rows_t = torch.as_tensor(candidates.catalogue_rows, device=device)
                bias = torch.where(rows_t >= 0, net.bias[rows_t.clamp(min=0)], net.bias.mean())
                scores = (states @ net.project(chosen).T + bias).float().cpu().numpy()
        net.train(was_training)
        return scores

    def _fitted(self) -> tuple[SeenTracks, Histories]:
        if self._seen is None or self._net is None or self._histories is None:
            raise RuntimeError("bert4rec recommender: call fit before recommend, describe or save")
        return self._seen, self._histories


def _loss_settings(config: BERT4RecConfig, n_items: int) -> LossSettings:
    """The loss of ``config`` over a catalogue of ``n_items`` tracks (gbce needs at least two)."""
    if config.loss == "softmax":
        return LossSettings("softmax", n_items, config.exclude_visible)
    if n_items < 2:
        raise DataError(
            f"bert4rec loss 'gbce' needs other tracks than the true one as negatives; the catalogue has {n_items}"
        )
    alpha, beta = gbce_beta(config.negatives, n_items, config.gbce_t)
    return LossSettings("gbce", n_items, config.exclude_visible, config.negatives, alpha, beta)


def _negative_generator(seed: int, device: Any) -> Any:
    """A torch generator on ``device`` for gbce's negatives, seeded from ``seed`` apart from torch's global one."""
    torch = require_torch("bert4rec")
    generator = torch.Generator(device=device)
    generator.manual_seed(int(np.random.SeedSequence([int(seed), 2]).generate_state(1, np.uint64)[0] >> 1))
    return generator


def _length_batches(users: np.ndarray, lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list:
    """``users`` in batches of similar history length (less padding), batches in random order.

    Users are sorted by length with random tie-breaking, cut into batches, and the batches shuffled.
    """
    order = users[np.lexsort((rng.random(len(users)), np.minimum(lengths[users], 10**9)))]
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _catalogue(
    train: pd.DataFrame, table: EmbeddingTable | None, items: str
) -> tuple[SeenTracks, np.ndarray | None, tuple[np.ndarray, np.ndarray]]:
    """The catalogue (train tracks; with content items, those with a vector), its standardised vectors, and
    the table's other tracks with theirs (standardised alike: the cold-start candidates)."""
    if items == "ids":
        return SeenTracks.from_train(train), None, (np.zeros(0, str), np.zeros((0, 0), np.float32))
    if table is None:
        raise SonicError(
            f"bert4rec with items={items!r} needs --embedding (track vectors); use items='ids' to train without content"
        )
    found = content_items(train, table, standardise=True)
    return found.seen, found.vectors, (found.other_ids, found.other_vectors)
