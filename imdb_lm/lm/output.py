"""The output layer of every language-model family (`lm.output`), tied to the input embedding.

`full`: a softmax over all 30,522 wordpieces, its weight the input embedding table (Press & Wolf
2017) plus a bias. Its logits dominate a small LM's memory (batch 32 x 256 positions x 30,522 is
~1 GB in fp32), so the training loss is computed in chunks of `lm.loss_chunk` target tokens, each
chunk's logits recomputed in the backward pass instead of kept: peak memory is one chunk's logits.
An adaptive softmax (Baevski & Auli 2019) would be a second entry in OUTPUTS, chosen by measurement.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


def _chunk_nll(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = F.linear(hidden, weight, bias).float()
    return F.cross_entropy(logits, targets, reduction="none")


class FullSoftmax(nn.Module):
    """logits = hidden @ embedding.T + bias; per-token loss in checkpointed chunks."""

    def __init__(self, embedding: nn.Embedding, chunk: int = 2048):
        super().__init__()
        # The input table itself, held outside this module's registry: its owner registers (and saves)
        # it once; this layer only reads its weight.
        self._table = [embedding]
        self.bias = nn.Parameter(torch.zeros(embedding.num_embeddings))
        self.chunk = chunk

    @property
    def embedding(self) -> nn.Embedding:
        return self._table[0]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, self.embedding.weight, self.bias)

    def nll(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-token negative log-likelihood (nats) of `targets` [N] given `hidden` [N, width]."""
        weight = self.embedding.weight
        parts = []
        for start in range(0, hidden.shape[0], self.chunk):
            h, t = hidden[start:start + self.chunk], targets[start:start + self.chunk]
            if torch.is_grad_enabled() and hidden.requires_grad:
                parts.append(checkpoint(_chunk_nll, h, weight, self.bias, t, use_reentrant=False))
            else:
                parts.append(_chunk_nll(h, weight, self.bias, t))
        return torch.cat(parts) if parts else hidden.new_zeros(0)

    def flops_per_token(self) -> float:
        return 2.0 * self.embedding.weight.numel()


OUTPUTS = {"full": FullSoftmax}


def build_output(kind: str, embedding: nn.Embedding, chunk: int) -> nn.Module:
    return OUTPUTS[kind](embedding, chunk)
