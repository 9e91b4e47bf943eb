"""BERT4Rec's training losses at masked positions: the full softmax, or gBCE over sampled negatives.

``softmax`` is cross-entropy over the whole catalogue (every masked position scores every track).
``gbce`` is gSASRec's generalised binary cross-entropy (Petrov & Macdonald, RecSys '23): each masked
position scores its true track and ``k`` negatives drawn uniformly, with replacement, from the other
``n_items - 1`` catalogue tracks, and

    loss = -log(sigmoid(s+) ** beta) - sum_j log(1 - sigmoid(s_j))
         = beta * softplus(-s+) + sum_j softplus(s_j),

with alpha = k / (n_items - 1) the sampling rate and beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha)
for a calibration parameter t in [0, 1] (t = 0: beta = 1, plain BCE with sampled negatives; t = 1:
beta = alpha). Why beta: a track i that is the true one with probability p_i is drawn as a negative
alpha * (1 - p_i) times per position on average, so the expected loss is least at
sigmoid(s_i) = beta p_i / (beta p_i + alpha (1 - p_i)): plain BCE (beta = 1) is overconfident
(p / (p + alpha (1 - p)) >> p for small alpha), and beta = alpha gives sigmoid(s_i) = p_i.

The positive is never among its own negatives (the draw skips it), so alpha is exactly the expected
count above. With ``exclude_visible`` the negatives that happen to be visible in the same sequence
are dropped from the sum (they can never be the masked track, as the full softmax leaves them out);
dropping them leaves every other track's rate at alpha.
"""

from __future__ import annotations

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
    """(alpha, beta) of gBCE: alpha = k / (|I| - 1), beta = alpha * (t * (1 - 1/alpha) + 1/alpha)."""
    alpha = negatives / (n_items - 1)
    beta = alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)
    return alpha, beta


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


def sample_negatives(positives: Any, n_items: int, k: int, generator: Any) -> Any:
    """(M, k) int64 catalogue rows: for each of ``positives`` (M,), ``k`` draws, uniform with replacement
    over the ``n_items - 1`` other rows (a draw of 0 .. n - 2 is moved up by one from the positive on)."""
    torch = require_torch("bert4rec")
    draws = torch.randint(n_items - 1, (len(positives), k), generator=generator, device=positives.device)
    return draws + (draws >= positives[:, None])


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


def batch_loss(net: Any, states: Any, vectors: Any, tokens: Any, labels: Any, settings: LossSettings,
               generator: Any = None) -> Any:
    """The training loss of one batch.

    ``states`` (B, T, hidden) from ``net.encode``, ``vectors`` (n_items, hidden) item vectors,
    ``tokens`` (B, T) int64, ``labels`` (B, T) int64 (catalogue row at masked positions, -1 elsewhere);
    ``generator`` (a torch generator on the batch's device) draws gbce's negatives -> scalar tensor.
    """
    torch = require_torch("bert4rec")
    picked = labels >= 0
    rows = picked.nonzero()[:, 0]  # (M,) the sequence of each masked position
    targets, hidden = labels[picked], states[picked]  # (M,), (M, hidden)
    if settings.loss == "softmax":
        excluded = visible_items(tokens, settings.n_items)[rows] if settings.exclude_visible else None
        return masked_item_loss(net.scores(hidden, vectors), targets, excluded)
    negatives = sample_negatives(targets, settings.n_items, settings.negatives, generator)  # (M, k)
    keep = ~visible_items(tokens, settings.n_items)[rows[:, None], negatives] if settings.exclude_visible else None
    scores = net.scores_of(hidden, vectors, torch.cat([targets[:, None], negatives], dim=1))  # (M, 1 + k)
    return gbce_loss(scores[:, 0], scores[:, 1:], settings.beta, keep)
