"""A tiny Hydra app for the Optuna sweeper's tests: the real sweeper, a cheap objective.

Each job appends one line (its trial and parameters) to a file of its own under `record_dir`, so a
test can count the jobs that really ran, across several sweeper processes.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    time.sleep(cfg.sleep)  # long enough for two workers' trials to overlap
    trial = cfg.get("optuna_trial")
    record = {"pid": os.getpid(), "x": cfg.x, "y": cfg.y,
              "study": trial.study if trial else None, "number": trial.number if trial else None}
    Path(cfg.record_dir).mkdir(parents=True, exist_ok=True)
    (Path(cfg.record_dir) / f"{uuid.uuid4().hex}.json").write_text(json.dumps(record))
    return (float(cfg.x) - 2.0) ** 2 + (0.5 if cfg.y == "b" else 0.0)


if __name__ == "__main__":
    main()
