"""MinTrainSteps: train at least `steps` optimizer steps, whatever the size of the train subset.

Lightning's own `trainer.min_steps` only delays an early stop: `max_epochs` still ends the fit, so a
run on 500 reviews at batch 64 stops after 8 steps (at chance). This callback raises `max_epochs`
before the optimizers are configured, to the fewest whole epochs that hold `steps` optimizer steps,
so the learning-rate schedule (warmup + decay over `estimated_stepping_batches`) spans them all. A
run that already takes enough steps is left as it is. Being a callback with arguments, it is part
of the run key (imdb_lm/runs/key.py) wherever it is set.

Raised epochs on a tiny subset are many short epochs (500 reviews at batch 64: 19 of 8 steps), and
validating after each costs more than training when the val split is large. With `validations` set,
a fit whose epochs were raised validates every k-th epoch, k the fewest that keeps at most that
many validations, and its epochs are rounded up to a multiple of k, so the last one is validated
(the best checkpoint is still chosen on validation). A fit not raised is left as it is.
"""

from __future__ import annotations

import math

import lightning as L


class MinTrainSteps(L.Callback):
    def __init__(self, steps: int, validations: int | None = None):
        super().__init__()
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"callbacks.min_steps.steps={steps!r} must be a positive integer")
        if validations is not None and (not isinstance(validations, int) or validations < 1):
            raise ValueError(f"callbacks.min_steps.validations={validations!r} must be a positive integer or null")
        self.steps, self.validations = steps, validations
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
            if self.validations is not None and loop.max_epochs > self.validations:
                every = math.ceil(loop.max_epochs / self.validations)
                loop.max_epochs = every * math.ceil(loop.max_epochs / every)
                trainer.check_val_every_n_epoch = every
        self.epochs = loop.max_epochs
