"""The per-run results contract: `metrics.json` and `predictions.csv`, built, written and read here only.

Training (and a sweep job that failed before training) builds its record with `new_record`;
evaluation, explanation, resuming and reporting read records through this module.
Writes are atomic (temporary file + rename) so a killed process never leaves a half-written file.
"""

from __future__ import annotations

import csv
import json
import traceback as tb
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from imdb_lm.atomic import write_text as write_text_atomic
from imdb_lm.runs.folders import (  # noqa: F401 - the artifact names are used through this module
    ANALYSIS_FILE,
    EVALUATION_PREDICTIONS_SUFFIX,
    EVALUATIONS_DIR,
    EXPLAIN_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
)
from imdb_lm.runs.key import RESULTS_VERSION, config_key

# Version 2 added the status `pruned` (an Optuna trial stopped by its pruner); a version 1 record is
# the same record without that status, so both are read.
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
STATUSES = ("completed", "failed", "diverged", "interrupted", "pruned")
REQUIRED = ("schema_version", "status", "model", "hparams", "splits", "metrics", "timing", "env")


def write_metrics(run_dir: str | Path, record: dict[str, Any]) -> Path:
    record = {"schema_version": SCHEMA_VERSION, **record}
    if record.get("status") not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {record.get('status')!r}")
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise ValueError(f"metrics record lacks {missing}")
    path = Path(run_dir) / METRICS_FILE
    write_text_atomic(path, json.dumps(record, indent=2, sort_keys=False, default=str))
    return path


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_record(cfg: DictConfig, status: str, hparams: dict, error: BaseException | str | None = None,
               **parts: Any) -> dict[str, Any]:
    """A run's record: what every record holds (identity, config, status, error), plus `parts`
    (splits, metrics, timing, env, history, ...) where the run got that far."""
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - an unresolvable config may itself be why a job failed
        config = OmegaConf.to_container(cfg, resolve=False)
    try:
        key = config_key(cfg)
    except Exception:  # noqa: BLE001 - then it is no other job's twin: the report keeps it apart
        key = None
    model = config.get("model") or {}
    record = {"status": status, "error": None, "finished_at": now(),
              "model": {"name": model.get("name"), "family": model.get("family")},
              "hparams": hparams, "seed": config.get("seed"), "stage": config.get("stage"),
              "splits": {}, "metrics": {}, "timing": {}, "env": {}, "history": [],
              "config": config, "config_key": key, "results_version": RESULTS_VERSION}
    if isinstance(error, BaseException):
        record["error"] = f"{type(error).__name__}: {str(error)[:500]}"
        record["traceback"] = "".join(tb.format_exception(error))[-4000:]
    elif error is not None:
        record["error"] = error
    return {**record, **parts}


def read_metrics(path: str | Path) -> dict[str, Any]:
    """Read a run's record, given its folder or the file itself."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("schema_version") not in READABLE_VERSIONS:
        raise ValueError(f"{path}: schema_version {record.get('schema_version')} is not one of {READABLE_VERSIONS}")
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise ValueError(f"{path}: lacks {missing}")
    record["run_dir"] = str(path.parent)
    return record


def predictions_file(evaluation: str | None = None) -> str:
    """Where a run folder holds per-review predictions: training's, of the test split
    (`predictions.csv`), or those of the `imdb_lm.evaluate` result named `evaluation`."""
    return PREDICTIONS_FILE if evaluation is None else f"{EVALUATIONS_DIR}/{evaluation}{EVALUATION_PREDICTIONS_SUFFIX}"


def write_predictions(run_dir: str | Path, hashes: list[str], labels: list[int], probs: list[float],
                      evaluation: str | None = None) -> Path:
    """Predictions keyed by review hash, for paired tests between runs on the same reviews."""
    lines = ["review_hash,label,prob_pos"]
    lines += [f"{h},{int(y)},{float(p):.6f}" for h, y, p in zip(hashes, labels, probs, strict=True)]
    path = Path(run_dir) / predictions_file(evaluation)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def read_predictions(run_dir: str | Path, evaluation: str | None = None) -> dict[str, tuple[int, float]]:
    with (Path(run_dir) / predictions_file(evaluation)).open(encoding="utf-8") as fh:
        return {row["review_hash"]: (int(row["label"]), float(row["prob_pos"])) for row in csv.DictReader(fh)}


# ---- per-run artifacts beside metrics.json (explanations, error analysis, evaluations) ----------


def write_artifact(run_dir: str | Path, name: str, record: dict[str, Any]) -> Path:
    """A JSON record next to metrics.json (`explain.json`, `analysis.json`, `evaluations/<x>.json`)."""
    path = Path(run_dir) / name
    write_text_atomic(path, json.dumps({"schema_version": SCHEMA_VERSION, **record}, indent=2, default=str))
    return path


def read_artifact(run_dir: str | Path, name: str) -> dict[str, Any]:
    return json.loads((Path(run_dir) / name).read_text(encoding="utf-8"))


def write_text(path: str | Path, text: str) -> Path:
    """Any other run file (an HTML page), atomically."""
    write_text_atomic(Path(path), text)
    return Path(path)
