"""Train one config: fit, test the best (validation-selected) checkpoint once, write the run's record.

The same for every task (`task=`: imdb_lm/tasks.py): the task supplies the data module, the model,
the metrics callback and what its record and closing lines hold.

The library behind `python -m imdb_lm.train` (imdb_lm/train.py), which imports it only once a
run starts, so that `--help` and config errors answer without importing torch and Lightning.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from imdb_lm.atomic import write_text as write_text_atomic
from imdb_lm.callbacks.first_validation import FirstValidationCheck, never_validated
from imdb_lm.callbacks.interrupt import GracefulInterrupt, RunInterrupted
from imdb_lm.callbacks.stability import StabilityCallback
from imdb_lm.config.overrides import one_line
from imdb_lm.config.validate import validate_config
from imdb_lm.data.splits import RULE as SPLIT_RULE
from imdb_lm.errors import UserError
from imdb_lm.loggers import log_final, where_to_look
from imdb_lm.memory import keep_freed_memory
from imdb_lm.models.build import model_arguments
from imdb_lm.runs.environment import env_record
from imdb_lm.runs.folders import (
    CONFIG_FILE,
    LAST_CHECKPOINT,
    RESUMED_IN_FILE,
    acquire,
    discard_unstarted_run,
    run_lock,
)
from imdb_lm.runs.key import config_key
from imdb_lm.runs.records import new_record, now, write_metrics
from imdb_lm.runs.resume import ResumeState, announce, check_checkpoint, plan_resume, run_meta, write_key
from imdb_lm.tasks import task_for


def flat_hparams(cfg: DictConfig) -> dict:
    """The hyperparameters a comparison is made over, flat, for TensorBoard HPARAMS and reports."""
    opt_target = cfg.optimizer._target_
    model = model_arguments(cfg.model)
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


def data_record(datamodule) -> dict:
    """What the run trained on, in numbers a study reads directly (the fingerprints say which)."""
    prints = datamodule.fingerprints
    full = prints.get("train_full") or prints.get("train") or {}
    return {"train_reviews": (prints.get("train") or {}).get("count"), "train_full_reviews": full.get("count"),
            # splits.subsample draws nested subsets: every train subset is a subset of train_full
            "train_nested_in_full": "train_full" in prints,
            "max_length": datamodule.max_length, "truncation": datamodule.truncation,
            "truncated_share": datamodule.truncated_share}


def run(cfg: DictConfig) -> float | None:
    validate_config(cfg)  # before anything is written
    plan = plan_resume(cfg)
    if cfg.get("resume") == "auto" and plan.rank_zero:  # a sweep job (the CLI decides for single runs)
        announce(plan)
    if plan.finished is not None:
        discard_unstarted_run(cfg.paths.run_dir)  # this job's own, empty folder
        return plan.finished.best_val_acc
    if plan.run_dir is not None:  # continue in the interrupted run's own folder
        write_text_atomic(Path(cfg.paths.run_dir) / RESUMED_IN_FILE, f"{plan.run_dir}\n")
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
    started = now()
    task = task_for(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    # Denormal floats in BPTT gradients made CPU backward ~10x slower here; flushing them is harmless.
    torch.set_flush_denormal(True)
    keep_freed_memory()  # reuse activation memory across steps instead of faulting in fresh pages

    datamodule = task.datamodule(cfg)
    datamodule.prepare_data()
    cache_hit = not datamodule.built_here
    datamodule.setup("fit")
    model = task.model(cfg, datamodule)
    meta = run_meta(cfg, model, datamodule)
    # Size and compute per token, comparable across families (models/classifier.py); at the data's
    # length, which the transformer's attention term depends on.
    length = int(cfg.data.max_length)
    size = {"params": model.count_parameters(), "forward_flops_per_token": model.forward_flops_per_token(length),
            "flops_at_length": length}
    if ckpt_path:  # refuse, in one line, a checkpoint of another model, vocabulary or split
        check_checkpoint(ckpt_path, meta, model, "ckpt_path")
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
    timing = next(c for c in callbacks if isinstance(c, task.metrics_callback))
    stability = next((c for c in callbacks if isinstance(c, StabilityCallback)), None)
    interrupt = GracefulInterrupt(run_dir / LAST_CHECKPOINT)
    # after the config's callbacks, MinTrainSteps among them: the check reads the epochs they settled on
    callbacks += [ResumeState(meta), interrupt, FirstValidationCheck()]
    trial_pruned: tuple[type[Exception], ...] = ()  # `except ()` catches nothing: not an Optuna trial
    if cfg.get("optuna_trial") is not None:  # imported here: only Optuna's jobs pay for importing Optuna
        from imdb_lm.callbacks.optuna_pruning import OptunaPruning, TrialPruned

        callbacks.append(OptunaPruning.from_config(cfg.optuna_trial))
        trial_pruned = (TrialPruned,)
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
        write_text_atomic(run_dir / CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
    hparams = {**flat_hparams(cfg), **task.hparams(cfg)}

    def make_record(status: str, checkpoint: str, test: dict, latency: dict, error=None) -> dict:
        return new_record(
            cfg, status, hparams, error=error, started_at=started,
            model={"name": cfg.model.name, "family": cfg.model.family, "class": type(model).__name__, **size},
            seed=int(cfg.seed),
            splits={"rule": SPLIT_RULE, "source": cfg.data.source, **datamodule.fingerprints},
            data=data_record(datamodule),
            metrics=task.metrics(timing, test),
            timing={**timing.summary(model), **latency, "tokenization_cache_hit": cache_hit},
            history=timing.history,
            stability=stability.summary() if stability else None,
            checkpoint=checkpoint, resumed_from=ckpt_path,
            env={**env_record(model.device), "world_size": trainer.world_size, "num_nodes": trainer.num_nodes},
        )

    try:
        # weights_only: a checkpoint that would run code when unpickled is refused
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        if interrupt.signum is not None:  # the signal came during the last validation
            raise RunInterrupted(interrupt.signum)
        # no validation recorded a best value (the classifier's best "acc", the language model's best "loss")
        validated = any(v is not None for k, v in timing.best_val.items() if k != "epoch")
        if not validated and not (stability is not None and stability.diverged):
            # Ended without a validation for a reason only the fit could tell (trainer.max_time, no
            # training batches): nothing was chosen, so nothing is tested, and it is no completed run.
            reason = never_validated(trainer, cfg.trainer.get("max_time"))
            if trainer.is_global_zero:
                last = run_dir / LAST_CHECKPOINT
                write_metrics(run_dir, make_record("failed", str(last) if last.is_file() else "", {}, {}, error=reason))
            raise UserError(reason)
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
    except trial_pruned as pruned:  # Optuna's pruner stopped it: a result of the search, not a failure
        if trainer.is_global_zero:
            best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
            path = write_metrics(run_dir, make_record("pruned", best, {}, {}, error=str(pruned)))
            print(f"\n{pruned}; results: {path}")
        return task.score(timing)
    except Exception as err:  # a crash mid-run: record it (resume=auto can continue from last.ckpt)
        if trainer.is_global_zero:
            last = run_dir / LAST_CHECKPOINT
            write_metrics(run_dir, make_record("failed", str(last) if last.is_file() else "", {}, {}, error=err))
        raise
    if not trainer.is_global_zero:  # rank zero writes the run's single record
        return task.score(timing)

    if test:
        task.write_outputs(run_dir, datamodule, timing)

    latency = timing.measure_latency(model, datamodule.datasets["test"],
                                     trainer.strategy.precision_plugin.forward_context)
    train_loss = timing.history[-1].get("train_loss") if timing.history else None
    diverged = stability.diverged if stability else (train_loss is None or not math.isfinite(train_loss))
    record = make_record("diverged" if diverged else "completed", checkpoint, test, latency,
                         error=stability.reason if stability and stability.diverged else None)
    path = write_metrics(run_dir, record)
    log_final(trainer.loggers, hparams, task.final_metrics(record), trainer.global_step)
    print("\n".join([f"\nresults: {path}  status: {record['status']}\n{task.summary(record)}",
                     *where_to_look(trainer.loggers)]))
    return task.score(timing)
