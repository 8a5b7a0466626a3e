"""A callback the stability test adds through a Hydra override: at a chosen step it sets one weight to
NaN, as a numeric blow-up would, so the real training loop produces a NaN loss."""

from __future__ import annotations

import lightning as L
import torch


class InjectNaN(L.Callback):
    def __init__(self, at_step: int = 2):
        self.at_step = at_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.at_step:
            with torch.no_grad():
                list(pl_module.parameters())[-1].view(-1)[0] = float("nan")  # the output layer
