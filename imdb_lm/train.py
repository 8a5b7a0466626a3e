"""`python -m imdb_lm.train [overrides]`: fit, test the best checkpoint once, write the run's results.

Examples:
  python -m imdb_lm.train                                   # default BiGRU on the bundled IMDB data
  python -m imdb_lm.train model=gru optimizer=rmsprop
  python -m imdb_lm.train model=transformer data.max_length=256
  python -m imdb_lm.train --multirun model=lstm,transformer optimizer=sgd,adamw data.batch_size=16,32
  python -m imdb_lm.train model=gru resume=auto              # continue the latest interrupted gru run
"""

from __future__ import annotations

import math
import sys
from datetime import datetime, timezone
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from imdb_lm import jobs
from imdb_lm.analysis import write_analysis
from imdb_lm.atomic import write_text as write_text_atomic
from imdb_lm.callbacks import MetricsTimingCallback
from imdb_lm.config_key import config_key
from imdb_lm.data.splits import RULE as SPLIT_RULE
from imdb_lm.errors import UserError
from imdb_lm.interrupt import GracefulInterrupt, RunInterrupted
from imdb_lm.loggers import log_final, where_to_look
from imdb_lm.memory import keep_freed_memory
from imdb_lm.overrides import check_train_argv, one_line
from imdb_lm.results import write_metrics, write_predictions
from imdb_lm.resume import (
    LAST_CHECKPOINT,
    ResumeState,
    check_checkpoint,
    plan_resume,
    run_meta,
    write_key,
)
from imdb_lm.rundirs import acquire, discard_unstarted_run, run_lock
from imdb_lm.runinfo import env_record
from imdb_lm.stability import StabilityCallback
from imdb_lm.validate import validate_config

NON_MODEL_KEYS = ("name", "family", "recipe")


def flat_hparams(cfg: DictConfig) -> dict:
    """The hyperparameters a comparison is made over, flat, for TensorBoard HPARAMS and reports."""
    opt_target = cfg.optimizer._target_
    model = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items()
             if k not in NON_MODEL_KEYS and not k.startswith("_")}
    return {
        "model": cfg.model.name, "family": cfg.model.family,
        "optimizer": opt_target.rsplit(".", 1)[-1].lower(), "lr": float(cfg.optimizer.lr),
        "weight_decay": float(cfg.optimizer.get("weight_decay", 0.0)),
        "batch_size": int(cfg.data.batch_size), "max_length": int(cfg.data.max_length),
        "truncation": cfg.data.truncation, "scheduler": cfg.scheduler.name,
        "max_epochs": int(cfg.trainer.max_epochs), "precision": str(cfg.trainer.precision),
        "gradient_clip_val": cfg.trainer.gradient_clip_val, "seed": int(cfg.seed),
        "train_limit": cfg.data.train_limit,
        **{f"model.{k}": v for k, v in model.items() if isinstance(v, int | float | str | bool)},
    }


def build_model(cfg: DictConfig, datamodule) -> L.LightningModule:
    model_cfg = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items()
                 if k not in NON_MODEL_KEYS}
    optimizer = OmegaConf.to_container(cfg.optimizer, resolve=True)
    scheduler = OmegaConf.to_container(cfg.scheduler, resolve=True)
    model_class = get_class(model_cfg.pop("_target_"))
    # Plain dicts, not instantiated objects: they are saved in checkpoints as hyperparameters.
    model = model_class(**model_cfg, optimizer=optimizer, scheduler=scheduler,
                        vocab_size=datamodule.vocab_size, pad_id=datamodule.pad_id)
    if cfg.get("compile"):
        # In place: the module and its state_dict keys stay the same, so checkpoints load anywhere.
        model.compile(dynamic=True)
    return model


def run(cfg: DictConfig) -> float | None:
    validate_config(cfg)  # before anything is written
    plan = plan_resume(cfg)
    if plan.finished is not None:
        print(f"resume=auto: the latest run of this config, {plan.finished.run_dir}, already finished "
              f"({plan.finished.status}); nothing to resume")
        discard_unstarted_run(cfg.paths.run_dir)  # this job's own, empty folder
        return plan.finished.best_val_acc
    if plan.run_dir is not None:  # continue in the interrupted run's own folder
        print(f"resume=auto: continuing {plan.run_dir} from {plan.ckpt_path}")
        write_text_atomic(Path(cfg.paths.run_dir) / "resumed_in.txt", f"{plan.run_dir}\n")
        cfg.paths.run_dir = str(plan.run_dir)
    run_dir = Path(cfg.paths.run_dir)
    if not plan.rank_zero:  # Lightning's child processes: rank zero holds the lock
        return _run(cfg, run_dir, plan.ckpt_path)
    lock = run_lock(run_dir)
    acquire(lock, run_dir)
    try:
        return _run(cfg, run_dir, plan.ckpt_path)
    finally:
        lock.release()


def _run(cfg: DictConfig, run_dir: Path, ckpt_path: str | None) -> float | None:
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    # Denormal floats in BPTT gradients made CPU backward ~10x slower here; flushing them is harmless.
    torch.set_flush_denormal(True)
    keep_freed_memory()  # reuse activation memory across steps instead of faulting in fresh pages

    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    cache_hit = not datamodule.built_here
    datamodule.setup("fit")
    model = build_model(cfg, datamodule)
    meta = run_meta(cfg, model, datamodule)
    if ckpt_path:  # refuse, in one line, a checkpoint of another model, vocabulary or split
        check_checkpoint(ckpt_path, meta, model, "ckpt_path")
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
    timing = next(c for c in callbacks if isinstance(c, MetricsTimingCallback))
    stability = next((c for c in callbacks if isinstance(c, StabilityCallback)), None)
    interrupt = GracefulInterrupt(run_dir / LAST_CHECKPOINT)
    callbacks += [ResumeState(meta), interrupt]
    loggers = [instantiate(c) for c in cfg.logger.values() if c is not None]
    if not loggers:  # logger=none: Lightning refuses a learning-rate monitor without a logger
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    try:
        trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    except InstantiationException as err:  # e.g. trainer.devices=5 on a 2-core CPU, a bad precision
        raise UserError(f"trainer: {one_line(err.__cause__ or err)}; fix the trainer.* override") from None
    key = config_key(cfg)
    if trainer.is_global_zero:
        write_key(run_dir, key)
        datamodule.save_tokenizer(run_dir)
        write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    hparams = flat_hparams(cfg)

    def make_record(status: str, checkpoint: str, test: dict, latency: dict, error: str | None = None) -> dict:
        return {
            "status": status,
            "error": error,
            "started_at": started,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model": {"name": cfg.model.name, "family": cfg.model.family, "class": type(model).__name__,
                      "params": model.count_parameters()},
            "hparams": hparams,
            "seed": int(cfg.seed),
            "splits": {"rule": SPLIT_RULE,
                       "source": cfg.data.source, **datamodule.fingerprints},
            "metrics": {"val": {k: v for k, v in timing.best_val.items()},
                        "best_val_acc": timing.best_val.get("acc"), "best_epoch": timing.best_val.get("epoch"),
                        "test": test},
            "timing": {**timing.summary(model), **latency, "tokenization_cache_hit": cache_hit},
            "history": timing.history,
            "stability": stability.summary() if stability else None,
            "checkpoint": checkpoint,
            "resumed_from": ckpt_path,
            "env": {**env_record(model.device), "world_size": trainer.world_size, "num_nodes": trainer.num_nodes},
            "config": OmegaConf.to_container(cfg, resolve=True),
            "config_key": key,
        }

    try:
        # weights_only: a checkpoint that would run code when unpickled is refused
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        if interrupt.signum is not None:  # the signal came during the last validation
            raise RunInterrupted(interrupt.signum)
        checkpoint = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        test = {}
        # A run that diverged before any checkpoint was selected has nothing worth testing.
        diverged_early = stability is not None and stability.diverged and not checkpoint
        if cfg.test and not diverged_early:
            trainer.test(model, datamodule=datamodule, ckpt_path=checkpoint or None, verbose=False,
                         weights_only=True)
            test = {k: v for k, v in timing.test_record.items() if k not in ("seconds", "samples_per_s")}
    except (RunInterrupted, KeyboardInterrupt, SystemExit) as stop:
        # SystemExit: how Lightning ends trainer.test on Ctrl+C or SIGTERM
        code = (stop.exit_code if isinstance(stop, RunInterrupted)
                else 143 if isinstance(stop, SIGTERMException) else 130)
        last = run_dir / LAST_CHECKPOINT
        if trainer.is_global_zero:
            path = write_metrics(run_dir, make_record("interrupted", str(last) if last.is_file() else "", {},
                                                 {}, error=str(stop) or type(stop).__name__))
            print(f"\ninterrupted: checkpoint {last if last.is_file() else '(none yet)'}; results: {path}\n"
                  f"continue with the same command plus resume=auto")
        for logger in trainer.loggers:
            logger.finalize("failed")
        sys.exit(code)
    except UserError:
        raise
    except Exception as err:  # a crash mid-run: record it (resume=auto can continue from last.ckpt)
        if trainer.is_global_zero:
            last = run_dir / LAST_CHECKPOINT
            write_metrics(run_dir, make_record("failed", str(last) if last.is_file() else "", {}, {},
                                               error=f"{type(err).__name__}: {str(err)[:500]}"))
        raise
    if not trainer.is_global_zero:  # rank zero writes the run's single record
        return timing.best_val.get("acc")

    if test:
        hashes = datamodule.hashes("test")
        labels = datamodule.datasets["test"].labels
        order = sorted(timing.test_predictions)
        write_predictions(run_dir, [hashes[i] for i in order], [labels[i] for i in order],
                          [timing.test_predictions[i] for i in order])
        write_analysis(run_dir, [datamodule.texts("test")[i] for i in order], [labels[i] for i in order],
                       [timing.test_predictions[i] for i in order], [hashes[i] for i in order])

    latency = timing.measure_latency(model, datamodule.datasets["test"],
                                     trainer.strategy.precision_plugin.forward_context)
    train_loss = timing.history[-1].get("train_loss") if timing.history else None
    diverged = stability.diverged if stability else (train_loss is None or not math.isfinite(train_loss))
    record = make_record("diverged" if diverged else "completed", checkpoint, test, latency,
                         error=stability.reason if stability and stability.diverged else None)
    path = write_metrics(run_dir, record)
    log_final(trainer.loggers, hparams, {"hp/val_acc": record["metrics"]["best_val_acc"] or 0.0,
                                         "hp/test_acc": test.get("acc", 0.0),
                                         "hp/fit_seconds": record["timing"]["fit_seconds"] or 0.0,
                                         "hp/latency_ms_p50": latency["latency_ms_p50"]}, trainer.global_step)
    print("\n".join([f"\nresults: {path}  status: {record['status']}\ntest accuracy: "
                     f"{test.get('acc', float('nan')):.4f}  best val accuracy: "
                     f"{record['metrics']['best_val_acc'] or float('nan'):.4f}  "
                     f"fit: {record['timing']['fit_seconds']:.0f}s", *where_to_look(trainer.loggers)]))
    return record["metrics"]["best_val_acc"]


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    finished = jobs.find_finished(cfg) if cfg.get("skip_completed") else None
    if finished is not None:
        return jobs.reuse(finished, cfg)
    try:
        return run(cfg)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        if multirun:  # the job is a result of the sweep: record it and let the others go on
            _record_failure(cfg, err)
            return None
        if rank_zero_only.rank == 0:  # nothing half-written: drop a run folder that holds no result
            discard_unstarted_run(HydraConfig.get().runtime.output_dir)
        sys.exit(2)
    except KeyboardInterrupt:  # before training started (data preparation): nothing to keep
        if rank_zero_only.rank == 0:
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
    if (Path(cfg.paths.run_dir) / "metrics.json").is_file():
        return  # the run recorded its own failure, with its checkpoint and history
    try:
        hparams = flat_hparams(cfg)
    except Exception:
        hparams = {}
    jobs.record_failure(cfg, err, hparams)


if __name__ == "__main__":
    try:  # bad overrides get one line before Hydra starts; resume=auto picks its run folder
        argv = check_train_argv(sys.argv[1:])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if argv is not None:  # None: resume=auto found the run already finished
        sys.argv[1:] = argv
        main()
