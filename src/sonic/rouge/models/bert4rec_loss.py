"""BERT4Rec's training losses at masked positions: the full softmax, or gBCE over sampled negatives.

``softmax`` is cross-entropy over the whole catalogue (every masked position scores every track).
``gbce`` is gSASRec's generalised binary cross-entropy (Petrov & Macdonald, RecSys '23): each masked
position scores its true track and ``k`` negatives drawn uniformly, and

    loss = -log(sigmoid(s+) ** beta) - sum_j log(1 - sigmoid(s_j))
         = beta * softplus(-s+) + sum_j softplus(s_j),

with alpha the sampling rate (how many times, on average, a given other track is among a position's
negatives) and beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha) for a calibration parameter t in [0, 1]
(t = 0: beta = 1, plain BCE with sampled negatives; t = 1: beta = alpha). Why beta: a track i that is
the true one with probability p_i is a negative alpha * (1 - p_i) times per position on average, so the
expected loss is least at sigmoid(s_i) = beta p_i / (beta p_i + alpha (1 - p_i)): plain BCE (beta = 1)
is overconfident (p / (p + alpha (1 - p)) >> p for small alpha), and beta = alpha gives sigmoid(s_i) = p_i.

The draw: each sequence of the batch draws ``k`` tracks uniformly, with replacement, from the whole
catalogue, and every masked position of that sequence uses them (one (positions x k) product per
sequence instead of a gathered (k x hidden) block per position: at the journal's scale the per-position
gather cost as much as the encoder). A draw equal to the position's own track is dropped from its sum,
so the positive is never its own negative, and each other track's rate is alpha = k / n_items exactly
(the paper's k / (|I| - 1) is the rate of a draw from the other tracks alone). With ``exclude_visible``
the draws visible in the same sequence are dropped too (they can never be the masked track, as the full
softmax leaves them out), which leaves every other track's rate at alpha.

The network starts with every track's bias at :func:`gbce_initial_logit`, the constant score that
minimises the loss (BERT's small initial weights give scores near 0, where the sum over k negatives is
k log 2: on MovieLens-100k Adam then spent tens of epochs lowering every score before it ranked better
than popularity; the softmax, blind to a shared offset, needs no such start).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sonic.rouge.models.bert4rec_net import FIRST_ITEM
from sonic.rouge.models.training import require_torch

LOSSES = ("softmax", "gbce")


@dataclass(frozen=True)
class LossSettings:
    """What :func:`batch_loss` needs: ``loss`` (softmax or gbce), the catalogue size ``n_items``,
    ``exclude_visible``, and for gbce the ``negatives`` per position, ``alpha`` and ``beta``."""

    loss: str
    n_items: int
    exclude_visible: bool = True
    negatives: int = 256
    alpha: float = 1.0
    beta: float = 1.0


def gbce_beta(negatives: int, n_items: int, t: float) -> tuple[float, float]:
    """(alpha, beta) of gBCE for :func:`sample_negatives`' draw: alpha = k / |I|,
    beta = alpha * (t * (1 - 1/alpha) + 1/alpha)."""
    alpha = negatives / n_items
    beta = alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)
    return alpha, beta


def gbce_initial_logit(beta: float, negatives: int) -> float:
    """The constant score c minimising beta * softplus(-c) + k * softplus(c): c = log(beta / k).

    (The derivative -beta * sigmoid(-c) + k * sigmoid(c) is zero where sigmoid(c) / sigmoid(-c) = beta / k.)
    """
    return math.log(beta / negatives)


def gbce_loss(positive: Any, negative: Any, beta: float, keep: Any = None) -> Any:
    """Mean over positions of beta * softplus(-s+) + sum_j softplus(s_j) (see the module docstring).

    ``positive`` (M,) scores of the true tracks, ``negative`` (M, k) scores of the sampled ones,
    ``keep`` (M, k) bool or None: negatives counted (None: all) -> scalar tensor, float32.
    """
    torch = require_torch("bert4rec")
    softplus = torch.nn.functional.softplus
    negative_terms = softplus(negative.float())
    if keep is not None:
        negative_terms = negative_terms * keep
    return (beta * softplus(-positive.float()) + negative_terms.sum(-1)).mean()


def sample_negatives(n_sequences: int, n_items: int, k: int, generator: Any) -> Any:
    """(n_sequences, k) int64 catalogue rows, uniform with replacement, on ``generator``'s device."""
    torch = require_torch("bert4rec")
    return torch.randint(n_items, (n_sequences, k), generator=generator, device=generator.device)


def masked_item_loss(scores: Any, targets: Any, excluded: Any = None) -> Any:
    """Mean cross-entropy of the true tracks at masked positions.

    ``scores`` (M, n_items) float, ``targets`` (M,) int64 catalogue rows; ``excluded`` (M, n_items)
    bool or None: candidates left out of the softmax (the tracks visible in the same sequence, which
    can never be the masked one, as seen tracks are never recommended) -> scalar tensor.
    """
    torch = require_torch("bert4rec")
    scores = scores.float()
    if excluded is not None:
        scores = scores.masked_fill(excluded, float("-inf"))
    return torch.nn.functional.cross_entropy(scores, targets)


def visible_items(tokens: Any, n_items: int) -> Any:
    """(B, n_items) bool: the catalogue tracks each row of ``tokens`` (B, T) shows unmasked."""
    torch = require_torch("bert4rec")
    shown = torch.zeros(tokens.shape[0], n_items + FIRST_ITEM, dtype=torch.bool, device=tokens.device)
    shown.scatter_(1, tokens, True)
    return shown[:, FIRST_ITEM:]


def batch_rows(tokens: Any, labels: Any, negatives: Any) -> Any:
    """The catalogue rows one gbce batch reads: its visible tracks, its masked ones and its negatives
    (sorted, int64): the only item vectors :func:`batch_loss` needs."""
    torch = require_torch("bert4rec")
    shown = tokens[tokens >= FIRST_ITEM] - FIRST_ITEM
    return torch.unique(torch.cat([shown, labels[labels >= 0], negatives.reshape(-1)]))


def batch_loss(net: Any, states: Any, vectors: Any, tokens: Any, labels: Any, settings: LossSettings,
               generator: Any = None, negatives: Any = None) -> Any:
    """The training loss of one batch.

    ``states`` (B, T, hidden) from ``net.encode``, ``vectors`` (n_items, hidden) item vectors (for gbce
    only the :func:`batch_rows` of the batch are read), ``tokens`` (B, T) int64, ``labels`` (B, T) int64
    (catalogue row at masked positions, -1 elsewhere); gbce's ``negatives`` (B, k), drawn here by
    :func:`sample_negatives` on ``generator`` (a torch generator on the batch's device) when None
    -> scalar tensor.
    """
    picked = labels >= 0
    rows = picked.nonzero()[:, 0]  # (M,) the sequence of each masked position
    targets = labels[picked]  # (M,)
    if settings.loss == "softmax":
        excluded = visible_items(tokens, settings.n_items)[rows] if settings.exclude_visible else None
        return masked_item_loss(net.scores(states[picked], vectors), targets, excluded)
    if negatives is None:
        negatives = sample_negatives(len(tokens), settings.n_items, settings.negatives, generator)  # (B, k)
    positive = net.pair_scores(states[picked], vectors, targets)  # (M,)
    negative = net.scores_of(states, vectors, negatives)[picked]  # (M, k)
    keep = negatives[rows] != targets[:, None]
    if settings.exclude_visible:
        keep &= ~visible_items(tokens, settings.n_items).gather(1, negatives)[rows]
    return gbce_loss(positive, negative, settings.beta, keep)
