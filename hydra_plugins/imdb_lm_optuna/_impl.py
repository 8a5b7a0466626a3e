"""The Optuna sweep loop: ask a batch of trials, launch one job per trial, tell each job's outcome.

A job's outcome: its trial carries PRUNED_AT (its pruning callback stopped it) -> pruned; it returned
a finite number -> complete; anything else (None: the job recorded a failure, or it raised) -> failed,
with the reason (the error of the job's `failed` record, else what it raised or returned) logged and
stored as the trial's user attribute `error`.
The best parameters, the study and its storage go to `<sweep dir>/optimization_results.yaml`, with
the reason of each failed trial.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import yaml
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.errors import CompactHydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial, Trial, TrialState

from hydra_plugins.imdb_lm_optuna import _search_space
from hydra_plugins.imdb_lm_optuna._grid import SKIPPED, SharedGrid
from imdb_lm.atomic import write_text
from imdb_lm.errors import UserError
from imdb_lm.runs.jobs import recorded_failure
from imdb_lm.runs.optuna_study import PRUNED_AT, open_storage, resolve

log = logging.getLogger(__name__)

RESULTS_FILE = "optimization_results.yaml"
GRID_SAMPLER = "optuna.samplers.GridSampler"
NOP_PRUNER = "optuna.pruners.NopPruner"
# GridSampler calls Study.stop after the last of its own points; outside Study.optimize that raises,
# after the tell has been stored (https://github.com/optuna/optuna/issues/4121). The sweeper enqueues
# its grid points, which GridSampler does not count, but a study may hold GridSampler's own trials.
GRID_STOP = "`Study.stop` is supposed to be invoked"
TRIAL_KEY = "optuna_trial"  # the jobs' override (not part of imdb_lm's config key)
ERROR = "error"  # a failed trial's user attribute: why it failed


class SweeperError(CompactHydraException, UserError):
    """A sweeper setting that cannot work; Hydra prints it in one line."""


def hydra_literal(value: Any) -> str:
    """`value` written as a Hydra override value (nested dicts, quoted strings)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{hydra_literal(item)}" for key, item in value.items()) + "}"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)


class OptunaSweeperImpl(Sweeper):
    def __init__(self, sampler: DictConfig, pruner: DictConfig, direction: str, storage: str | None,
                 study_name: str | None, n_trials: int, n_jobs: int, max_failure_rate: float,
                 params: DictConfig | None) -> None:
        if direction not in ("minimize", "maximize"):
            raise SweeperError(f"hydra.sweeper.direction={direction}: choose minimize or maximize")
        if not 0.0 <= max_failure_rate <= 1.0:
            raise SweeperError(f"hydra.sweeper.max_failure_rate={max_failure_rate} must be within 0..1")
        for name, value in (("n_trials", n_trials), ("n_jobs", n_jobs)):
            if value < 1:
                raise SweeperError(f"hydra.sweeper.{name}={value} must be at least 1")
        self.sampler_cfg, self.pruner_cfg = sampler, pruner
        self.direction, self.storage, self.study_name = direction, storage, study_name
        self.n_trials, self.n_jobs, self.max_failure_rate = n_trials, n_jobs, max_failure_rate
        self.params = dict(params or {})
        self.job_idx = 0

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function)

    # ---- the study --------------------------------------------------------------------------------
    def _study(self, space: dict) -> tuple[optuna.Study, SharedGrid | None, str | None, dict]:
        grid = None
        sampler_args = {}
        if self.sampler_cfg.get("_target_") == GRID_SAMPLER:
            points = _search_space.grid(space)
            grid, sampler_args = SharedGrid(points, self.sampler_cfg.get("seed")), {"search_space": points}
        sampler = instantiate(self.sampler_cfg, **sampler_args)
        pruner_spec = OmegaConf.to_container(self.pruner_cfg, resolve=True)
        storage = resolve(self.storage)
        if storage is None and pruner_spec.get("_target_") != NOP_PRUNER:
            raise SweeperError("hydra.sweeper.pruner needs a storage the jobs can report to: set "
                               "hydra.sweeper.storage=sqlite:///optuna.db or a journal file path")
        study = optuna.create_study(study_name=self.study_name, storage=open_storage(storage), sampler=sampler,
                                    pruner=instantiate(pruner_spec), direction=self.direction,
                                    load_if_exists=True)
        log.info(f"Optuna study '{study.study_name}' in {storage or 'memory'}: {type(sampler).__name__}, "
                 f"{pruner_spec['_target_'].rsplit('.', 1)[-1]}, {self.direction}")
        return study, grid, storage, pruner_spec

    def _ask(self, study: optuna.Study, space: dict, grid: SharedGrid | None, count: int) -> list[Trial]:
        trials: list[Trial] = []
        skipped = 0
        while len(trials) < count:
            if grid is not None and not grid.waiting(study.get_trials(deepcopy=False)):
                point = grid.next_free(study.get_trials(deepcopy=False))
                if point is None:
                    break
                study.enqueue_trial(grid.params(point))  # the next ask (of any worker) takes it
            trial = study.ask(space)  # every parameter is suggested here
            if grid is None:
                trials.append(trial)
                continue
            seen = study.get_trials(deepcopy=False)
            holder = grid.holder(seen, trial.number, trial.params)
            if grid.enqueued(seen, trial.number) and holder is None:
                trials.append(trial)
                continue
            # Another worker asked for the same point first, or took the waiting trial and this ask
            # created a fresh one on a point of the sampler's choosing: this trial never runs.
            trial.set_user_attr(SKIPPED, holder)
            self._tell_one(study, trial, None, TrialState.FAIL)
            log.info(f"trial {trial.number}: " + (f"its grid point is taken by trial {holder}" if holder is not None
                                                  else "no queued grid point was left to it") + "; skipped")
            skipped += 1
            if skipped > 4 * len(grid):  # a guard against a storage that never hands out a queued trial
                break
        return trials

    def _job(self, study: optuna.Study, trial: Trial, space: dict, fixed: list[str], storage: str | None,
             pruner_spec: dict) -> list[str]:
        job = [*fixed, *(_search_space.override(name, trial.params[name]) for name in space)]
        if storage is not None:  # the job reports to its trial (imdb_lm/callbacks/optuna_pruning.py)
            ref = {"study": study.study_name, "number": trial.number, "storage": storage, "pruner": pruner_spec}
            job.append(f"++{TRIAL_KEY}={hydra_literal(ref)}")
        return job

    @staticmethod
    def _outcome(frozen: FrozenTrial | None, ret: JobReturn) -> tuple[TrialState, float | None, str | None]:
        """(state, value, why it failed)."""
        if frozen is not None and PRUNED_AT in frozen.user_attrs:
            return TrialState.PRUNED, None, None
        try:
            value = ret.return_value  # raises the job's exception when the job raised
        except Exception as err:  # noqa: BLE001 - any job failure is a failed trial
            return TrialState.FAIL, None, f"{type(err).__name__}: {err}"
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):  # None: the job recorded its failure (imdb_lm.train), and why
            # the job's folder (its run folder), as Hydra set it for the job
            recorded = recorded_failure(ret.hydra_cfg.hydra.runtime.output_dir) if ret.hydra_cfg is not None else None
            return TrialState.FAIL, None, recorded or f"the job returned {value!r}, not a finite number"
        return TrialState.COMPLETE, number, None

    @staticmethod
    def _tell_one(study: optuna.Study, trial: Trial, value: float | None, state: TrialState) -> None:
        try:
            study.tell(trial, value, state=state, skip_if_finished=True)
        except RuntimeError as err:
            if GRID_STOP not in str(err):
                raise

    def _tell(self, study: optuna.Study, trials: list[Trial], returns: list[JobReturn]) -> int:
        latest = {t.number: t for t in study.get_trials(deepcopy=False)}
        failures = 0
        for trial, ret in zip(trials, returns, strict=True):
            state, value, error = self._outcome(latest.get(trial.number), ret)
            failures += state == TrialState.FAIL
            if error is not None:
                trial.set_user_attr(ERROR, error)
                log.warning(f"trial {trial.number}: failed: {error}")
            self._tell_one(study, trial, value, state)
            if error is None:
                log.info(f"trial {trial.number}: {state.name.lower()}"
                         + (f", value {value:.6g}" if value is not None else ""))
        return failures

    # ---- the sweep --------------------------------------------------------------------------------
    def sweep(self, arguments: list[str]) -> list[list[JobReturn]]:
        try:
            space, fixed = _search_space.parse([*(f"{k}={v}" for k, v in self.params.items()), *arguments])
            study, grid, storage, pruner_spec = self._study(space)
        except UserError as err:
            raise SweeperError(str(err)) from None
        n_trials = min(self.n_trials, len(grid)) if grid else self.n_trials
        returns: list[list[JobReturn]] = []
        launched = 0
        while launched < n_trials:
            trials = self._ask(study, space, grid, min(self.n_jobs, n_trials - launched))
            if not trials:
                log.info("every grid point has a finished or running trial: the grid is done")
                break
            batch = [self._job(study, t, space, fixed, storage, pruner_spec) for t in trials]
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=self.job_idx)
            self.job_idx += len(results)
            returns.append(list(results))
            failures = self._tell(study, trials, list(results))
            launched += len(trials)
            if failures / len(trials) > self.max_failure_rate:
                self.write_results(study, storage)
                raise SweeperError(f"{failures} of {len(trials)} jobs failed, more than hydra.sweeper."
                                   f"max_failure_rate={self.max_failure_rate}; see the jobs' metrics.json")
        self.write_results(study, storage)
        return returns

    def write_results(self, study: optuna.Study, storage: str | None) -> Path:
        trials = study.get_trials(deepcopy=False)
        try:
            best = study.best_trial
        except ValueError:  # no completed trial yet
            best = None
        results = {
            "name": "optuna",
            "best_params": dict(best.params) if best else None,
            "best_value": best.value if best else None,
            "best_trial": best.number if best else None,
            "study_name": study.study_name,
            "storage": storage,
            "dashboard": f"optuna-dashboard {storage}" if storage else None,
            # a grid trial that gave way never ran: counted as skipped, not as a failure
            "trials": dict(Counter("skipped" if SKIPPED in t.user_attrs else t.state.name.lower() for t in trials)),
        }
        failed = {t.number: t.user_attrs[ERROR] for t in trials if t.state == TrialState.FAIL and ERROR in t.user_attrs}
        if failed:  # why each failed trial failed, as its job recorded it
            results["failed"] = failed
        if best:
            log.info(f"Best parameters: {best.params}; best value: {best.value}")
        path = Path(self.config.hydra.sweep.dir) / RESULTS_FILE
        write_text(path, yaml.safe_dump(results, sort_keys=False))
        return path
