"""A fit must validate: refuse, before its first training step, one whose budget ends first.

Validation chooses the checkpoint that is tested and gives the value a sweep selects on. A fit that
never validates (trainer.max_steps below one epoch with the usual once-per-epoch validation, a
check_val_every_n_epoch beyond max_epochs, a val_check_interval beyond the budget, validation turned
off) would test whatever weights it ended with and record no selection metric. How many batches an
epoch holds is known only once the data are prepared (their size, the batch size, the train limits,
the devices that share the batches), and MinTrainSteps raises the epochs of small subsets during
setup, so `FirstValidationCheck` reads Lightning's own numbers when training starts, after every
callback's setup (reading them earlier would draw the train loader's seed from the global random
stream ahead of its time, and shift every later random draw of the run).

`never_validated` words the same failure for a fit that ended without a validation for a reason
known only afterwards (trainer.max_time, no training batches): training.py then records it `failed`.
"""

from __future__ import annotations

import math

import lightning as L

from imdb_lm.errors import UserError


def step_of_batch(batch: int, batches: int, accumulate: int) -> int:
    """Optimizer steps taken once `batch` training batches (counted over the whole fit) are done: one
    every `accumulate` batches, and one at the last batch of each epoch."""
    epochs, within = divmod(batch, batches)
    return epochs * math.ceil(batches / accumulate) + within // accumulate


def batch_of_step(step: int, batches: int, accumulate: int) -> int:
    """The training batch (counted from 1 over the whole fit) whose optimizer step is step `step`."""
    epochs, within = divmod(step - 1, math.ceil(batches / accumulate))
    return epochs * batches + min((within + 1) * accumulate, batches)


def first_validation_batch(batches: int, every: int, every_n_epochs: int | None) -> int:
    """The training batch after which Lightning validates first: `every` batches into the first
    validated epoch, or into the fit when validation is counted across epochs (every_n_epochs None)."""
    return every if every_n_epochs is None else (every_n_epochs - 1) * batches + every


def _schedule(every: int, every_n_epochs: int | None, batches: int, interval) -> str:
    settings = f"trainer.val_check_interval={interval}, trainer.check_val_every_n_epoch={every_n_epochs}"
    if every_n_epochs is None:
        return f"every {every} training batches, counted across epochs ({settings})"
    epochs = "each epoch" if every_n_epochs == 1 else f"one epoch in {every_n_epochs}"
    where = f"at the end of {epochs}" if every == batches else f"after every {every} training batches of {epochs}"
    return f"{where} ({settings})"


def budget_error(*, batches: int, accumulate: int, every: int, every_n_epochs: int | None,
                 max_epochs: int | None, max_steps: int, interval) -> str | None:
    """Why a fit with these numbers (Lightning's, as training starts) ends before its first
    validation, in one line with the fix; None when it validates within its budget."""
    per_epoch = math.ceil(batches / accumulate)
    first = first_validation_batch(batches, every, every_n_epochs)
    by_epochs = max_epochs * batches if max_epochs is not None and max_epochs >= 0 else math.inf
    by_steps = batch_of_step(max_steps, batches, accumulate) if max_steps > 0 else 0 if max_steps == 0 else math.inf
    end = min(by_epochs, by_steps)
    if first <= end:
        return None
    needed = step_of_batch(first - 1, batches, accumulate) + 1  # the optimizer step the validation comes in
    epoch = f"one epoch is {per_epoch} optimizer steps ({batches} training batches" + (
        f", {accumulate} per step)" if accumulate > 1 else ")")
    if by_steps <= by_epochs:
        limit, longer = f"trainer.max_steps={max_steps}", f"trainer.max_steps>={needed}"
    else:
        limit, longer = f"trainer.max_epochs={max_epochs}", f"trainer.max_epochs>={math.ceil(first / batches)}"
    return (f"{limit} ends the fit at optimizer step {step_of_batch(end, batches, accumulate)}, before its first "
            f"validation (in step {needed}): {epoch}, and validation comes "
            f"{_schedule(every, every_n_epochs, batches, interval)}; set {longer}"
            + (f", or validate within the budget: trainer.val_check_interval={end} trainer.check_val_every_n_epoch=null"
               if end > 0 else ""))


def never_validated(trainer: L.Trainer, max_time) -> str:
    """The line a run that ended without any validation is recorded `failed` with."""
    batches = trainer.num_training_batches
    return (f"the fit ended at optimizer step {trainer.global_step} without a validation ("
            + (f"{batches} training batches an epoch, " if math.isfinite(batches) else "")
            + f"trainer.limit_train_batches={trainer.limit_train_batches}, trainer.max_steps={trainer.max_steps}, "
            f"trainer.max_time={max_time}), so no checkpoint was chosen on validation and none was tested; "
            "validate within the budget (trainer.val_check_interval) or train longer")


class FirstValidationCheck(L.Callback):
    """Raises the one-line UserError of `budget_error` before the first training step."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.enable_validation:
            raise UserError(f"the fit never validates (trainer.limit_val_batches={trainer.limit_val_batches}), so no "
                            "checkpoint would be chosen on validation and tested; set trainer.limit_val_batches>0")
        batches, every = trainer.num_training_batches, trainer.val_check_batch
        # A time-based val_check_interval, or a loader without a length: only the end of the fit can tell.
        if every is None or not math.isfinite(batches) or not math.isfinite(every) or batches <= 0:
            return
        error = budget_error(batches=int(batches), accumulate=trainer.accumulate_grad_batches, every=int(every),
                             every_n_epochs=trainer.check_val_every_n_epoch, max_epochs=trainer.max_epochs,
                             max_steps=trainer.max_steps, interval=trainer.val_check_interval)
        if error:
            raise UserError(error)
