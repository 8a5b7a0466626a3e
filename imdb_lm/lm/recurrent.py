"""Recurrent language models: GRU and LSTM (stacked, unidirectional) and minGRU blocks.

gru / lstm: embedding -> layers of nn.GRU / nn.LSTM with dropout between them -> a projection to
the embedding width -> the tied output layer. GRU layers train through the fused CPU kernel
(imdb_lm/models/fused_gru.py, the same weights) where it is built; a carried state (generation)
goes through nn.GRU, which takes one.

mingru: blocks shaped like the transformer's with attention replaced by a minGRU (mingru.py):
x + W_o minGRU(LN(x)), then x + MLP(LN(x)), and a final LayerNorm. Its training is a parallel scan.
"""

from __future__ import annotations

import torch
from torch import nn

from imdb_lm.errors import UserError
from imdb_lm.lm.base import LanguageModel
from imdb_lm.lm.mingru import MinGRU
from imdb_lm.models import fused_gru

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM, "mingru": MinGRU}


class MinGRUBlock(nn.Module):
    def __init__(self, width: int, hidden_size: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.cell = MinGRU(width, hidden_size)
        self.out = nn.Linear(hidden_size, width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None):
        states, last = self.cell(self.norm1(x), h0)
        x = x + self.dropout(self.out(states.to(x.dtype)))
        return x + self.dropout(self.mlp(self.norm2(x))), last


class RecurrentLM(LanguageModel):
    family = "recurrent_lm"

    def __init__(self, vocab_size: int, pad_id: int = 0, cell: str = "gru", embedding_dim: int = 128,
                 hidden_size: int = 256, num_layers: int = 1, dropout: float = 0.1, mlp_ratio: int = 4,
                 fused_cpu_gru: bool = True, output: str = "full", loss_chunk: int = 2048,
                 optimizer: dict | None = None, scheduler: dict | None = None):
        super().__init__(output, loss_chunk, optimizer, scheduler)
        if cell not in CELLS:
            raise UserError(f"model.cell={cell!r} is unknown for a language model; choose one of {', '.join(CELLS)}")
        self.save_hyperparameters(logger=False)
        self.cell, self.fused_cpu_gru = cell, bool(fused_cpu_gru)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)  # AWD-LSTM's; N(0, 1) logits would saturate
        self.dropout = nn.Dropout(dropout)
        if cell == "mingru":
            self.layers = nn.ModuleList(MinGRUBlock(embedding_dim, hidden_size, mlp_ratio, dropout)
                                        for _ in range(num_layers))
            self.project = nn.LayerNorm(embedding_dim)
        else:
            self.layers = nn.ModuleList(CELLS[cell](embedding_dim if i == 0 else hidden_size, hidden_size,
                                                    batch_first=True) for i in range(num_layers))
            self.project = nn.Linear(hidden_size, embedding_dim)
        self._build_output()

    def embeddings(self) -> nn.Module:
        return self.embedding

    def body(self, input_ids: torch.Tensor, state=None, keep_state: bool = False):
        x = self.dropout(self.embedding(input_ids))
        states = []
        for i, layer in enumerate(self.layers):
            carried = None if state is None else state[i]
            if self.cell == "mingru":
                x, last = layer(x, carried)
            else:
                if i > 0:
                    x = self.dropout(x)
                if self.cell == "gru" and carried is None and self.fused_cpu_gru and fused_gru.usable(x):
                    lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
                    x = fused_gru.gru_layer(x, lengths, [layer])
                    last = x[:, -1][None].contiguous()
                else:
                    x, last = layer(x, carried)
            states.append(last)
        return self.dropout(self.project(x)), states

    def body_flops_per_token(self, length: int) -> float:
        """Analytic, 2 per multiply-add: every weight matrix of the body once per token (a GRU's or
        LSTM's input and recurrent side, minGRU's gates, projections, MLPs). Gate nonlinearities,
        the scan, norms and biases are left out (a few per state unit)."""
        matrices = sum(p.numel() for name, p in self.named_parameters()
                       if p.ndim == 2 and not name.startswith(("embedding", "output")))
        return 2.0 * matrices
