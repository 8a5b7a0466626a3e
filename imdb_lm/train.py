"""`python -m imdb_lm.train [overrides]`: fit, test the best checkpoint once, write the run's results.

Examples:
  python -m imdb_lm.train                                   # default BiGRU on the bundled IMDB data
  python -m imdb_lm.train model=gru optimizer=rmsprop
  python -m imdb_lm.train model=transformer data.max_length=256
  python -m imdb_lm.train --multirun model=lstm,transformer optimizer=sgd,adamw data.batch_size=16,32
  python -m imdb_lm.train model=gru resume=auto              # continue the latest interrupted gru run

Arguments are checked (composed and validated) before Hydra starts and before torch, Lightning or
transformers are imported, so `--help` and a mistyped option answer at once. The work is done by
imdb_lm/training.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from imdb_lm.config.overrides import check_train_argv
from imdb_lm.errors import UserError
from imdb_lm.runs import jobs
from imdb_lm.runs.folders import METRICS_FILE, discard_unstarted_run


def _rank_zero() -> bool:
    """As Lightning decides it (its rank_zero_only.rank), without importing Lightning."""
    for name in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if name in os.environ:
            return int(os.environ[name]) == 0
    return True


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    finished = jobs.find_finished(cfg) if cfg.get("skip_completed") else None
    if finished is not None:
        return jobs.reuse(finished, cfg)
    from imdb_lm.training import run

    try:
        return run(cfg)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        if multirun:  # the job is a result of the sweep: record it and let the others go on
            _record_failure(cfg, err)
            return None
        if _rank_zero():  # nothing half-written: drop a run folder that holds no result
            discard_unstarted_run(HydraConfig.get().runtime.output_dir)
        sys.exit(2)
    except KeyboardInterrupt:  # before training started (data preparation): nothing to keep
        if _rank_zero():
            discard_unstarted_run(HydraConfig.get().runtime.output_dir)
        print("interrupted before training started; nothing was saved", file=sys.stderr)
        sys.exit(130)
    except Exception as err:
        if not multirun:
            raise
        # One failed job is a result of the sweep (it is counted in the report); the others go on.
        print(f"error: job failed: {type(err).__name__}: {err}", file=sys.stderr)
        _record_failure(cfg, err)
        return None


def _record_failure(cfg: DictConfig, err: BaseException) -> None:
    if (Path(cfg.paths.run_dir) / METRICS_FILE).is_file():
        return  # the run recorded its own failure, with its checkpoint and history
    from imdb_lm.training import flat_hparams

    try:
        hparams = flat_hparams(cfg)
    except Exception:
        hparams = {}
    jobs.record_failure(cfg, err, hparams)


if __name__ == "__main__":
    if any(arg in ("--help", "-h") for arg in sys.argv[1:]):
        from imdb_lm.config.help import train_help

        print(train_help(__doc__))
        sys.exit(0)
    try:  # bad overrides get one line before Hydra starts; resume=auto picks its run folder
        argv = check_train_argv(sys.argv[1:])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if argv is not None:  # None: resume=auto found the run already finished
        sys.argv[1:] = argv
        main()
