"""The BERT4Rec network (Sun et al., CIKM '19): a bidirectional transformer over a user's tracks that
predicts masked positions, with item vectors from ids or from content embeddings.

Tokens: 0 is padding, 1 the mask, ``2 + row`` the catalogue track ``row``. Sequences are padded on the
left, so the newest track always sits at position ``max_len - 1``. Output scores of a position are its
hidden state (through a dense + GELU + LayerNorm head) dotted with every item vector, plus a bias
(``scores``), or with a few chosen ones (``scores_of``, ``pair_scores``: for sampled losses).
"""

from __future__ import annotations

from typing import Any

from sonic.rouge.models.dropout import attention_layer, dropout_layer
from sonic.rouge.models.training import require_torch

PAD, MASK, FIRST_ITEM = 0, 1, 2
ITEM_SOURCES = ("frozen", "trainable", "ids")


def build_network(
    n_items: int,
    *,
    items: str,
    hidden: int,
    layers: int,
    heads: int,
    max_len: int,
    dropout: float,
    content: Any = None,
    attention_dropout: float | None = None,
) -> Any:
    """The torch module. ``items``: ``"ids"`` (a learned table), ``"frozen"`` (``content`` (n_items, d)
    fixed, a trained projection to ``hidden``) or ``"trainable"`` (``content`` as initial values, trained,
    with the projection). ``dropout`` applies to the embeddings, the residual branches and, unless
    ``attention_dropout`` says otherwise, the attention weights."""
    torch = require_torch("bert4rec")
    nn = torch.nn

    class BERT4RecNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            if items == "ids":
                self.item_table = nn.Embedding(n_items, hidden)
                nn.init.normal_(self.item_table.weight, std=0.02)
            else:
                values = torch.as_tensor(content, dtype=torch.float32).clone()
                if items == "frozen":
                    self.register_buffer("content", values)
                else:
                    self.content = nn.Parameter(values)
                self.project = nn.Linear(values.shape[1], hidden)
            self.special = nn.Embedding(2, hidden)  # padding, mask
            self.position = nn.Embedding(max_len, hidden)
            for table in (self.special, self.position):  # BERT's scale: as small as the item vectors
                nn.init.normal_(table.weight, std=0.02)
            self.norm = nn.LayerNorm(hidden)
            self.dropout = dropout_layer(dropout)
            layer = nn.TransformerEncoderLayer(hidden, heads, 4 * hidden, dropout, activation="gelu", batch_first=True)
            # torch's layer with its attention and dropouts made cheap on CPU (see sonic.rouge.models.dropout)
            weights_dropout = dropout if attention_dropout is None else attention_dropout
            layer.self_attn = blocked_attention(layer.self_attn, weights_dropout)
            layer.dropout, layer.dropout1, layer.dropout2 = (dropout_layer(dropout) for _ in range(3))
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden))
            self.bias = nn.Parameter(torch.zeros(n_items))

        def item_vectors(self, rows: Any = None) -> Any:
            """(n_items, hidden) every track's vector; with ``rows`` (int64 catalogue rows) only those are
            computed (the projection of a few content vectors, for a sampled loss), the others left 0."""
            if items == "ids":
                return self.item_table.weight
            if rows is None:
                return self.project(self.content)
            picked = self.project(self.content[rows])
            return picked.new_zeros(self.content.shape[0], picked.shape[1]).index_copy(0, rows, picked)

        def encode(self, tokens: Any, item_vectors: Any) -> Any:
            """``tokens`` (B, T) int64, left-padded -> hidden states (B, T, hidden) after the head."""
            table = torch.cat([self.special.weight, item_vectors], dim=0)  # (2 + n_items, hidden)
            length = tokens.shape[1]
            positions = torch.arange(max_len - length, max_len, device=tokens.device)
            x = self.dropout(self.norm(table[tokens] + self.position(positions)[None]))
            x = self.encoder(x, src_key_padding_mask=tokens == PAD)
            return self.head(x)

        def scores(self, states: Any, item_vectors: Any) -> Any:
            """(M, hidden) states -> (M, n_items) scores."""
            return states @ item_vectors.T + self.bias

        def scores_of(self, states: Any, item_vectors: Any, items: Any) -> Any:
            """(B, T, hidden) states and (B, c) catalogue rows -> (B, T, c): every position of a sequence
            scored against that sequence's own c tracks alone."""
            return torch.bmm(states, item_vectors[items].transpose(1, 2)) + self.bias[items][:, None, :]

        def pair_scores(self, states: Any, item_vectors: Any, items: Any) -> Any:
            """(M, hidden) states and (M,) catalogue rows -> (M,) the score of each state's own track."""
            return (states * item_vectors[items]).sum(-1) + self.bias[items]

    return BERT4RecNet()


def blocked_attention(built: Any, dropout: float) -> Any:
    """:func:`attention_layer` with ``built``'s parameters (an ``nn.MultiheadAttention`` made by
    ``nn.TransformerEncoderLayer``) and attention dropout ``dropout``; torch's random state is left as
    building ``built`` left it, so a seed gives the network it gave before."""
    torch = require_torch("bert4rec")
    with torch.random.fork_rng(devices=[]):
        layer = attention_layer(built.embed_dim, built.num_heads, float(dropout))
    layer.load_state_dict(built.state_dict())
    return layer
