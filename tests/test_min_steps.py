"""MinTrainSteps on a real Trainer: the epochs it gives a small subset, and how often it validates."""

from __future__ import annotations

import lightning as L
import pytest
from lightning.pytorch.demos.boring_classes import BoringModel

from imdb_lm.callbacks.min_steps import MinTrainSteps


class CountValidations(L.Callback):
    def __init__(self):
        self.epochs: list[int] = []

    def on_validation_epoch_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.epochs.append(trainer.current_epoch)


def fit(callback: MinTrainSteps, batches_per_epoch: int = 1, max_epochs: int = 1):
    counter = CountValidations()
    trainer = L.Trainer(max_epochs=max_epochs, limit_train_batches=batches_per_epoch, limit_val_batches=1,
                        callbacks=[callback, counter], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(BoringModel())
    return trainer, counter.epochs


def test_raised_epochs_validate_every_epoch_by_default():
    trainer, validated = fit(MinTrainSteps(steps=19))
    assert trainer.global_step == 19 and validated == list(range(19))


def test_validations_cap_how_often_raised_epochs_validate_and_the_last_epoch_is_validated():
    callback = MinTrainSteps(steps=19, validations=5)
    trainer, validated = fit(callback)
    assert callback.epochs == 20 and trainer.global_step == 20  # 19 rounded up to a multiple of 4
    assert validated == [3, 7, 11, 15, 19]


def test_a_fit_that_takes_enough_steps_is_left_as_it_is():
    trainer, validated = fit(MinTrainSteps(steps=4, validations=1), batches_per_epoch=2, max_epochs=3)
    assert trainer.global_step == 6 and validated == [0, 1, 2]


@pytest.mark.parametrize("validations", [0, -1, 2.5])
def test_a_bad_validation_count_is_refused(validations):
    with pytest.raises(ValueError, match="callbacks.min_steps.validations"):
        MinTrainSteps(steps=10, validations=validations)
