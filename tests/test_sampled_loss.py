"""BERT4Rec's sampled loss (gSASRec's gBCE) and its numeric precision option.

References from another hand: torch's own binary cross-entropy; hand arithmetic of the paper's formula
for beta; the network's full score matrix (the softmax's path) for the sampled scores; the paper's
calibration result (the expected loss is least at sigmoid(s) = beta p / (beta p + alpha (1 - p)), so p
itself when beta = alpha), which free scores trained by our sampler and loss must reach.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from sonic.errors import DataError, SonicError  # noqa: E402
from sonic.rouge.base import RECOMMENDERS  # noqa: E402
from sonic.rouge.models import bert4rec  # noqa: E402
from sonic.rouge.models.bert4rec_loss import (  # noqa: E402
    LossSettings,
    batch_loss,
    batch_rows,
    gbce_beta,
    gbce_initial_logit,
    gbce_loss,
    sample_negatives,
)
from sonic.rouge.models.bert4rec_net import FIRST_ITEM, MASK, PAD, build_network  # noqa: E402
from sonic.rouge.models.training import autocast_context, resolve_precision, torch_threads  # noqa: E402
from test_trained_models import toy  # noqa: E402  (two groups of tracks, listened within their group)


def test_gbce_beta_by_hand():
    # k = 1 draw over |I| = 10 tracks: alpha = 1 / 10; t = 0.5: beta = 0.1 * (0.5 * (1 - 10) + 10) = 0.55
    assert gbce_beta(1, 10, 0.5) == pytest.approx((0.1, 0.55))
    assert gbce_beta(1, 10, 0.0)[1] == pytest.approx(1.0)  # t = 0: plain BCE
    assert gbce_beta(1, 10, 1.0)[1] == pytest.approx(0.1)  # t = 1: beta = alpha
    alpha, beta = gbce_beta(256, 1682, 0.75)  # gSASRec's defaults on a MovieLens-sized catalogue
    assert alpha == pytest.approx(256 / 1682) and beta == pytest.approx(0.75 * alpha + 0.25)


def test_gbce_with_beta_one_is_binary_cross_entropy_over_the_positive_and_its_negatives():
    generator = torch.Generator().manual_seed(0)
    positive, negative = torch.randn(7, generator=generator) * 3, torch.randn(7, 5, generator=generator) * 3
    logits = torch.cat([positive[:, None], negative], dim=1)
    targets = torch.zeros_like(logits)
    targets[:, 0] = 1
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    assert float(gbce_loss(positive, negative, 1.0)) == pytest.approx(float(bce.sum(1).mean()), rel=1e-6)
    keep = torch.rand(7, 5, generator=generator) > 0.4
    expected = (bce[:, 0] + (bce[:, 1:] * keep).sum(1)).mean()
    assert float(gbce_loss(positive, negative, 1.0, keep)) == pytest.approx(float(expected), rel=1e-6)


def test_gbce_raises_the_positive_probability_to_the_power_beta():
    # s+ = 0, one negative at s = 0: -log(sigmoid(0) ** beta) - log(1 - sigmoid(0)) = (beta + 1) log 2
    loss = gbce_loss(torch.zeros(1), torch.zeros(1, 1), 0.3)
    assert float(loss) == pytest.approx(1.3 * np.log(2))
    # s+ = 2: -beta log(sigmoid(2)); no negatives counted
    loss = gbce_loss(torch.tensor([2.0]), torch.tensor([[5.0]]), 0.3, torch.tensor([[False]]))
    assert float(loss) == pytest.approx(-0.3 * np.log(1 / (1 + np.exp(-2))))


def test_gbce_starts_every_bias_at_the_constant_score_that_minimises_it():
    from scipy.optimize import minimize_scalar

    beta, k = 0.36, 256
    best = minimize_scalar(lambda c: float(gbce_loss(torch.tensor([c]), torch.full((1, k), c), beta)),
                           bounds=(-20, 20), method="bounded", options={"xatol": 1e-8})
    assert gbce_initial_logit(beta, k) == pytest.approx(best.x, abs=1e-3)  # the loss is float32, flat there
    train, validation, table = toy()
    model = RECOMMENDERS.create("bert4rec", loss="gbce", negatives=5, gbce_t=0.5, lr=1e-12, max_epochs=1,
                                hidden=8, threads=1).fit(train, item_embeddings=table)
    beta = model.describe()["gbce_beta"]
    torch.testing.assert_close(model._net.bias, torch.full((20,), np.log(beta / 5), dtype=torch.float32))


def test_negatives_are_uniform_over_the_catalogue():
    draws = sample_negatives(4000, 5, 5, torch.Generator().manual_seed(0))
    assert draws.shape == (4000, 5)
    np.testing.assert_allclose(np.bincount(draws.ravel().numpy(), minlength=5) / draws.numel(), 0.2, atol=0.01)


@pytest.mark.parametrize("exclude_visible", [True, False])
def test_gbce_batch_loss_against_the_full_score_matrix(exclude_visible):
    """Each masked position: beta softplus(-s+) + softplus(s_j) over its sequence's draws, less the draws
    equal to its own track (and, with exclude_visible, those visible in its sequence); scores read from
    the network's (positions x catalogue) matrix, the softmax's path."""
    torch.manual_seed(0)
    n_items = 6
    net = build_network(n_items, items="ids", hidden=8, layers=1, heads=2, max_len=5, dropout=0.0).eval()
    shown = FIRST_ITEM + torch.as_tensor([[0, 0, 0, 3, 0], [4, 0, 5, 1, 0]])  # tracks 0, 3 | 4, 5, 1 visible
    labels = torch.as_tensor([[-1, -1, 2, -1, 1], [-1, 0, -1, -1, 3]])  # masked: 2, 1 | 0, 3
    tokens = torch.where(labels >= 0, MASK, shown)
    tokens[0, 0] = PAD
    settings = LossSettings("gbce", n_items, exclude_visible, negatives=40, alpha=40 / 6, beta=0.7)
    with torch.no_grad():
        vectors = net.item_vectors()
        states = net.encode(tokens, vectors)
        loss = batch_loss(net, states, vectors, tokens, labels, settings, torch.Generator().manual_seed(5))
        draws = sample_negatives(2, n_items, 40, torch.Generator().manual_seed(5))  # the same draws
        full = net.scores(states.reshape(-1, 8), vectors).reshape(2, 5, n_items)
    softplus = torch.nn.functional.softplus
    expected = []
    for row, position in [(0, 2), (0, 4), (1, 1), (1, 4)]:
        own = int(labels[row, position])
        visible = {int(t) - FIRST_ITEM for t in tokens[row] if t >= FIRST_ITEM} if exclude_visible else set()
        kept = [int(d) for d in draws[row] if int(d) != own and int(d) not in visible]
        scores = full[row, position]
        expected.append(0.7 * softplus(-scores[own]) + sum(softplus(scores[d]) for d in kept))
    assert float(loss) == pytest.approx(float(torch.stack(expected).mean()), rel=1e-5)
    assert {0, 1, 2, 3} <= set(draws.ravel().tolist())  # the draws did hit true and visible tracks


def test_gbce_projects_only_the_batchs_rows_and_gets_the_full_projections_loss_and_gradients():
    """fit's gbce step projects the content vectors of batch_rows alone (visible, masked and drawn
    tracks): the loss and every gradient equal those with the whole catalogue projected."""
    torch.manual_seed(1)
    n_items, k = 60, 4
    content = torch.randn(n_items, 12)
    net = build_network(n_items, items="frozen", hidden=8, layers=1, heads=2, max_len=6, dropout=0.0,
                        content=content)
    shown = FIRST_ITEM + torch.as_tensor([[7, 7, 9, 30, 2, 5], [41, 0, 5, 1, 18, 50]])
    labels = torch.as_tensor([[-1, -1, 22, -1, 13, -1], [-1, 44, -1, -1, 3, -1]])
    tokens = torch.where(labels >= 0, MASK, shown)
    tokens[0, 0] = PAD
    settings = LossSettings("gbce", n_items, True, negatives=k, alpha=k / n_items, beta=0.5)
    draws = sample_negatives(2, n_items, k, torch.Generator().manual_seed(3))
    rows = batch_rows(tokens, labels, draws)
    visible, masked = {7, 30, 5, 41, 1, 50}, {22, 13, 44, 3}  # (position 0 of row 0 is padding)
    expected_rows = sorted(visible | masked | set(draws.ravel().tolist()))
    assert rows.tolist() == expected_rows and len(expected_rows) < n_items

    def loss_and_grads(chosen):
        net.zero_grad()
        vectors = net.item_vectors(chosen)
        loss = batch_loss(net, net.encode(tokens, vectors), vectors, tokens, labels, settings, negatives=draws)
        loss.backward()
        return float(loss.detach()), {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}

    net.eval()  # no dropout: the two passes see the same network
    partial, partial_grads = loss_and_grads(rows)
    whole, whole_grads = loss_and_grads(None)
    assert partial == pytest.approx(whole, rel=1e-6)
    assert partial_grads.keys() == whole_grads.keys() and "project.weight" in whole_grads
    for name, grad in whole_grads.items():
        torch.testing.assert_close(partial_grads[name], grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("t", [1.0, 0.0])
def test_gbce_trained_free_scores_reach_the_calibrated_optimum(t):
    """One free score per track, no context: positions in sequences of 8, positives drawn from p, each
    sequence's negatives shared by its positions, a draw of a position's own track dropped, as in
    batch_loss. With t = 1 (beta = alpha) sigmoid(score) must reach p; with t = 0 (plain BCE) the
    overconfident p / (p + alpha (1 - p))."""
    p = np.array([0.35, 0.25, 0.15, 0.12, 0.08, 0.05])
    negatives, sequences = 2, 256
    alpha, beta = gbce_beta(negatives, len(p), t)
    optimum = beta * p / (beta * p + alpha * (1 - p))
    generator = torch.Generator().manual_seed(0)
    scores = torch.zeros(len(p), requires_grad=True)
    optimiser = torch.optim.Adam([scores], lr=0.05)
    averaged = []
    with torch_threads(1):  # tiny tensors: threads that spin on a busy machine only cost time
        for step in range(300):
            positives = torch.multinomial(torch.as_tensor(p), sequences * 8, replacement=True, generator=generator)
            drawn = sample_negatives(sequences, len(p), negatives, generator).repeat_interleave(8, dim=0)
            loss = gbce_loss(scores[positives], scores[drawn], beta, drawn != positives[:, None])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if step >= 200:
                averaged.append(torch.sigmoid(scores).detach().numpy())
    np.testing.assert_allclose(np.mean(averaged, axis=0), optimum, atol=0.015)
    if t == 1.0:
        np.testing.assert_allclose(optimum, p)


def test_precision_float32_means_no_autocast_even_on_cuda():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert resolve_precision("float32", cuda) == "float32"
    assert isinstance(autocast_context(cuda, resolve_precision("float32", cuda)), contextlib.nullcontext)
    assert resolve_precision("auto", cuda) == "bfloat16" and resolve_precision("auto", cpu) == "float32"
    context = autocast_context(cpu, "bfloat16")
    assert isinstance(context, torch.autocast) and context.fast_dtype == torch.bfloat16 and context.device == "cpu"
    with pytest.raises(SonicError, match="precision must be one of auto, float32, bfloat16, got 'fp16'"):
        resolve_precision("fp16", cpu)


def test_bert4rec_with_gbce_learns_the_groups_and_records_its_options():
    train, validation, table = toy()
    options = dict(hidden=16, lr=0.01, batch_size=8, max_epochs=30, patience=30, threads=1)
    model = RECOMMENDERS.create("bert4rec", loss="gbce", negatives=4, gbce_t=0.5, **options)
    model.fit(train, validation=validation, item_embeddings=table, seed=0)
    users = [f"u{u}" for u in range(40)]
    ids, _ = model.recommend(users, 3)
    in_group = [int(track[1:]) // 10 == int(user[1:]) % 2 for user, row in zip(users, ids) for track in row]
    assert np.mean(in_group) > 0.9
    info = model.describe()
    assert {key: info["config"][key] for key in ("loss", "negatives", "gbce_t", "precision")} == {
        "loss": "gbce", "negatives": 4, "gbce_t": 0.5, "precision": "auto"}  # fmt: skip
    alpha = 4 / 20  # 20 catalogue tracks
    assert info["precision"] == "float32" and info["gbce_alpha"] == pytest.approx(alpha)
    assert info["gbce_beta"] == pytest.approx(alpha * (0.5 * (1 - 1 / alpha) + 1 / alpha))


def test_bert4rec_with_gbce_is_deterministic_given_the_seed(tmp_path):
    train, validation, table = toy()

    def fitted(seed):
        model = RECOMMENDERS.create("bert4rec", loss="gbce", negatives=3, hidden=16, max_epochs=4, batch_size=8,
                                    threads=1)
        return model.fit(train, validation=validation, item_embeddings=table, seed=seed)

    first, again, other = fitted(0), fitted(0), fitted(1)
    np.testing.assert_array_equal(first.curve["train_loss"], again.curve["train_loss"])
    assert not np.array_equal(first.curve["train_loss"], other.curve["train_loss"])
    users = ["u0", "u1", "u2"]
    np.testing.assert_array_equal(first.recommend(users, 5)[1], again.recommend(users, 5)[1])
    loaded = type(first).load(first.save(tmp_path / "model"))
    assert loaded.config.loss == "gbce" and loaded.describe()["gbce_beta"] == first.describe()["gbce_beta"]
    np.testing.assert_allclose(loaded.recommend(users, 5)[1], first.recommend(users, 5)[1], atol=1e-6)


@pytest.mark.parametrize("precision, expected", [("auto", "float32"), ("bfloat16", "bfloat16")])
def test_bert4rec_trains_and_predicts_in_the_precision_it_records(monkeypatch, precision, expected):
    used = []

    def spy(device, resolved):
        used.append((device.type, resolved))
        return autocast_context(device, resolved)

    monkeypatch.setattr(bert4rec, "autocast_context", spy)
    train, validation, table = toy()
    model = RECOMMENDERS.create("bert4rec", precision=precision, hidden=16, max_epochs=2, batch_size=8, threads=1)
    model.fit(train, validation=validation, item_embeddings=table, seed=0)
    ids, scores = model.recommend(["u0", "u1"], 5)
    assert set(used) == {("cpu", expected)} and model.describe()["precision"] == expected
    assert np.isfinite(scores).all()


def test_sampled_loss_options_are_checked():
    with pytest.raises(SonicError, match="bert4rec loss must be one of softmax, gbce, got 'bpr'"):
        RECOMMENDERS.create("bert4rec", loss="bpr")
    with pytest.raises(SonicError, match="bert4rec negatives must be a positive integer, got 0"):
        RECOMMENDERS.create("bert4rec", negatives=0)
    with pytest.raises(SonicError, match=r"bert4rec gbce_t must lie in \[0, 1\], got 1.5"):
        RECOMMENDERS.create("bert4rec", gbce_t=1.5)
    with pytest.raises(SonicError, match="bert4rec precision must be one of auto, float32, bfloat16"):
        RECOMMENDERS.create("bert4rec", precision="fp16")
    one_track = pd.DataFrame({"user_id": ["a", "b"], "track_id": ["x", "x"]})
    with pytest.raises(DataError, match="the catalogue has 1"):
        RECOMMENDERS.create("bert4rec", items="ids", loss="gbce", max_epochs=1).fit(one_track)


def test_a_run_folder_records_the_loss_and_the_precision_that_ran(tmp_path):
    import json

    from sonic.cream.data.split_files import write_split
    from sonic.cream.data.splits import Split, SplitConfig
    from sonic.rouge.run import run_model

    train, validation, _ = toy()
    stamp = {"timestamp": pd.Timestamp("2019-01-01"), "count": np.int64(1)}
    later = {"timestamp": pd.Timestamp("2019-02-01"), "count": np.int64(1)}
    split = Split(config=SplitConfig("toy", None, "2019-01-15", None), train=train.assign(**stamp),
                  val=validation.assign(**later), test=validation.assign(**later))
    options = {"items": "ids", "loss": "gbce", "negatives": "3", "gbce_t": "0.5", "precision": "float32",
               "max_epochs": "2", "hidden": "8", "threads": "1"}
    result = run_model("bert4rec", write_split(split, tmp_path / "split"), out_dir=tmp_path / "run", mode="val",
                       ks=(5,), options=options)
    config = json.loads((result.out_dir / "config.json").read_text())
    assert {key: config["options"][key] for key in ("loss", "negatives", "gbce_t", "precision")} == {
        "loss": "gbce", "negatives": 3, "gbce_t": 0.5, "precision": "float32"}  # fmt: skip
    info = config["model_info"]
    assert info["config"]["loss"] == "gbce" and info["precision"] == "float32"
    assert info["gbce_beta"] == pytest.approx(gbce_beta(3, 20, 0.5)[1])
