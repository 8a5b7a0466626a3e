"""Stop a training run cleanly on SIGINT (Ctrl+C) or SIGTERM (kill, `scancel`, job time limit).

A signal only sets a flag. At the next training-batch boundary (all processes agree on it) the run
saves `checkpoints/last.ckpt` (written to a temporary file, then renamed) and raises
`RunInterrupted`; the entry point writes metrics.json with status `interrupted` and exits with
128 + the signal number (130 for Ctrl+C, 143 for SIGTERM). `resume=auto` continues from there.
A second Ctrl+C stops at once, without a new checkpoint.

Drills and tests: IMDB_LM_SIGNAL_AT_STEP=N makes the run send itself SIGTERM after optimizer step N,
exercising the same path as a real `kill`.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning as L

SIGNALS = (signal.SIGINT, signal.SIGTERM)
SIGNAL_AT_STEP = "IMDB_LM_SIGNAL_AT_STEP"


class RunInterrupted(BaseException):
    """BaseException, like KeyboardInterrupt: no `except Exception` on the way may swallow it."""

    def __init__(self, signum: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class GracefulInterrupt(L.Callback):
    def __init__(self, checkpoint_path: str | Path):
        self.checkpoint_path = Path(checkpoint_path)
        self.signum: int | None = None
        self._previous: dict = {}
        self._trainer: L.Trainer | None = None

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # pressed twice: stop now
        self.signum = signum
        launcher = self._trainer.strategy.launcher if self._trainer is not None else None
        if signum == signal.SIGTERM and launcher is not None and hasattr(launcher, "kill"):
            launcher.kill(signum)  # child processes started by Lightning stop at the same batch

    def on_train_start(self, trainer, pl_module) -> None:
        # Installed after Lightning's own SIGTERM handler (which would stop without a checkpoint
        # of the position inside the epoch); Lightning puts back the original handlers at teardown.
        self._trainer, self.signum = trainer, None
        self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}

    def restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_fit_end(self, trainer, pl_module) -> None:
        self.restore_handlers()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.restore_handlers()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        at_step = os.environ.get(SIGNAL_AT_STEP)
        if at_step and trainer.global_step == int(at_step) and trainer.is_global_zero:
            os.kill(os.getpid(), signal.SIGTERM)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        stop = self.signum is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if not stop:
            return
        # Between batches every counter, the optimizer and the loader position agree.
        tmp = self.checkpoint_path.with_name(f".{self.checkpoint_path.name}.tmp")
        trainer.save_checkpoint(tmp, weights_only=False)  # the full state: optimizer, loops, RNG
        if trainer.is_global_zero:
            os.replace(tmp, self.checkpoint_path)
        raise RunInterrupted(self.signum or signal.SIGTERM)
