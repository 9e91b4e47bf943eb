"""The blocked attention with dropout (``sonic.rouge.models.attention``) against torch's own attention,
torch's numerical gradients, and the dropout's rate."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from sonic.rouge.models import dropout as attention  # noqa: E402
from sonic.rouge.models.bert4rec_net import build_network  # noqa: E402

F = torch.nn.functional


def inputs(batch=5, heads=2, length=7, width=4, dtype=torch.float32, seed=0):
    """q, k, v (batch, heads, length, width) and a left-padding bias (0 or -inf) hiding 0..3 keys."""
    generator = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch, heads, length, width, generator=generator, dtype=dtype) for _ in range(3))
    hidden = torch.arange(length)[None, :] < (torch.arange(batch) % 4)[:, None]  # row b hides its first b % 4
    bias = torch.zeros(batch, length, dtype=dtype).masked_fill(hidden, float("-inf"))
    return q, k, v, hidden, bias


@pytest.mark.parametrize("block_bytes", [1, 1 << 30])  # one sequence a block; the whole batch in one
def test_without_dropout_it_is_torchs_attention_with_its_gradients(monkeypatch, block_bytes):
    monkeypatch.setattr(attention, "BLOCK_BYTES", block_bytes)
    q, k, v, hidden, bias = inputs()
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    ours = attention.dropped_attention(*leaves, bias, 0.0)
    grads = torch.autograd.grad((ours * torch.linspace(-1, 1, ours.numel()).view_as(ours)).sum(), leaves)
    theirs_leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    theirs = F.scaled_dot_product_attention(*theirs_leaves, attn_mask=~hidden[:, None, None, :])
    theirs_grads = torch.autograd.grad((theirs * torch.linspace(-1, 1, theirs.numel()).view_as(theirs)).sum(),
                                       theirs_leaves)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    for mine, reference in zip(grads, theirs_grads):
        torch.testing.assert_close(mine, reference, rtol=1e-4, atol=1e-5)


def test_strided_heads_as_the_layer_passes_them_give_torchs_attention():
    """q, k, v as views of one (B, T, 3, H, d) projection, not contiguous (what the layer hands over)."""
    projected = torch.randn(5, 7, 3, 2, 4, generator=torch.Generator().manual_seed(4))
    q, k, v = (t.requires_grad_() for t in projected.permute(2, 0, 3, 1, 4).unbind(0))
    assert not q.is_contiguous()
    _, _, _, hidden, bias = inputs()
    ours = attention.dropped_attention(q, k, v, bias, 0.0)
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=~hidden[:, None, None, :])
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    for mine, reference in zip(torch.autograd.grad(ours.square().sum(), (q, k, v)),
                               torch.autograd.grad(theirs.square().sum(), (q, k, v))):
        torch.testing.assert_close(mine, reference, rtol=1e-4, atol=1e-5)


def test_dropped_weights_are_torchs_weights_scaled_or_zero_at_rate_p():
    # v the identity: the output is the (dropped) weights themselves
    batch, heads, length, p = 40, 2, 16, 0.3
    q, k, _, hidden, bias = inputs(batch, heads, length, width=length, seed=1)
    eye = torch.eye(length).expand(batch, heads, length, length)
    weights = F.scaled_dot_product_attention(q, k, eye, attn_mask=~hidden[:, None, None, :])
    dropped = attention.dropped_attention(q, k, eye, bias, p, torch.Generator().manual_seed(5))
    visible = ~hidden[:, None, None, :].expand_as(weights)
    zero = dropped == 0
    kept = visible & ~zero
    torch.testing.assert_close(dropped[kept], weights[kept] / (1 - p), rtol=1e-5, atol=1e-7)
    assert torch.all(dropped[~visible] == 0)
    n = int(visible.sum())
    rate = float((zero & visible).sum()) / n
    assert abs(rate - p) < 4 * (p * (1 - p) / n) ** 0.5, (rate, n)


def test_gradients_with_dropout_match_numerical_ones():
    q, k, v, _, bias = inputs(batch=3, length=5, width=3, dtype=torch.float64, seed=2)

    def same_drop(q, k, v):  # a fresh generator each call: the same drop, so the function is fixed
        return attention.dropped_attention(q, k, v, bias, 0.25, torch.Generator().manual_seed(7))

    leaves = tuple(t.requires_grad_() for t in (q, k, v))
    assert torch.autograd.gradcheck(same_drop, leaves, eps=1e-6, atol=1e-6)


def test_the_layer_is_torchs_multihead_attention_around_the_blocks(monkeypatch):
    """The layer's own path (projections, heads, output) with the blocks replaced by torch's attention
    (dropout 0) equals torch's nn.MultiheadAttention with the same weights; in eval it is torch's."""
    torch.manual_seed(0)
    layer = attention.attention_layer(8, 2, 0.2)
    reference = torch.nn.MultiheadAttention(8, 2, dropout=0.0, batch_first=True)
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(3, 6, 8)
    pad = torch.zeros(3, 6, dtype=torch.bool)
    pad[1, :2] = True
    seen = []

    def undropped(q, k, v, bias, p, generator=None):
        seen.append(p)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias[:, None, None, :])

    monkeypatch.setattr(attention, "dropped_attention", undropped)
    layer.train()
    ours = layer(x, x, x, key_padding_mask=pad, need_weights=False)[0]
    expected = reference(x, x, x, key_padding_mask=pad, need_weights=False)[0]
    assert seen == [0.2]
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)
    layer.eval()
    with torch.no_grad():
        torch.testing.assert_close(layer(x, x, x, key_padding_mask=pad, need_weights=False)[0], expected,
                                   rtol=1e-5, atol=1e-6)
    assert seen == [0.2]  # eval: torch's attention, not the blocks


def test_bert4rec_network_keeps_its_seeded_parameters_and_uses_the_blocks(monkeypatch):
    """Swapping the attention layer leaves torch's random state where it was: the seeded network and the
    next draw are those of the plain nn.TransformerEncoderLayer build (torch's attention kept)."""
    from sonic.rouge.models import bert4rec_net

    settings = dict(items="ids", hidden=8, layers=2, heads=2, max_len=6, dropout=0.2, attention_dropout=0.1)
    torch.manual_seed(3)
    net = build_network(20, **settings)
    next_draw = torch.rand(3)
    attentions = [layer.self_attn for layer in net.encoder.layers]
    assert all(type(a).__name__ == "CachedDropoutAttention" and a.dropout == 0.1 for a in attentions)
    dropouts = [net.dropout] + [getattr(layer, name) for layer in net.encoder.layers
                                for name in ("dropout", "dropout1", "dropout2")]
    assert all(type(d).__name__ == "CheapDropout" and d.p == 0.2 for d in dropouts)

    def keep_torchs(built, dropout):
        built.dropout = dropout
        return built

    monkeypatch.setattr(bert4rec_net, "blocked_attention", keep_torchs)
    torch.manual_seed(3)
    plain = build_network(20, **settings)
    assert type(plain.encoder.layers[0].self_attn) is torch.nn.MultiheadAttention
    assert torch.equal(torch.rand(3), next_draw)
    assert net.state_dict().keys() == plain.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), plain.state_dict().values()))


def test_activation_dropout_keeps_at_rate_one_minus_p_and_scales_as_torch_does():
    p = 0.3
    x = torch.rand(200, 300) + 0.5  # no zeros of its own
    torch.manual_seed(0)
    layer = attention.dropout_layer(p)
    reference = torch.nn.Dropout(p)
    layer.train()
    leaf = x.clone().requires_grad_()
    out = layer(leaf)
    theirs = reference(x)
    kept, kept_theirs = out != 0, theirs != 0
    torch.testing.assert_close(out[kept], x[kept] / (1 - p))
    torch.testing.assert_close(theirs[kept_theirs], x[kept_theirs] / (1 - p))  # torch's own law, the same
    n = x.numel()
    for mask in (kept, kept_theirs):
        assert abs(float(mask.float().mean()) - (1 - p)) < 4 * (p * (1 - p) / n) ** 0.5
    (grad,) = torch.autograd.grad((out * 3.0).sum(), leaf)
    torch.testing.assert_close(grad, 3.0 * kept.float() / (1 - p))
    layer.eval()
    assert torch.equal(layer(x), x)


def test_activation_dropout_leaves_other_dtypes_to_torch(monkeypatch):
    layer = attention.dropout_layer(0.5).train()
    x = torch.ones(1000, dtype=torch.float64)
    calls = []
    original = attention.dropped
    monkeypatch.setattr(attention, "dropped", lambda *a: calls.append(a) or original(*a))
    out = layer(x)
    layer(x.float())
    assert out.dtype == torch.float64 and set(out.unique().tolist()) <= {0.0, 2.0}
    assert len(calls) == 1 and calls[0][0].dtype == torch.float32
