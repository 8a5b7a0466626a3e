"""StabilityCallback: gradient norm per step, loss spikes, and early stop with status `diverged`.

A run has diverged, and stops at once instead of burning time, when
  - the training loss becomes NaN or infinite, or
  - validation accuracy sits at or below the majority-class rate for `majority_patience`
    validations in a row (a "failed run" in Mosbach et al. 2021: the model predicts one class).
Loss spikes (a step loss above `spike_factor` x the median of the recent steps) and the gradient
norm (before clipping) are logged as signals only. `imdb_lm.train` writes status `diverged` with the
reason and exits 0: a diverged run is a result to report, not a crash.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

import lightning as L
import torch


class StabilityCallback(L.Callback):
    def __init__(self, spike_factor: float = 3.0, spike_window: int = 50, min_spike_history: int = 10,
                 majority_patience: int = 3, majority_tolerance: float = 0.01, max_recorded_spikes: int = 100):
        super().__init__()
        self.spike_factor, self.min_spike_history = spike_factor, min_spike_history
        self.majority_patience, self.majority_tolerance = majority_patience, majority_tolerance
        self.max_recorded_spikes = max_recorded_spikes
        self.recent_losses: deque[float] = deque(maxlen=spike_window)
        self.grad_norms: list[float] = []
        self.spikes: list[dict] = []
        self.spike_count = 0
        self.at_majority = 0
        self.reason: str | None = None
        self._val_probs: list[torch.Tensor] = []
        self._val_labels: list[torch.Tensor] = []
        self._batch_step = 0

    @property
    def diverged(self) -> bool:
        return self.reason is not None

    # ---- decisions (plain numbers in, reason out: unit-testable without a Trainer) ------------
    def observe_loss(self, step: int, loss: float) -> str | None:
        if not math.isfinite(loss):
            return f"training loss became {loss} at step {step}"
        if len(self.recent_losses) >= self.min_spike_history:
            median = statistics.median(self.recent_losses)
            if loss > self.spike_factor * median:
                self.spike_count += 1
                if len(self.spikes) < self.max_recorded_spikes:
                    self.spikes.append({"step": step, "loss": loss, "recent_median": median})
        self.recent_losses.append(loss)
        return None

    def observe_validation(self, labels: torch.Tensor, probs: torch.Tensor) -> str | None:
        if labels.numel() == 0:
            return None
        acc = float(((probs >= 0.5).long() == labels).float().mean())
        positive = float(labels.float().mean())
        majority = max(positive, 1 - positive)
        self.at_majority = self.at_majority + 1 if acc <= majority + self.majority_tolerance else 0
        if self.at_majority >= self.majority_patience:
            return (f"validation accuracy {acc:.3f} stayed at or below the majority-class rate {majority:.3f} "
                    f"for {self.at_majority} validations in a row")
        return None

    def _stop(self, trainer: L.Trainer, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            print(f"\ndiverged: {reason}; stopping early", flush=True)
        trainer.should_stop = True

    # ---- Lightning hooks ---------------------------------------------------------------------
    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        grads = [p.grad.detach().float().norm(2) for p in pl_module.parameters() if p.grad is not None]
        if not grads:
            return
        norm = float(torch.linalg.vector_norm(torch.stack(grads), 2))
        self.grad_norms.append(norm)
        pl_module.log("train/grad_norm", norm, on_step=True, on_epoch=False)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._batch_step = trainer.global_step  # the step this batch's loss belongs to

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = float(outputs["loss"]) if isinstance(outputs, dict) else float(outputs)
        spikes = self.spike_count
        reason = self.observe_loss(self._batch_step, loss)
        pl_module.log("train/loss_step", loss, on_step=True, on_epoch=False)
        if self.spike_count > spikes:
            pl_module.log("train/loss_spikes", float(self.spike_count), on_step=True, on_epoch=False)
        if reason:
            self._stop(trainer, reason)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking:
            self._val_probs.append(outputs["logits"].float().softmax(-1)[:, 1].cpu())
            self._val_labels.append(outputs["labels"].cpu())

    def on_validation_epoch_end(self, trainer, pl_module):
        probs, labels = self._val_probs, self._val_labels
        self._val_probs, self._val_labels = [], []
        if trainer.sanity_checking or not labels:
            return
        reason = self.observe_validation(torch.cat(labels), torch.cat(probs))
        if reason:
            self._stop(trainer, reason)

    def summary(self) -> dict:
        finite = [g for g in self.grad_norms if math.isfinite(g)]
        return {
            "diverged": self.diverged, "reason": self.reason,
            "grad_norm": {"steps": len(self.grad_norms), "median": statistics.median(finite) if finite else None,
                          "max": max(finite) if finite else None,
                          # per-step values are in TensorBoard (train/grad_norm), not in the record
                          "nonfinite_steps": len(self.grad_norms) - len(finite)},
            "loss_spikes": {"count": self.spike_count, "factor": self.spike_factor, "first": self.spikes},
        }
