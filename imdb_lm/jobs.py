"""Multirun job bookkeeping: reusing finished jobs, recording failed ones.

Hydra gives every rerun of a multirun a new timestamped folder, so a job is identified by its
config key (imdb_lm/config_key.py: the resolved config without where it runs), which every run
writes into its metrics.json. With `skip_completed=true` a job whose key already has a finished
record (status completed or diverged: rerunning would reproduce it) under `results_dirs` is not
trained again: its record is copied into the new job folder and its val metric returned, so an
interrupted sweep can be finished and Optuna still gets a value.
"""

from __future__ import annotations

import shutil
import traceback
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from imdb_lm.config_key import config_key
from imdb_lm.results import METRICS_FILE, PREDICTIONS_FILE, read_metrics, write_metrics

FINISHED = ("completed", "diverged")


def find_finished(cfg: DictConfig) -> dict | None:
    """The newest finished record with this job's config key under `cfg.results_dirs`, if any."""
    key, own = config_key(cfg), Path(cfg.paths.run_dir).resolve()
    best = None
    for root in cfg.get("results_dirs") or []:
        for path in Path(root).resolve().rglob(METRICS_FILE):
            if path.parent.resolve() == own:
                continue
            try:
                record = read_metrics(path)
            except (OSError, ValueError):
                continue  # unreadable or another schema: not a result to reuse
            if record.get("status") in FINISHED and record.get("config_key") == key and (
                    best is None or record.get("finished_at", "") > best.get("finished_at", "")):
                best = record
    return best


def reuse(record: dict, cfg: DictConfig) -> float | None:
    """Copy a finished record into this job's folder (so this sweep's folder is complete)."""
    run_dir = Path(cfg.paths.run_dir)
    source = Path(record.pop("run_dir"))
    record.pop("schema_version", None)
    write_metrics(run_dir, {**record, "reused_from": str(source)})
    if (source / PREDICTIONS_FILE).is_file():
        shutil.copyfile(source / PREDICTIONS_FILE, run_dir / PREDICTIONS_FILE)
    print(f"skip_completed: reusing the finished result in {source}")
    return (record.get("metrics") or {}).get("best_val_acc")


def record_failure(cfg: DictConfig, error: BaseException, hparams: dict) -> None:
    """Write a `failed` record with the error, so the report counts the job and the sweep goes on."""
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # an unresolvable config is itself a possible cause of failure
        config = OmegaConf.to_container(cfg, resolve=False)
    try:
        key = config_key(cfg)
    except Exception:
        key = None  # not the same job as any other: the report keeps it as its own row
    model = config.get("model") or {}
    write_metrics(cfg.paths.run_dir, {
        "status": "failed",
        "error": f"{type(error).__name__}: {error}",
        "traceback": "".join(traceback.format_exception(error))[-4000:],
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": model.get("name"), "family": model.get("family")},
        "hparams": hparams, "seed": config.get("seed"),
        "splits": {}, "metrics": {}, "timing": {}, "env": {}, "history": [],
        "config": config,
        "config_key": key,
    })
