"""MinTrainSteps: train at least `steps` optimizer steps, whatever the size of the train subset.

Lightning's own `trainer.min_steps` only delays an early stop: `max_epochs` still ends the fit, so a
run on 500 reviews at batch 64 stops after 8 steps (at chance). This callback raises `max_epochs`
before the optimizers are configured, to the fewest whole epochs that hold `steps` optimizer steps,
so the learning-rate schedule (warmup + decay over `estimated_stepping_batches`) spans them all. A
run that already takes enough steps is left as it is. Being a callback with arguments, it is part
of the run key (imdb_lm/runs/key.py) wherever it is set.
"""

from __future__ import annotations

import math

import lightning as L


class MinTrainSteps(L.Callback):
    def __init__(self, steps: int):
        super().__init__()
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"callbacks.min_steps.steps={steps!r} must be a positive integer")
        self.steps = steps
        self.epochs: int | None = None  # the epochs the fit was given (recorded for the report)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if trainer.train_dataloader is None:  # load it now, so its batch count is known
            trainer.fit_loop.setup_data()
        per_epoch = math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches)
        loop = trainer.fit_loop
        if per_epoch > 0 and loop.max_epochs is not None and 0 < loop.max_epochs * per_epoch < self.steps:
            loop.max_epochs = math.ceil(self.steps / per_epoch)
        self.epochs = loop.max_epochs
