"""Baseline 1: the recurrent "tutorial" loop, as the common sentiment tutorials write it.

Every review padded to the maximum length up front, a shuffled DataLoader with the default
collate, `pack_padded_sequence` so the bidirectional GRU skips padding, fp32, a plain loop with
Adam and gradient clipping, and no denormal flushing. Same size as the default BiGRU: embedding
128, hidden 128, one bidirectional layer, max-pool over the real positions (the packed output is
unpacked with -inf padding so the max ignores it), the same dropouts, vocabulary and token ids.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.utils.data import DataLoader, TensorDataset

from imdb_lm.bench.harness import StepWindow, autocast, correct_over
from imdb_lm.bench.workload import Workload
from imdb_lm.config.resolvers import bf16_native
from imdb_lm.data.batching import TokenizedReviews
from imdb_lm.models.classifier import lr_scheduler


class TutorialBiGRU(nn.Module):
    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, pad_id: int,
                 dropout: float, embedding_dropout: float):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.rnn = nn.GRU(embedding_dim, hidden_size, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * hidden_size, 2)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        embedded = self.embedding_dropout(self.embedding(input_ids))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, _ = self.rnn(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, padding_value=float("-inf"))
        return self.fc(self.dropout(output.max(dim=1).values))


def fixed_padded(data: TokenizedReviews, max_length: int, pad_id: int) -> TensorDataset:
    ids = torch.full((len(data), max_length), pad_id, dtype=torch.long)
    for row, x in enumerate(data.input_ids):
        ids[row, : len(x)] = x[:max_length]
    lengths = torch.tensor([min(n, max_length) for n in data.lengths])
    return TensorDataset(ids, lengths, torch.tensor(data.labels))


class RnnTutorialSide:
    name = "rnn_tutorial"
    flush_denormals = False  # tutorials do not know about it
    precision = "32-true"
    fused_adam = False
    description = "tutorial loop: fixed padding to max length, pack_padded_sequence, fp32, plain PyTorch"

    def __init__(self, work: Workload, flops=None):
        self.work = work
        self.model = self._fresh_model()
        self.train = fixed_padded(work.train_slice(), work.max_length, work.datamodule.pad_id)
        self._infer_batches = None

    def _fresh_model(self, seed: int | None = None) -> TutorialBiGRU:
        m = self.work.cfg.model
        torch.manual_seed(self.work.seed if seed is None else seed)  # also drives the loader's shuffling
        model = TutorialBiGRU(self.work.datamodule.vocab_size, m.embedding_dim, m.hidden_size,
                              self.work.datamodule.pad_id, m.dropout, m.embedding_dropout).to(self.work.device)
        lr = float(self.work.cfg.optimizer.lr)
        self.optimizer = (torch.optim.Adam(model.parameters(), lr=lr, fused=True) if self.fused_adam
                          else torch.optim.Adam(model.parameters(), lr=lr))
        self.scheduler = None  # speed repeats: a constant rate (a schedule's step costs nothing)
        return model

    def _loader(self, data: TensorDataset, seed: int | None = None) -> DataLoader:
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        return DataLoader(data, batch_size=self.work.batch_size, shuffle=True, generator=generator)

    def _step(self, ids, lengths, labels) -> None:
        device = self.work.device
        ids, labels = ids.to(device), labels.to(device)
        with autocast(self.precision, device):
            logits = self.model(ids, lengths)
        loss = F.cross_entropy(logits.float(), labels)
        self.optimizer.zero_grad()
        loss.backward()
        if self.work.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.work.clip)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()

    def _epoch(self, window: StepWindow, seed: int, limit: int | None = None) -> None:
        self.model.train()
        window.start_now()
        for step, (ids, lengths, labels) in enumerate(self._loader(self.train, seed)):
            if limit is not None and step >= limit:
                break
            self._step(ids, lengths, labels)
            window.step_done(len(labels), int(lengths.sum()), ids.numel())

    def warmup(self, steps: int) -> None:
        self._epoch(StepWindow(0, self.work.device), seed=10_000, limit=steps)

    def train_repeat(self, repeat: int) -> dict:
        """One pass over the training slice, shuffled by `repeat`: the same reviews as every side's
        repeat (a batch's cost follows its longest review, so a few random batches vary widely)."""
        window = StepWindow(0, self.work.device)
        self._epoch(window, seed=repeat)
        return window.record()

    def inference_batches(self) -> list[dict]:
        if self._infer_batches is None:
            data = fixed_padded(self.work.split("test").subset(self.work.infer_indices), self.work.max_length,
                                self.work.datamodule.pad_id)
            loader = DataLoader(data, batch_size=self.work.infer_batch_size, shuffle=False)
            self._infer_batches = [{"input_ids": ids.to(self.work.device), "lengths": lengths,
                                    "labels": labels.to(self.work.device), "n": len(labels)}
                                   for ids, lengths, labels in loader]
        return self._infer_batches

    def prepare_inference(self) -> None:
        self.model.eval()

    def forward_batch(self, batch: dict) -> torch.Tensor:
        return self.model(batch["input_ids"], batch["lengths"])

    def forward_one(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(ids, torch.tensor([ids.shape[1]]))

    def train_and_test(self, train: TokenizedReviews, epochs: int, seed: int) -> np.ndarray:
        self.model = self._fresh_model(seed)
        self.model.train()
        data = fixed_padded(train, self.work.max_length, self.work.datamodule.pad_id)
        # the run config's schedule (conf/scheduler), as ours follows it: same rates at every step
        steps = epochs * len(self._loader(data))
        self.scheduler = lr_scheduler(self.optimizer, dict(self.work.cfg.scheduler), steps)
        for _ in range(epochs):
            for ids, lengths, labels in self._loader(data):
                self._step(ids, lengths, labels)
        self.model.eval()
        test = fixed_padded(self.work.split("test"), self.work.max_length, self.work.datamodule.pad_id)
        batches = [{"input_ids": ids.to(self.work.device), "lengths": lengths, "labels": labels.to(self.work.device),
                    "n": len(labels)} for ids, lengths, labels in DataLoader(test, batch_size=256)]
        return correct_over(self.forward_batch, batches)


class RnnTutorialTunedSide(RnnTutorialSide):
    """The tutorial loop with only its numeric settings changed to this project's: bf16 autocast where
    this project trains in bf16 and the hardware computes it natively, denormal floats flushed, fused
    Adam. Same model, fixed padding and `pack_padded_sequence`: against the plain tutorial it measures
    the numeric settings' share of the gain, and this project's path against it the share of the fused
    kernel and data path. (CPU autocast has no bf16 rule for `nn.GRU`: the recurrence stays fp32, only
    the output layer runs in bf16.) Training only."""

    name = "rnn_tutorial_tuned"
    flush_denormals = True
    fused_adam = True

    def __init__(self, work: Workload, flops=None):
        bf16 = "bf16" in work.precision and bf16_native(work.device.type)
        self.precision = "bf16-mixed" if bf16 else "32-true"
        self.description = (f"tutorial loop with this project's numeric settings only: {self.precision}, "
                            "flushed denormals, fused Adam (fixed padding, pack_padded_sequence)")
        super().__init__(work, flops)
