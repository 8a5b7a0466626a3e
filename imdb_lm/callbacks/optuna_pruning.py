"""Optuna pruning for a training job launched by the Optuna sweeper (hydra_plugins/imdb_lm_optuna).

The sweeper adds `++optuna_trial={study: ..., number: ..., storage: ..., pruner: {...}}` to each
job's overrides (`optuna_trial` is not part of the config key: it says where the result is reported,
not what is trained). `OptunaPruning` reports validation accuracy to that trial after every
validation and asks the pruner, which compares it with the other trials of the study at the same
validation; when the pruner says stop, the callback marks the trial (PRUNED_AT, read by the sweeper,
which then tells Optuna the trial was pruned) and raises `TrialPruned`, and training records the run
as `pruned`. Under DDP rank zero decides and every rank stops.
"""

from __future__ import annotations

from typing import Any

import lightning as L

from imdb_lm.errors import UserError
from imdb_lm.runs.optuna_study import PRUNED_AT, open_storage


class TrialPruned(Exception):
    """The pruner stopped this trial: a result of the search, not a failure."""


class OptunaPruning(L.Callback):
    def __init__(self, study: str, number: int, storage: str, pruner: dict[str, Any] | None = None,
                 monitor: str = "val/acc") -> None:
        super().__init__()
        self.study_name, self.number, self.storage = study, int(number), storage
        self.pruner, self.monitor = dict(pruner or {}), monitor
        self.trial = None
        self.validation = 0

    @classmethod
    def from_config(cls, node) -> OptunaPruning:
        from omegaconf import OmegaConf

        spec = OmegaConf.to_container(node, resolve=True) if not isinstance(node, dict) else dict(node)
        missing = [k for k in ("study", "number", "storage") if spec.get(k) is None]
        if missing:
            raise UserError(f"optuna_trial lacks {', '.join(missing)}; it is set by the Optuna sweeper "
                            f"(hydra/sweeper=optuna with a storage), not by hand")
        return cls(spec["study"], spec["number"], spec["storage"], spec.get("pruner"))

    def _open_trial(self):
        import optuna
        from hydra.utils import instantiate

        pruner = instantiate(self.pruner) if self.pruner else optuna.pruners.NopPruner()
        try:
            study = optuna.load_study(study_name=self.study_name, storage=open_storage(self.storage),
                                      pruner=pruner)
        except KeyError:
            raise UserError(f"optuna_trial: no study '{self.study_name}' in {self.storage}") from None
        frozen = next((t for t in study.get_trials(deepcopy=False) if t.number == self.number), None)
        if frozen is None or frozen.state != optuna.trial.TrialState.RUNNING:
            state = "missing" if frozen is None else frozen.state.name.lower()
            raise UserError(f"optuna_trial: trial {self.number} of study '{self.study_name}' is {state}, not "
                            f"running; drop the optuna_trial override to train without pruning")
        # A resumed job goes on after the validations its trial already holds.
        self.validation = frozen.last_step + 1 if frozen.last_step is not None else 0
        return optuna.trial.Trial(study, frozen._trial_id)

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage == "fit" and trainer.is_global_zero and self.trial is None:
            self.trial = self._open_trial()

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        reason = None
        if trainer.is_global_zero:
            value = trainer.callback_metrics.get(self.monitor)
            if value is not None:
                value = float(value)
                self.trial.report(value, self.validation)
                if self.trial.should_prune():
                    self.trial.set_user_attr(PRUNED_AT, self.validation)
                    reason = (f"pruned by {type(self.trial.study.pruner).__name__} at validation "
                              f"{self.validation} ({self.monitor} {value:.4f})")
            self.validation += 1
        reason = trainer.strategy.broadcast(reason, src=0)
        if reason is not None:
            raise TrialPruned(reason)
