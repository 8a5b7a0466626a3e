"""`python -m imdb_lm.train [overrides]`: fit, test the best checkpoint once, write the run's results.

Examples:
  python -m imdb_lm.train                                   # default BiGRU on the bundled IMDB data
  python -m imdb_lm.train model=gru optimizer=rmsprop
  python -m imdb_lm.train model=transformer data.max_length=256
  python -m imdb_lm.train --multirun model=lstm,transformer optimizer=sgd,adamw data.batch_size=16,32
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
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from imdb_lm.analysis import write_analysis
from imdb_lm.callbacks import MetricsTimingCallback
from imdb_lm.data.splits import RULE as SPLIT_RULE
from imdb_lm.errors import UserError
from imdb_lm.results import write_metrics, write_predictions
from imdb_lm.runinfo import env_record
from imdb_lm.stability import StabilityCallback

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
    return model_class(**model_cfg, optimizer=optimizer, scheduler=scheduler,
                       vocab_size=datamodule.vocab_size, pad_id=datamodule.pad_id)


def run(cfg: DictConfig) -> float | None:
    run_dir = Path(cfg.paths.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    # Denormal floats in BPTT gradients made CPU backward ~10x slower here; flushing them is harmless.
    torch.set_flush_denormal(True)

    datamodule = instantiate(cfg.data)
    cache_hit = datamodule.cache_hit
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = build_model(cfg, datamodule)
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
    timing = next(c for c in callbacks if isinstance(c, MetricsTimingCallback))
    stability = next((c for c in callbacks if isinstance(c, StabilityCallback)), None)
    loggers = [instantiate(c) for c in cfg.logger.values() if c is not None]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    datamodule.save_tokenizer(run_dir)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    trainer.fit(model, datamodule=datamodule)
    checkpoint = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    test = {}
    # A run that diverged before any checkpoint was selected has nothing worth testing.
    diverged_early = stability is not None and stability.diverged and not checkpoint
    if cfg.test and not diverged_early:
        trainer.test(model, datamodule=datamodule, ckpt_path=checkpoint or None, verbose=False)
        test = {k: v for k, v in timing.test_record.items() if k not in ("seconds", "samples_per_s")}
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
    hparams = flat_hparams(cfg)
    record = {
        "status": "diverged" if diverged else "completed",
        "error": stability.reason if stability else None,
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
        "env": env_record(model.device),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    path = write_metrics(run_dir, record)
    for logger in trainer.loggers:
        logger.log_hyperparams(hparams, {"hp/val_acc": record["metrics"]["best_val_acc"] or 0.0,
                                         "hp/test_acc": test.get("acc", 0.0),
                                         "hp/fit_seconds": record["timing"]["fit_seconds"] or 0.0,
                                         "hp/latency_ms_p50": latency["latency_ms_p50"]})
        logger.finalize("success")
    print(f"\nresults: {path}  status: {record['status']}\ntest accuracy: {test.get('acc', float('nan')):.4f}  "
          f"best val accuracy: {record['metrics']['best_val_acc'] or float('nan'):.4f}  "
          f"fit: {record['timing']['fit_seconds']:.0f}s\n"
          f"tensorboard: tensorboard --logdir {run_dir}")
    return record["metrics"]["best_val_acc"]


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        return run(cfg)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            return None
        sys.exit(2)


if __name__ == "__main__":
    main()
