"""Multirun job bookkeeping: reusing finished jobs, recording failed ones, and reading back why.

Hydra gives every rerun of a multirun a new timestamped folder, so a job is identified by its
run key (imdb_lm/runs/key.py: what changes the result, plus the results version), which every run
writes into its metrics.json. Records of another results version are never reused, and the job
says so. With `skip_completed=true` a job whose key already has a finished
record (status completed or diverged: rerunning would reproduce it) under `results_dirs` is not
trained again: its record is copied into the new job folder and its val metric returned, so an
interrupted sweep can be finished and Optuna still gets a value.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from omegaconf import DictConfig

from imdb_lm.runs.key import RESULTS_VERSION, config_key
from imdb_lm.runs.records import (
    EVALUATIONS_DIR,
    EXPLAIN_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    new_record,
    read_metrics,
    write_metrics,
)

FINISHED = ("completed", "diverged")


def find_finished(cfg: DictConfig) -> dict | None:
    """The newest finished record with this job's config key under `cfg.results_dirs`, if any."""
    key, own = config_key(cfg), Path(cfg.paths.run_dir).resolve()
    best, stale = None, {}
    for root in cfg.get("results_dirs") or []:
        for path in Path(root).resolve().rglob(METRICS_FILE):
            if path.parent.resolve() == own:
                continue
            try:
                record = read_metrics(path)
            except (OSError, ValueError):
                continue  # unreadable or another schema: not a result to reuse
            if record.get("status") not in FINISHED:
                continue
            if record.get("results_version") != RESULTS_VERSION:
                # Made by code whose results differ: never this job's result, and never silently.
                stale[record.get("results_version")] = stale.get(record.get("results_version"), 0) + 1
            elif record.get("config_key") == key and (
                    best is None or record.get("finished_at", "") > best.get("finished_at", "")):
                best = record
    if best is None and stale:
        counts = ", ".join(f"{n} of version {v}" for v, n in sorted(stale.items(), key=str))
        print(f"skip_completed: not reusing finished records made under another results version ({counts}; "
              f"this code is version {RESULTS_VERSION}): this job is trained afresh")
    return best


def reuse(record: dict, cfg: DictConfig) -> float | None:
    """Copy a finished record into this job's folder (so this sweep's folder is complete)."""
    run_dir = Path(cfg.paths.run_dir)
    source = Path(record.pop("run_dir"))
    record.pop("schema_version", None)
    # The stage is this job's (a label, not part of the key): the same job may serve another stage.
    write_metrics(run_dir, {**record, "stage": cfg.get("stage"), "reused_from": str(source)})
    if (source / PREDICTIONS_FILE).is_file():
        shutil.copyfile(source / PREDICTIONS_FILE, run_dir / PREDICTIONS_FILE)
    # What was measured on this result afterwards (out-of-domain evaluations, explanations) belongs
    # to it too; a compact record carries its evaluations inside and needs no copy.
    if (source / EVALUATIONS_DIR).is_dir():
        shutil.copytree(source / EVALUATIONS_DIR, run_dir / EVALUATIONS_DIR, dirs_exist_ok=True)
    if (source / EXPLAIN_FILE).is_file():
        shutil.copyfile(source / EXPLAIN_FILE, run_dir / EXPLAIN_FILE)
    print(f"skip_completed: reusing the finished result in {source}")
    return (record.get("metrics") or {}).get("best_val_acc")


def record_failure(cfg: DictConfig, error: BaseException, hparams: dict) -> None:
    """Write a `failed` record with the error, so the report counts the job and the sweep goes on."""
    write_metrics(cfg.paths.run_dir, new_record(cfg, "failed", hparams, error=error))


def recorded_failure(run_dir: str | Path | None) -> str | None:
    """The error a job's `failed` record gives, for a sweeper to log and store with the job's trial
    (None without such a record: the job ran elsewhere, or was not an imdb_lm run)."""
    if not run_dir:
        return None
    try:
        record = read_metrics(run_dir)
    except (OSError, ValueError):
        return None
    return str(record.get("error")) if record.get("status") == "failed" and record.get("error") else None
