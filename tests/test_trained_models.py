"""What the trained recommenders promise beyond the shared contract: losses as functions, best weights
restored, BERT4Rec's masking and its prediction from the history before the scored period only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from sonic.errors import DataError, SonicError  # noqa: E402
from sonic.rouge.base import RECOMMENDERS  # noqa: E402
from sonic.rouge.models.bert4rec import (  # noqa: E402
    MASK,
    PAD,
    mask_batch,
    masked_item_loss,
    prediction_tokens,
    visible_items,
)
from sonic.rouge.models.elsa import elsa_loss  # noqa: E402
from sonic.rouge.models.snn import hinge_loss  # noqa: E402
from sonic.tails.table import EmbeddingTable  # noqa: E402


def test_hinge_loss_by_hand():
    positive = torch.tensor([0.9, 0.1])
    negative = torch.tensor([[0.5, 0.8], [0.0, -0.5]])
    # pair 1: max(0, .2 - .9 + .5) = 0, max(0, .2 - .9 + .8) = .1; pair 2: .1, 0 (.2 - .1 - .5 < 0)
    assert float(hinge_loss(positive, negative, 0.2)) == pytest.approx((0.0 + 0.1 + 0.1 + 0.0) / 4)


def test_elsa_loss_by_hand():
    batch = torch.tensor([[1.0, 0.0]])
    factors = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # unit rows (1, 0) and (.707, .707)
    # x A A^T - x = [1, .707] - [1, 0] = [0, .707] -> unit [0, 1]; x / |x| = [1, 0]; squared distance 2
    assert float(elsa_loss(batch, factors)) == pytest.approx(2.0)


def test_masked_item_loss_leaves_excluded_tracks_out_of_the_softmax():
    scores = torch.tensor([[2.0, 1.0, 0.0]])
    target = torch.tensor([1])
    full = float(masked_item_loss(scores, target))
    assert full == pytest.approx(-np.log(np.exp(1) / (np.exp(2) + np.exp(1) + 1)))
    without_first = float(masked_item_loss(scores, target, torch.tensor([[True, False, False]])))
    assert without_first == pytest.approx(-np.log(np.exp(1) / (np.exp(1) + 1)))


def test_mask_batch_windows_pads_left_and_masks_at_least_one():
    rng = np.random.default_rng(0)
    sequences = [np.arange(10), np.array([3, 4])]
    for _ in range(50):
        tokens, labels = mask_batch(sequences, 6, 0.2, 0.1, rng)
        assert tokens.shape == labels.shape == (2, 6)
        assert (tokens[1, :4] == PAD).all() and (labels[1, :4] == -1).all()
        for row in range(2):
            masked = tokens[row] == MASK
            assert masked.any() and (labels[row][masked] >= 0).all() and (labels[row][~masked] == -1).all()
            shown = tokens[row][(tokens[row] != MASK) & (tokens[row] != PAD)] - 2
            window = np.where(masked, labels[row], tokens[row] - 2)[tokens[row] != PAD]
            assert set(shown) <= set(window)
            assert np.array_equal(window, np.sort(window)) and np.all(np.diff(window) == 1)  # a contiguous window


def test_mask_batch_prefixes_end_at_earlier_tracks():
    rng = np.random.default_rng(0)
    sequence = np.arange(10)
    ends = set()
    for _ in range(200):
        tokens, labels = mask_batch([sequence], 6, 0.2, 0.0, rng, prefix_prob=1.0)
        window = np.where(tokens[0] == MASK, labels[0], tokens[0] - 2)[tokens[0] != PAD]
        assert window[0] == max(0, window[-1] - 5) and np.all(np.diff(window) == 1)  # a window of the prefix
        assert len(window) >= 2
        ends.add(int(window[-1]))
    assert ends == set(range(1, 10))  # every prefix of 2 .. 10 tracks is drawn


def test_prediction_appends_the_mask_to_the_newest_tracks():
    tokens = prediction_tokens([np.array([5, 6, 7, 8]), np.array([1])], 4)
    assert tokens.tolist() == [[6 + 2, 7 + 2, 8 + 2, MASK], [PAD, PAD, 1 + 2, MASK]]
    shown = visible_items(torch.as_tensor(tokens), 10)
    assert shown[0].nonzero().ravel().tolist() == [6, 7, 8] and shown[1].nonzero().ravel().tolist() == [1]


def toy() -> tuple[pd.DataFrame, pd.DataFrame, EmbeddingTable]:
    """Two groups of 10 tracks; users listen within their group; validation: one more in-group track."""
    rng = np.random.default_rng(1)
    rows, held = [], []
    for user in range(40):
        group = user % 2
        tracks = rng.permutation(10)[:7] + 10 * group
        rows += [(f"u{user}", f"t{t}") for t in tracks[:6]]
        held.append((f"u{user}", f"t{tracks[6]}"))
    train = pd.DataFrame(rows, columns=["user_id", "track_id"])
    validation = pd.DataFrame(held, columns=["user_id", "track_id"])
    vectors = np.vstack([rng.normal([1, 0, 0], 0.3, (10, 3)), rng.normal([0, 1, 0], 0.3, (10, 3))])
    return train, validation, EmbeddingTable(np.array([f"t{t}" for t in range(20)]), vectors.astype(np.float32))


def test_snn_restores_the_weights_of_its_best_validation_epoch():
    train, validation, table = toy()
    model = RECOMMENDERS.create("snn", hidden=8, lr=0.05, patience=4, lr_patience=50, batch_size=128, threads=1)
    model.fit(train, validation=validation, item_embeddings=table, seed=0)
    curve = model.curve
    best = int(curve["val_loss"].idxmin())
    assert 0 < best < len(curve) - 1, "training should have improved, then gone past its best epoch"
    assert curve["val_loss"].iloc[-1] > curve["val_loss"].min()
    assert model.loss_on(validation) == pytest.approx(curve["val_loss"].min(), abs=1e-6)
    info = model.describe()
    assert info["best_epoch"] == curve["epoch"].iloc[best] and info["watched"] == "val_loss"


def test_bert4rec_restores_its_best_validation_epoch_and_records_the_curve():
    train, validation, table = toy()
    model = RECOMMENDERS.create("bert4rec", hidden=16, lr=0.01, batch_size=8, max_epochs=12, patience=3, threads=1)
    model.fit(train, validation=validation, item_embeddings=table, seed=0)
    curve = model.curve
    assert list(curve.columns) == ["epoch", "train_loss", "val_metric", "seconds"]
    from sonic.rouge.models.history import ordered_histories
    from sonic.rouge.models.training import ndcg_at

    seen, histories = model._fitted()
    again = ndcg_at(lambda rows: model._scores(rows, histories), ordered_histories(validation, seen), seen)
    assert again == pytest.approx(curve["val_metric"].max(), abs=1e-9)
    assert model.describe()["best_epoch"] == int(curve.loc[curve["val_metric"].idxmax(), "epoch"])


def test_bert4rec_predicts_from_train_plus_the_given_history_only():
    train, validation, table = toy()
    model = RECOMMENDERS.create("bert4rec", hidden=16, max_epochs=2, threads=1).fit(train, item_embeddings=table)
    users = ["u0", "u1"]
    plain, plain_scores = model.recommend(users, 5)
    with_history, history_scores = model.recommend(users, 5, history=validation[validation["user_id"] == "u0"])
    np.testing.assert_array_equal(with_history[1], plain[1])  # u1's sequence is unchanged
    np.testing.assert_allclose(history_scores[1], plain_scores[1], atol=1e-5)  # padding width may differ
    held = validation.set_index("user_id").loc["u0", "track_id"]
    assert held not in with_history[0]
    assert not np.array_equal(history_scores[0], plain_scores[0])  # u0's sequence gained the held track
    # the scored events themselves never reach the model: recommending twice changes nothing
    np.testing.assert_array_equal(model.recommend(users, 5)[0], plain)


def test_snn_and_bert4rec_options_are_checked():
    with pytest.raises(SonicError, match="bert4rec items must be one of frozen, trainable, ids"):
        RECOMMENDERS.create("bert4rec", items="audio")
    with pytest.raises(SonicError, match="hidden 30 must be a multiple of heads 4"):
        RECOMMENDERS.create("bert4rec", hidden=30, heads=4)
    with pytest.raises(SonicError, match="snn negatives must be a positive integer"):
        RECOMMENDERS.create("snn", negatives=0)
    train, _, table = toy()
    with pytest.raises(SonicError, match="unknown device 'tpu'"):
        RECOMMENDERS.create("snn", max_epochs=1).fit(train, item_embeddings=table, device="tpu")


def test_bert4rec_attention_dropout_drops_attention_weights_alone():
    from sonic.rouge.models.bert4rec_net import build_network

    tokens = torch.as_tensor([[0, 3, 4, 5, 1], [2, 6, 7, 1, 8]])

    def twice(**dropouts):
        torch.manual_seed(0)
        net = build_network(10, items="ids", hidden=8, layers=1, heads=2, max_len=5, **dropouts).train()
        vectors = net.item_vectors()
        return net.encode(tokens, vectors), net.encode(tokens, vectors), net

    first, second, net = twice(dropout=0.0, attention_dropout=0.5)
    assert net.encoder.layers[0].self_attn.dropout == 0.5 and not torch.equal(first, second)
    first, second, net = twice(dropout=0.3, attention_dropout=0.0)
    assert net.encoder.layers[0].self_attn.dropout == 0.0 and not torch.equal(first, second)  # other dropouts
    first, second, net = twice(dropout=0.0, attention_dropout=0.0)
    torch.testing.assert_close(first, second)  # nothing random left in training mode
    assert twice(dropout=0.3)[2].encoder.layers[0].self_attn.dropout == 0.3  # None: the same as dropout
    with pytest.raises(SonicError, match="attention_dropout must lie in"):
        RECOMMENDERS.create("bert4rec", attention_dropout=1.0)


def test_ease_refuses_a_catalogue_beyond_max_tracks():
    train, _, _ = toy()
    with pytest.raises(SonicError, match="ease needs a dense 20 x 20 matrix, above max_tracks 10; use elsa"):
        RECOMMENDERS.create("ease", max_tracks=10).fit(train)


def test_loading_a_folder_that_is_not_that_model_is_a_data_error(tmp_path):
    train, _, _ = toy()
    folder = RECOMMENDERS.create("pop").fit(train).save(tmp_path / "pop")
    with pytest.raises(DataError, match="holds a 'pop' model, not 'ease'"):
        type(RECOMMENDERS.create("ease")).load(folder)
    with pytest.raises(DataError, match="is not a saved model"):
        type(RECOMMENDERS.create("ease")).load(tmp_path)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bert4rec_trains_and_predicts_on_cuda_in_the_precision_asked():
    train, validation, table = toy()
    for precision, expected in (("auto", "bfloat16"), ("float32", "float32")):
        for loss in ("softmax", "gbce"):
            model = RECOMMENDERS.create("bert4rec", hidden=16, max_epochs=3, batch_size=8, precision=precision,
                                        loss=loss, negatives=4)
            model.fit(train, validation=validation, item_embeddings=table, device="cuda", seed=0)
            ids, scores = model.recommend(["u0", "u1"], 5)
            info = model.describe()
            assert info["device"].startswith("cuda") and info["precision"] == expected and np.isfinite(scores).all()


def test_ease_min_listeners_keeps_only_tracks_heard_by_that_many():
    train = pd.DataFrame(
        {"user_id": ["a", "a", "b", "b", "c", "c", "c"], "track_id": ["x", "y", "x", "z", "y", "z", "solo"]}
    )
    model = RECOMMENDERS.create("ease", min_listeners=2, l2=1.0).fit(train)
    assert model.describe()["n_catalogue_tracks"] == 3  # solo has one listener
    ids, _ = model.recommend(["a", "b"], 3)
    assert ids[:, 0].tolist() == ["z", "y"] and "solo" not in ids


@pytest.mark.parametrize("n_users", [5, 50])  # fewer users than pairs (every user scored once), and more
def test_snn_pair_loss_is_the_same_whichever_way_rows_are_mapped(n_users):
    from sonic.rouge.models import snn

    rng = np.random.default_rng(3)
    net = snn._network(n_users, 6, 4, rng.standard_normal((n_users, 6)), rng.standard_normal((9, 6)))
    users, positives = torch.as_tensor(rng.integers(n_users, size=12)), torch.as_tensor(rng.integers(9, size=12))
    negatives = torch.as_tensor(rng.integers(9, size=(12, 5)))

    def loss_and_grads(path):
        net.zero_grad()
        loss = net.pair_loss(users, positives, negatives, 0.2, path)
        loss.backward()
        return loss.item(), [parameter.grad.clone() for parameter in net.parameters()]

    row_loss, row_grads = loss_and_grads("rows")  # every sampled row through the shared layer
    assert row_loss > 0
    for path in ("matrix", "tracks"):
        loss, grads = loss_and_grads(path)
        assert loss == pytest.approx(row_loss, abs=1e-6)
        for a, b in zip(grads, row_grads):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_snn_pair_path_maps_the_fewest_rows():
    from sonic.rouge.models.snn import pair_path

    assert pair_path(21_018, 55_262, 10_000, 20) == "tracks"  # the journal's scale: 210,000 sampled rows
    assert pair_path(21_018, 55_262, 500, 20) == "matrix"  # 500 x 55,262 cosines fit
    assert pair_path(10**6, 10**6, 100, 20) == "rows"  # 2,100 sampled rows of a million tracks


def test_snn_starts_each_user_at_the_mean_of_their_tracks():
    from sonic.rouge.models.snn import _mean_track_vectors

    vectors = np.array([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]], np.float32)
    users = _mean_track_vectors(np.array([0, 0, 2]), np.array([0, 1, 2]), vectors, 3)
    np.testing.assert_allclose(users, [[0.5, 1.0], [0.0, 0.0], [4.0, 4.0]])
