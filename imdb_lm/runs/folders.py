"""Run folders: names that never collide, a lock while a run uses one, and no empty leftovers.

Hydra names run folders from the start time; two jobs started in the same microsecond (a job
array, two shells) would share one. `${run_suffix:}` adds the process id and a random tag, so
names differ across processes and machines. The resolver caches its value, and Hydra copies that
cache into every job of a sweep, so one command keeps one sweep folder (registered with the other
resolvers in imdb_lm/config/resolvers.py).
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from filelock import FileLock, Timeout

from imdb_lm.errors import UserError

# Every file a run folder holds, named once here.
METRICS_FILE = "metrics.json"          # the run's record: the contract between training and reporting
PREDICTIONS_FILE = "predictions.csv"   # test predictions keyed by review hash
CONFIG_FILE = "config.yaml"            # the resolved training config
KEY_FILE = "config_key.txt"            # the run key (imdb_lm/runs/key.py), written before training
TOKENIZER_FILE = "tokenizer.json"      # the word vocabulary of a recurrent run
CHECKPOINTS_DIR = "checkpoints"
BEST_CHECKPOINT = f"{CHECKPOINTS_DIR}/best.ckpt"   # selected on validation, tested once
LAST_CHECKPOINT = f"{CHECKPOINTS_DIR}/last.ckpt"   # where resume continues from
RESUMED_IN_FILE = "resumed_in.txt"     # in a new folder whose run continued in an older one
ANALYSIS_FILE = "analysis.json"        # error analysis of the test predictions (+ reliability.png)
EXPLAIN_FILE = "explain.json"          # faithfulness of the run's explanations (+ explain.html)
EXPLAIN_PAGE = "explain.html"
EVALUATIONS_DIR = "evaluations"        # `imdb_lm.evaluate` results, one JSON per split or source
# beside each `<name>.json` there: its per-review predictions, as predictions.csv holds the test split's
EVALUATION_PREDICTIONS_SUFFIX = ".predictions.csv"
LOCK_FILE = ".run.lock"
# Written by the run itself before training starts; a folder without them holds no result.
STARTED_MARKERS = (CHECKPOINTS_DIR, METRICS_FILE)


def run_suffix() -> str:
    return f"{os.getpid()}-{secrets.token_hex(2)}"


def run_lock(run_dir: Path) -> FileLock:
    """Held for the whole run, so `resume=auto` never picks a run that is still going."""
    run_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(run_dir / LOCK_FILE), timeout=0)


def is_locked(run_dir: Path) -> bool:
    try:
        with FileLock(str(run_dir / LOCK_FILE), timeout=0):
            return False
    except Timeout:
        return True


def acquire(lock: FileLock, run_dir: Path) -> None:
    try:
        lock.acquire()
    except Timeout:
        raise UserError(f"{run_dir} is in use by another process (a run is still going there); "
                        "wait for it to finish or stop it, then resume") from None


def discard_unstarted_run(run_dir: str | Path) -> None:
    """Remove a run folder that an early error left without any result (only logs and configs)."""
    run_dir = Path(run_dir)
    if run_dir.is_dir() and not any((run_dir / m).exists() for m in STARTED_MARKERS):
        shutil.rmtree(run_dir, ignore_errors=True)
