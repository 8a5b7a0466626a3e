"""ReleaseFreedMemory: bound the freed memory a run keeps for reuse (see imdb_lm/memory.py for why)."""

from __future__ import annotations

import lightning as L

from imdb_lm.memory import GrowthBound


class ReleaseFreedMemory(L.Callback):
    """Hands free heap pages back after any batch that finds resident memory grown by more than
    `max_growth_mb` since the last release (null: only at epoch ends), and at the end of every
    training and validation epoch."""

    def __init__(self, max_growth_mb: float | None = None) -> None:
        if max_growth_mb is not None and max_growth_mb < 0:
            raise ValueError(f"callbacks.release_freed_memory.max_growth_mb={max_growth_mb}: use a size in MB >= 0, "
                             "or null to release only at epoch ends")
        self.bound = GrowthBound(int((max_growth_mb or 0) * 2**20))
        self.every_batch = max_growth_mb is not None
        self.releases = 0  # how often the bound was crossed (inspected by tests)

    def _check(self) -> None:
        if self.every_batch and self.bound.check():
            self.releases += 1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._check()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._check()

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._check()

    def on_train_epoch_end(self, trainer, pl_module):
        self.bound.release()

    def on_validation_epoch_end(self, trainer, pl_module):
        self.bound.release()
