"""RecurrentClassifier: rnn | lstm | gru with embeddings trained from scratch.

Padding never changes a review's output, without packing: right padding cannot reach the forward
direction's states at real positions, and the backward direction runs on each review reversed
within its own length (then reversed back), so it starts at the review's real last token. Pooling
masks padded positions. (Packing was ~10x slower than padded calls on CPU here; on CUDA cuDNN is
fast either way.)

On the CPU, GRU layers run through `fused_gru` (all directions in one fused loop, bf16 products
under bf16 autocast) with the same weights, so checkpoints are the same either way;
`model.fused_cpu_gru=false` keeps `nn.GRU`.

With a pretrained tokenizer (`model.pretrained` names the checkpoint; `recipe.tokenizer: pretrained`)
the embedding table can start from that checkpoint's word embeddings (`pretrained_embeddings`) and
stay frozen (`freeze_embeddings`): lexical pretraining without the checkpoint's contextual layers.
"""

from __future__ import annotations

import torch
from torch import nn

from imdb_lm.errors import UserError
from imdb_lm.models import fused_gru
from imdb_lm.models.classifier import SequenceClassifier
from imdb_lm.models.dropout import Dropout
from imdb_lm.models.pretrained import input_embeddings

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
POOLINGS = ("last", "max", "mean")


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's first `length` steps; padding stays at the end. x: [B, T, ...]."""
    steps = torch.arange(x.shape[1], device=x.device)[None, :]
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return x.gather(1, index[..., None].expand_as(x)) if x.ndim == 3 else x.gather(1, index)


class RecurrentClassifier(SequenceClassifier):
    family = "recurrent"

    def __init__(self, vocab_size: int, pad_id: int = 0, cell: str = "gru", embedding_dim: int = 128,
                 hidden_size: int = 128, num_layers: int = 1, bidirectional: bool = True,
                 dropout: float = 0.3, embedding_dropout: float = 0.3, pooling: str = "max",
                 fused_cpu_gru: bool = True, pretrained: str | None = None, pretrained_embeddings: bool = False,
                 freeze_embeddings: bool = False, optimizer: dict | None = None, scheduler: dict | None = None):
        super().__init__(optimizer, scheduler)
        if cell not in CELLS:
            raise UserError(f"model.cell={cell!r} is unknown; choose one of {', '.join(CELLS)}")
        if pooling not in POOLINGS:
            raise UserError(f"model.pooling={pooling!r} is unknown; choose one of {', '.join(POOLINGS)}")
        for name, value in (("embedding_dim", embedding_dim), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            if not isinstance(value, int) or value <= 0:
                raise UserError(f"model.{name}={value} must be a positive integer")
        self.save_hyperparameters(logger=False)
        self.cell, self.pooling, self.bidirectional = cell, pooling, bidirectional
        self.fused_cpu_gru = bool(fused_cpu_gru)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        if pretrained_embeddings:
            self._copy_pretrained_embeddings(pretrained)
        self.embedding.weight.requires_grad_(not freeze_embeddings)
        self.embedding_dropout = Dropout(embedding_dropout)
        directions = 2 if bidirectional else 1
        kwargs = {"nonlinearity": "tanh"} if cell == "rnn" else {}
        self.forward_layers = nn.ModuleList()
        self.backward_layers = nn.ModuleList()
        for layer in range(num_layers):
            size_in = embedding_dim if layer == 0 else hidden_size * directions
            self.forward_layers.append(CELLS[cell](size_in, hidden_size, batch_first=True, **kwargs))
            if bidirectional:
                self.backward_layers.append(CELLS[cell](size_in, hidden_size, batch_first=True, **kwargs))
        self.dropout = Dropout(dropout)
        self.head = nn.Linear(hidden_size * directions, 2)

    def _copy_pretrained_embeddings(self, pretrained: str | None) -> None:
        if not pretrained:
            raise UserError("model.pretrained_embeddings=true needs model.pretrained=<checkpoint> (its "
                            "tokenizer and word embeddings), e.g. model=bigru_minilm_emb")
        weights = input_embeddings(pretrained)
        if weights.shape != self.embedding.weight.shape:
            raise UserError(f"model.pretrained={pretrained}: its word embeddings are {tuple(weights.shape)}, this "
                            f"model's table is {tuple(self.embedding.weight.shape)}; set model.embedding_dim="
                            f"{weights.shape[1]} and data.tokenizer=pretrained (the checkpoint's own vocabulary)")
        with torch.no_grad():
            self.embedding.weight.copy_(weights)

    def forward_flops_per_token(self, length: int) -> float:
        """Analytic: every recurrent weight matrix (input and recurrent side, each gate, each direction
        and layer) does one multiply-add per token; the head's once per review is spread over its
        `length` tokens. Gate nonlinearities, biases and pooling are left out (a few per state unit)."""
        recurrent = sum(p.numel() for name, p in self.named_parameters()
                        if name.endswith(("weight_ih_l0", "weight_hh_l0")))
        return 2.0 * recurrent + 2.0 * self.head.weight.numel() / max(1, length)

    def encode(self, embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Per-position hidden states [B, T, H*directions] from embeddings [B, T, E]."""
        x = embedded
        for layer, forward_rnn in enumerate(self.forward_layers):
            if layer > 0:
                x = self.dropout(x)
            if self.cell == "gru" and self.fused_cpu_gru and fused_gru.usable(x):
                layers = [forward_rnn] + ([self.backward_layers[layer]] if self.bidirectional else [])
                x = fused_gru.gru_layer(x, lengths, layers)
                continue
            if x.device.type == "cpu":
                x = self._native_layer(layer, x, lengths)
            else:  # cuDNN is fast in fp32; its reduced-precision RNN paths are not tested here
                with torch.autocast(x.device.type, enabled=False):
                    x = self._native_layer(layer, x.float(), lengths)
        return x

    def _native_layer(self, layer: int, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out, _ = self.forward_layers[layer](x)
        if self.bidirectional:
            back, _ = self.backward_layers[layer](reverse_within_length(x, lengths))
            out = torch.cat([out, reverse_within_length(back, lengths)], dim=-1)
        return out

    def pool(self, states: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.pooling == "max":
            return states.masked_fill(~mask[..., None], torch.finfo(states.dtype).min).amax(dim=1)
        if self.pooling == "mean":
            return (states * mask[..., None]).sum(1) / lengths.clamp(min=1)[:, None].to(states.dtype)
        # last: forward direction at the last real token; backward direction at position 0
        last = (lengths - 1).clamp(min=0).to(states.device)
        rows = torch.arange(states.shape[0], device=states.device)
        if not self.bidirectional:
            return states[rows, last]
        hidden = states.shape[-1] // 2
        return torch.cat([states[rows, last, :hidden], states[:, 0, hidden:]], dim=-1)

    def embeddings(self) -> nn.Module:
        return self.embedding

    def forward_embedded(self, embedded: torch.Tensor, attention_mask: torch.Tensor,
                         lengths: torch.Tensor) -> torch.Tensor:
        """Logits from embeddings: the entry point for embedding-level attribution methods."""
        states = self.encode(self.embedding_dropout(embedded), lengths)
        return self.head(self.dropout(self.pool(states, attention_mask.bool(), lengths)))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(self.embedding(input_ids), attention_mask, lengths)
