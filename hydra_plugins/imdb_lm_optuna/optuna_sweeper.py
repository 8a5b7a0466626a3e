"""The Hydra entry point of the Optuna sweeper; the work is in `_impl` (imported on the first sweep, so
that Hydra's plugin scan at start-up does not import Optuna)."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class OptunaSweeper(Sweeper):
    def __init__(self, sampler: DictConfig, pruner: DictConfig, direction: str, storage: str | None,
                 study_name: str | None, n_trials: int, n_jobs: int, max_failure_rate: float,
                 params: DictConfig | None) -> None:
        from hydra_plugins.imdb_lm_optuna._impl import OptunaSweeperImpl

        self.sweeper = OptunaSweeperImpl(sampler=sampler, pruner=pruner, direction=direction, storage=storage,
                                         study_name=study_name, n_trials=n_trials, n_jobs=n_jobs,
                                         max_failure_rate=max_failure_rate, params=params)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.sweeper.sweep(arguments)
