"""Lists for listeners a fitted model has never seen, from a listening history alone.

A history is events (``user_id, track_id`` and optionally ``timestamp`` and ``count``); each of its
users is a new listener described only by those events, whatever the model knows of a train user with
the same id. Tracks outside the model's catalogue are left out of the history (and counted); a
listener with none left gets an empty list. The history's tracks are never recommended back. How
each model forms such a listener, with no training step:

============  ==========================================================================================
``knn``       the user vector is the (weighted, as the model's options say) mean of the history tracks'
              vectors, exactly as fit forms a train user's: a train user's own train history gives
              that user's list
``snn``       user vectors are trained, so a new listener gets what training starts from: the mean of
              the history tracks' (standardised) content vectors, passed through the learned shared
              layer; no gradient step (a train user's own history therefore gives a list near, not
              equal to, that user's)
``bert4rec``  the history, by time (file order without a timestamp), each track once, is the sequence
              the masked position is predicted from: a train user's own train history gives their list
``ease``      the history is the row x_u scored by the item-item weights, x_u B (EASE has no user
              parameters: a train user's own history gives their list)
``elsa``      likewise, (x_u A) A^T - x_u
``pop``       the most popular catalogue tracks the listener has not heard
``random``    refused: its lists depend on nothing a listener did
============  ==========================================================================================

The functions read each model's fitted state (catalogue, vectors, weights, network); the contract
tests in ``tests/test_serve.py`` hold every registered model to the rules above.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from sonic.errors import DataError, SonicError
from sonic.rouge.shared import SeenTracks, check_events, check_k, empty_lists, first_k_kept, rows_in, top_k_unseen

_USERS_PER_BATCH = 256


@dataclass(frozen=True)
class ListenerLists:
    """Lists for a history's listeners: ``users`` (n,) sorted, ``ids`` (n, k) object, ``scores`` (n, k) float32
    (padded as :func:`sonic.rouge.shared.empty_lists` pads), and ``warnings`` (one sentence each)."""

    users: np.ndarray
    ids: np.ndarray
    scores: np.ndarray
    warnings: tuple[str, ...] = ()


def catalogue_of(model: Any) -> SeenTracks:
    """The fitted ``model``'s train users, catalogue, and who has seen what."""
    seen = model._require_fitted().seen if model.name == "knn" else getattr(model, "_seen", None)
    if not isinstance(seen, SeenTracks):
        raise SonicError(f"{model.name} model is not fitted, or keeps no catalogue; it cannot recommend from a history")
    return seen


def history_lists(model: Any, history: pd.DataFrame, k: int) -> ListenerLists:
    """The ``k``-track lists of every listener in ``history``, formed as the module docstring says."""
    check_events(history, "history")
    k = check_k(k)
    if len(history) == 0:
        raise DataError("the listening history holds no events; give user_id, track_id rows")
    scorer = _SCORERS.get(model.name)
    if scorer is None:
        known = ", ".join(sorted(_SCORERS))
        raise SonicError(f"{model.name} cannot recommend from a listening history; models that can: {known}")
    catalogue = catalogue_of(model)
    history = history.assign(user_id=history["user_id"].astype(str), track_id=history["track_id"].astype(str))
    listeners = SeenTracks.from_train(history, track_ids=catalogue.track_ids)  # new users, the model's catalogue
    tracks = history["track_id"].unique()
    n_outside = int((rows_in(catalogue.track_ids, tracks) < 0).sum())
    if n_outside == len(tracks):
        raise DataError(f"none of the {n_outside} tracks of the listening history (e.g. "
                        f"'{history['track_id'].iloc[0]}') is in the {model.name} model's catalogue of "
                        f"{catalogue.n_tracks} tracks")
    warnings = []
    if n_outside:
        warnings.append(f"{_count(n_outside, 'track')} of the listening history {_are(n_outside)} not in the "
                        "model's catalogue; left out")
    empty = int((listeners.seen_counts == 0).sum())
    if empty:
        warnings.append(f"no list for {_count(empty, 'listener')}: none of their history tracks is in the catalogue")
    ids, scores = scorer(model, history, listeners, k)
    return ListenerLists(listeners.user_ids, ids, scores, tuple(warnings))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _are(n: int) -> str:
    return "is" if n == 1 else "are"


def _knn(model: Any, history: pd.DataFrame, listeners: SeenTracks, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A knn fitted on the history alone, over the saved catalogue and vectors: fit's own user vectors."""
    from sonic.tails.table import EmbeddingTable

    fitted = model._require_fitted()
    catalogue = EmbeddingTable(fitted.seen.track_ids.astype(str), fitted.raw_vectors)
    # catalogue "all" over this table is the saved catalogue, in the same (sorted) order
    listener_model = type(model)(**{**asdict(model.config), "catalogue": "all"})
    listener_model.fit(history[rows_in(catalogue.track_ids, history["track_id"]) >= 0], item_embeddings=catalogue)
    ids, scores = empty_lists(len(listeners.user_ids), k)
    present = listeners.seen_counts > 0
    if present.any():
        ids[present], scores[present] = listener_model.recommend(listeners.user_ids[present], k)
    return ids, scores


def _snn(model: Any, history: pd.DataFrame, listeners: SeenTracks, k: int) -> tuple[np.ndarray, np.ndarray]:
    import torch

    from sonic.rouge.models.training import torch_threads

    net = model._net
    items = net.items.detach().cpu().numpy().astype(np.float64)  # (I, d) standardised content vectors
    user_rows, track_rows = np.divmod(listeners.seen_keys, max(listeners.n_tracks, 1))
    sums = np.zeros((len(listeners.user_ids), items.shape[1]))
    np.add.at(sums, user_rows, items[track_rows])
    starts = sums / np.maximum(listeners.seen_counts, 1)[:, None]  # what training starts a user from

    def scores(rows: np.ndarray) -> np.ndarray:
        device = next(net.parameters()).device
        with torch.no_grad():
            vectors = torch.as_tensor(starts[rows], dtype=torch.float32, device=device)
            users = torch.nn.functional.normalize(torch.relu(net.shared(vectors)), dim=-1)
            block = (users @ net.item_space().T).float().cpu().numpy()
        block[listeners.seen_counts[rows] == 0] = -np.inf
        return block

    with torch_threads(model.config.threads):
        return _ranked(scores, listeners, k)


def _bert4rec(model: Any, history: pd.DataFrame, listeners: SeenTracks, k: int) -> tuple[np.ndarray, np.ndarray]:
    from sonic.rouge.models.history import ordered_histories
    from sonic.rouge.models.training import torch_threads

    sequences = ordered_histories(history, listeners, what="history")

    def scores(rows: np.ndarray) -> np.ndarray:
        block = model._scores(rows, sequences)
        block[sequences.lengths[rows] == 0] = -np.inf
        return block

    with torch_threads(model.config.threads):
        return _ranked(scores, listeners, k)


def _ease(model: Any, history: pd.DataFrame, listeners: SeenTracks, k: int) -> tuple[np.ndarray, np.ndarray]:
    return _ranked(lambda rows: listeners.seen_mask(rows).astype(np.float32) @ model._weights, listeners, k)


def _elsa(model: Any, history: pd.DataFrame, listeners: SeenTracks, k: int) -> tuple[np.ndarray, np.ndarray]:
    return _ranked(lambda rows: model._scores(listeners, rows), listeners, k)


def _pop(model: Any, history: pd.DataFrame, listeners: SeenTracks, k: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(len(listeners.user_ids))
    width = min(listeners.n_tracks, k + int(listeners.seen_counts.max(initial=0)))
    candidates = np.broadcast_to(model._ranked_rows[:width], (len(rows), width))
    keep = ~listeners.is_seen(rows, candidates)
    return first_k_kept(candidates, model._listeners[candidates], keep, k, listeners.track_ids)


def _ranked(score: Callable[[np.ndarray], np.ndarray], listeners: SeenTracks, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` unseen of ``score(rows)`` (b, n_tracks) for every listener, a batch at a time."""
    ids, scores = empty_lists(len(listeners.user_ids), k)
    for start in range(0, len(listeners.user_ids), _USERS_PER_BATCH):
        rows = np.arange(start, min(start + _USERS_PER_BATCH, len(listeners.user_ids)))
        ids[rows], scores[rows] = top_k_unseen(score(rows), rows, listeners, k, exclude_seen=True)
    return ids, scores


#: How each model scores a history (the module docstring); random has no entry.
_SCORERS: dict[str, Callable[[Any, pd.DataFrame, SeenTracks, int], tuple[np.ndarray, np.ndarray]]] = {
    "knn": _knn, "snn": _snn, "bert4rec": _bert4rec, "ease": _ease, "elsa": _elsa, "pop": _pop,
}  # fmt: skip
