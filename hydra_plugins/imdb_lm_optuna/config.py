"""Structured config of the Optuna sweeper, registered as `hydra/sweeper=optuna`, with samplers
`hydra/sweeper/sampler=tpe|random|grid` and pruners `hydra/sweeper/pruner=none|median|
successive_halving|hyperband`. Field defaults are Optuna's own. This module must not import Optuna:
Hydra imports it at every start-up to register the configs (and runs it before it is in sys.modules,
so no `from __future__ import annotations`: dataclasses would look the module up).
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class TPESamplerConfig:
    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = None
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    # Workers sharing a study treat each other's running trials as bad, so they do not all try one point.
    constant_liar: bool = True


@dataclass
class RandomSamplerConfig:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = None


@dataclass
class GridSamplerConfig:
    # The grid (search_space) is made from hydra.sweeper.params when the sweep starts.
    _target_: str = "optuna.samplers.GridSampler"
    seed: int | None = None


@dataclass
class NopPrunerConfig:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConfig:
    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5
    n_warmup_steps: int = 0  # validations reported before a trial may be pruned
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class SuccessiveHalvingPrunerConfig:
    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = "auto"
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0
    bootstrap_count: int = 0


@dataclass
class HyperbandPrunerConfig:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "auto"
    reduction_factor: int = 3
    bootstrap_count: int = 0


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.imdb_lm_optuna.optuna_sweeper.OptunaSweeper"
    # The sweeper builds the sampler and the pruner itself (the grid needs the params first).
    _recursive_: bool = False
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}])
    sampler: Any = MISSING
    pruner: Any = MISSING
    direction: str = "minimize"  # or maximize: what the task function returns
    # null (in memory), a SQLAlchemy URL (sqlite:///optuna.db) or a journal file path (several workers).
    storage: str | None = None
    # Sweeps started with the same study_name and storage add trials to one study.
    study_name: str | None = None
    n_trials: int = 20  # per sweep process; a grid stops earlier when every point is taken
    n_jobs: int = 1  # trials launched at once (a parallel launcher runs them side by side)
    max_failure_rate: float = 0.0  # stop when a larger share of a batch failed
    params: dict[str, str] | None = None


_STORE = ConfigStore.instance()
_STORE.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="imdb_lm_optuna")
for _name, _node in (("tpe", TPESamplerConfig), ("random", RandomSamplerConfig), ("grid", GridSamplerConfig)):
    _STORE.store(group="hydra/sweeper/sampler", name=_name, node=_node, provider="imdb_lm_optuna")
for _name, _node in (("none", NopPrunerConfig), ("median", MedianPrunerConfig),
                     ("successive_halving", SuccessiveHalvingPrunerConfig), ("hyperband", HyperbandPrunerConfig)):
    _STORE.store(group="hydra/sweeper/pruner", name=_name, node=_node, provider="imdb_lm_optuna")
