"""Experiment trackers (conf/logger/*.yaml): what each needs installed, and the run's final record.

TensorBoard and CSV ship with the package; MLflow and Weights & Biases are optional extras, checked
by `check_available` before anything is written, so a missing one costs one line, not a run.

Every tracker gets the same end-of-run record: the flat hyperparameters of `train.flat_hparams`
and the final metrics (`hp/val_acc`, `hp/test_acc`, ...). TensorBoard takes both in one call (its
HPARAMS tab); the others log the parameters, then the metrics at the last step.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path

from omegaconf import DictConfig

from imdb_lm.errors import UserError

# logger target -> (module it imports, extra of this package that installs it)
NEEDS = {
    "imdb_lm.loggers.mlflow_logger": ("mlflow", "mlflow"),
    "lightning.pytorch.loggers.MLFlowLogger": ("mlflow", "mlflow"),
    "lightning.pytorch.loggers.WandbLogger": ("wandb", "wandb"),
}


def check_available(cfg: DictConfig) -> None:
    """One line naming the extra when a configured logger's library is not installed."""
    for name, entry in (cfg.get("logger") or {}).items():
        if entry is None or not entry.get("_target_"):
            continue
        module, extra = NEEDS.get(entry["_target_"], (None, None))
        if module is not None and importlib.util.find_spec(module) is None:
            raise UserError(f"logger {name} needs the {module} package, which is not installed: "
                            f"pip install 'imdb_lm[{extra}]' (or choose another logger, e.g. logger=csv)")


def check_sweep(parsed_overrides, compose) -> None:
    """A sweep's loggers, checked once before Hydra makes its folder (each job checks again).

    Composed from the fixed overrides plus each value of a swept `logger=`; other swept keys are
    left to the jobs, and a config that does not compose here is too."""
    fixed = [o.input_line for o in parsed_overrides
             if not o.is_sweep_override() and not o.key_or_group.startswith("hydra")]
    swept = [o for o in parsed_overrides if o.key_or_group == "logger" and o.is_sweep_override()]
    choices = [[f"logger={v}"] for v in swept[0].sweep_string_iterator()] if swept else [[]]
    for extra in choices:
        try:
            cfg = compose(fixed + extra)
        except Exception:  # noqa: BLE001 - reported by the job that has this config
            continue
        check_available(cfg)


def mlflow_logger(tracking_uri: str, experiment_name: str, run_dir: str, artifact_location: str | None = None,
                  **kwargs):
    """Lightning's MLFlowLogger on a local SQLite store that several jobs of a sweep share.

    SQLite serialises the jobs' writes itself (each write waits for the database lock), but two
    jobs starting together would both create the store's tables, or the experiment, and one would
    fail: both are created here under a file lock next to the database."""
    from filelock import FileLock
    from lightning.pytorch.loggers import MLFlowLogger
    from mlflow.tracking import MlflowClient

    database = sqlite_path(tracking_uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(database) + ".lock"):
            _ensure_experiment(MlflowClient(tracking_uri), experiment_name, artifact_location)
    else:  # a tracking server creates the tables itself; only the experiment may race
        _ensure_experiment(MlflowClient(tracking_uri), experiment_name, artifact_location)
    run = Path(run_dir)
    kwargs.setdefault("run_name", f"{run.parent.name}/{run.name}")  # sweep stamp (or `runs`) / job
    tags = {"run_dir": str(run.resolve()), **(kwargs.pop("tags", None) or {})}
    return MLFlowLogger(tracking_uri=tracking_uri, experiment_name=experiment_name, tags=tags,
                        artifact_location=artifact_location, **kwargs)


def _ensure_experiment(client, name: str, artifact_location: str | None) -> None:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None and experiment.lifecycle_stage == "deleted":
        raise UserError(f"logger.mlflow.experiment_name={name} is a deleted experiment of {client.tracking_uri}; "
                        f"restore it (mlflow experiments restore) or choose another name")
    if experiment is None:
        try:
            client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException:  # another job created it first
            if client.get_experiment_by_name(name) is None:
                raise


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (query string dropped), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


def log_final(loggers: Iterable, hparams: dict, metrics: dict, step: int) -> None:
    """The run's hyperparameters and final metrics, to every tracker; then close each."""
    from lightning.pytorch.loggers import TensorBoardLogger

    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):  # HPARAMS tab: parameters and metrics together
            logger.log_hyperparams(hparams, metrics)
        else:
            logger.log_hyperparams(hparams)
            logger.log_metrics(metrics, step=step)
        logger.finalize("success")


def where_to_look(loggers: Iterable) -> list[str]:
    """One line per tracker: the command that shows this run."""
    from lightning.pytorch.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger

    lines = []
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            lines.append(f"tensorboard: tensorboard --logdir {logger.log_dir}")
        elif isinstance(logger, CSVLogger):
            lines.append(f"csv: {Path(logger.log_dir) / 'metrics.csv'}")
        elif isinstance(logger, MLFlowLogger):
            lines.append(f"mlflow: mlflow ui --backend-store-uri {logger.experiment.tracking_uri}  "
                         f"(run {logger.run_id})")
        elif isinstance(logger, WandbLogger):
            run = logger.experiment
            lines.append(f"wandb: wandb sync {Path(run.dir).parent}" if run.offline else f"wandb: {run.url}")
    return lines
