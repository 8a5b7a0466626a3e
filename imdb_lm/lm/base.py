"""LanguageModel: the LightningModule every language-model family shares.

A family supplies `body(input_ids, state, keep_state) -> (hidden [B, T, width], state)`: the whole
sequence at once in training (state None), or a continuation from a carried state in generation
(an RNN's hidden states, the transformer's KV cache; keep_state asks for it to be returned).
The output layer (output.py), the per-token loss, the steps and the optimizer wiring are here.
Each review is right-padded; every body is causal, so padding never reaches a real position, and
only real targets are scored.
"""

from __future__ import annotations

import torch

from imdb_lm.lm.output import build_output
from imdb_lm.models.classifier import SequenceClassifier

# Perplexity by the position of the predicted token (the start token is position 0).
POSITION_BUCKETS = ((1, 32), (33, 128), (129, 256))


def bucket_of(positions: torch.Tensor) -> torch.Tensor:
    """The POSITION_BUCKETS index of each position (past the last bucket: the last)."""
    edges = torch.tensor([high for _, high in POSITION_BUCKETS[:-1]], device=positions.device)
    return torch.bucketize(positions, edges, right=False)


class LanguageModel(SequenceClassifier):
    """Shares SequenceClassifier's optimizer, schedule, clipping and size accounting; its own steps."""

    family = "lm"

    def __init__(self, output: str = "full", loss_chunk: int = 2048, optimizer: dict | None = None,
                 scheduler: dict | None = None):
        super().__init__(optimizer, scheduler)
        self.output_kind, self.loss_chunk = output, loss_chunk

    def _build_output(self) -> None:
        """Called by a family once its input embedding exists (the output layer is tied to it)."""
        self.output = build_output(self.output_kind, self.embeddings(), self.loss_chunk)

    def body(self, input_ids: torch.Tensor, state=None, keep_state: bool = False):
        raise NotImplementedError

    def body_flops_per_token(self, length: int) -> float:
        raise NotImplementedError

    def embedding_block(self) -> torch.nn.Module:
        """The input table and the output bias: both vocabulary-sized (the table is tied to the output)."""
        return torch.nn.ModuleList([self.embeddings(), self.output])

    def forward_flops_per_token(self, length: int) -> float:
        """The body's forward FLOPs per token (each family counts its own) plus the output layer's."""
        return self.body_flops_per_token(length) + self.output.flops_per_token()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits at every position [B, T, vocabulary] (scoring and timing; training
        never builds them all at once)."""
        hidden, _ = self.body(input_ids)
        return self.output.logits(hidden)

    def next_logits(self, input_ids: torch.Tensor, state=None):
        """(logits of the token after the last position [B, vocabulary], the state after it)."""
        hidden, state = self.body(input_ids, state, keep_state=True)
        return self.output.logits(hidden[:, -1]).float(), state

    def _shared_step(self, batch: dict) -> dict:
        ids, lengths = batch["input_ids"], batch["lengths"]
        hidden, _ = self.body(ids[:, :-1])
        steps = torch.arange(ids.shape[1] - 1, device=ids.device)
        real = steps[None, :] < (lengths.to(ids.device) - 1)[:, None]  # targets 1..length-1 of each review
        nll = self.output.nll(hidden[real], ids[:, 1:][real])
        positions = (steps + 1).expand_as(real)[real]
        return {"loss": nll.mean(), "nll": nll.detach(), "buckets": bucket_of(positions),
                "index": batch["index"], "tokens": lengths.sum()}

    def predict_step(self, batch: dict, batch_idx: int):
        return self._shared_step(batch)["nll"]
