"""A callback the fp16 clipping test adds through a Hydra override: which precision plugin the real run
trained under, how many optimizer steps its gradient scaler skipped for non-finite gradients, and how
far the weights moved, written as JSON to `out`."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L


class Fp16Probe(L.Callback):
    def __init__(self, out: str):
        self.out = Path(out)
        self.skipped, self._scale, self._start = 0, None, []

    @staticmethod
    def _scaler(trainer):
        return getattr(trainer.precision_plugin, "scaler", None)

    def on_train_start(self, trainer, pl_module):
        self._start = [p.detach().clone() for p in pl_module.parameters()]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        scaler = self._scaler(trainer)
        self._scale = scaler.get_scale() if scaler is not None else None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        scaler = self._scaler(trainer)
        # The scaler backs its scale off only after a step whose gradients were not finite (that step
        # is skipped); it grows it only after 2,000 finite steps in a row, far more than a test runs.
        if scaler is not None and scaler.get_scale() < self._scale:
            self.skipped += 1

    def on_train_end(self, trainer, pl_module):
        plugin, scaler = trainer.precision_plugin, self._scaler(trainer)
        moved = max(float((p.detach() - s).abs().max()) for p, s in zip(pl_module.parameters(), self._start,
                                                                         strict=True))
        self.out.write_text(json.dumps({
            "plugin": type(plugin).__name__, "precision": plugin.precision,
            "scaler": type(scaler).__name__ if scaler is not None else None,
            "steps": trainer.global_step, "skipped_steps": self.skipped, "max_weight_change": moved}))
