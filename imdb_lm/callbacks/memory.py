"""ReleaseFreedMemory: hand free heap pages back at epoch ends (see imdb_lm/memory.py for why)."""

from __future__ import annotations

import lightning as L

from imdb_lm.memory import release_freed_memory


class ReleaseFreedMemory(L.Callback):
    """Calls release_freed_memory() after every training and validation epoch."""

    def on_train_epoch_end(self, trainer, pl_module):
        release_freed_memory()

    def on_validation_epoch_end(self, trainer, pl_module):
        release_freed_memory()
