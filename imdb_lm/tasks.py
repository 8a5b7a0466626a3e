"""What a run trains and measures (`task=`, conf/task/): the classifier here, the language model in
imdb_lm/lm/task.py.

imdb_lm/training.py runs every task the same way (validate, resume, lock, fit, test the best
checkpoint, write the record); a task supplies the parts that differ: its data module, its model,
its metrics callback, the `metrics` section of metrics.json, the files written after the test and
the closing lines. A new task is one class with these methods, one line in TASKS and one
conf/task/<name>.yaml (docs/architecture.md, "A new task").
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from omegaconf import DictConfig

from imdb_lm.errors import UserError

TASKS = {
    "classifier": "imdb_lm.tasks:ClassifierTask",
    "lm": "imdb_lm.lm.task:LanguageModelTask",
}


def task_for(cfg: DictConfig):
    """The task object of a training config (`task`, default classifier)."""
    name = str(cfg.get("task") or "classifier")
    if name not in TASKS:
        raise UserError(f"task={name} is unknown; choose one of {', '.join(TASKS)}")
    module, cls = TASKS[name].split(":")
    return getattr(import_module(module), cls)()


class ClassifierTask:
    """Positive or negative per review: accuracy, F1, AUROC, predictions.csv, error analysis."""

    name = "classifier"

    @property
    def metrics_callback(self) -> type:
        from imdb_lm.callbacks.metrics import MetricsTimingCallback

        return MetricsTimingCallback

    def datamodule(self, cfg: DictConfig):
        from hydra.utils import instantiate

        return instantiate(cfg.data)

    def model(self, cfg: DictConfig, datamodule):
        from imdb_lm.models.build import build_model

        return build_model(cfg, datamodule)

    def hparams(self, cfg: DictConfig) -> dict:
        return {}

    def metrics(self, timing, test: dict) -> dict:
        return {"val": dict(timing.best_val), "best_val_acc": timing.best_val.get("acc"),
                "best_epoch": timing.best_val.get("epoch"), "test": test}

    def score(self, timing) -> float | None:
        """What `run` returns (a sweeper's objective): the best validation accuracy."""
        return timing.best_val.get("acc")

    def write_outputs(self, run_dir: Path, datamodule, timing) -> None:
        """predictions.csv (keyed by review hash, for paired comparisons) and the error analysis."""
        from imdb_lm.evaluation.error_analysis import write_analysis
        from imdb_lm.runs.records import write_predictions

        hashes = datamodule.hashes("test")
        labels = datamodule.datasets["test"].labels
        order = sorted(timing.test_predictions)
        write_predictions(run_dir, [hashes[i] for i in order], [labels[i] for i in order],
                          [timing.test_predictions[i] for i in order])
        write_analysis(run_dir, [datamodule.texts("test")[i] for i in order], [labels[i] for i in order],
                       [timing.test_predictions[i] for i in order], [hashes[i] for i in order])

    def final_metrics(self, record: dict) -> dict:
        """The run's closing numbers sent to every tracker (TensorBoard's HPARAMS tab)."""
        test = record["metrics"]["test"]
        return {"hp/val_acc": record["metrics"]["best_val_acc"] or 0.0, "hp/test_acc": test.get("acc", 0.0),
                "hp/fit_seconds": record["timing"]["fit_seconds"] or 0.0,
                "hp/latency_ms_p50": record["timing"]["latency_ms_p50"]}

    def summary(self, record: dict) -> str:
        test = record["metrics"]["test"]
        return (f"test accuracy: {test.get('acc', float('nan')):.4f}  best val accuracy: "
                f"{record['metrics']['best_val_acc'] or float('nan'):.4f}  "
                f"fit: {record['timing']['fit_seconds']:.0f}s")
