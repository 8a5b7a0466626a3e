"""The run-identity policy: which settings make two runs the same experiment.

One key serves `resume=auto` (which run to continue), `skip_completed` (which finished job to reuse,
also from records committed elsewhere) and the report (which records are the same job). It must
change exactly when the result can change, so that moving a callback, adding a logger or a Trainer
flag, or changing a log interval never makes earlier runs look new, and a record made under other
code that changes results is never taken for this one.

The key is a hash of:
- RESULTS_VERSION: bumped whenever code that changes results changes (tests/test_run_key.py
  fails until it is bumped or the change is declared result-neutral);
- the split rule (imdb_lm/data/splits.py), and the resolved sections that decide a result:
  `data`, `model`, `optimizer`, `scheduler`, the result-deciding `trainer` arguments (epochs,
  steps, limits, precision, clipping, accumulation, validation cadence, devices), the callbacks that
  change training or selection (checkpoint monitor and mode, the divergence stop, any callback
  added by hand), `seed` and `test`;
- for any task but the default classifier: `task` and its options (`lm.*` for task=lm), so a
  classifier's key is the same as before tasks existed.
It leaves out: where things are stored (`paths`, cache and data loader workers, `hydra`), loggers,
progress bars, logging intervals, model summaries, class locations (`_target_`: an optimizer counts
by its class name), implementation switches that compute the same function (fused optimizer or GRU
kernels, attention implementation, gradient checkpointing, compile), top-level knobs whose effect
reaches the result only through the sections above (`lr_scale`, an experiment's `study` block), labels
(a sweep job's `stage`: grid, promoted, seed or curve; the same job serves any stage), and
unset values: null, and Trainer arguments at Lightning's default, so `trainer.max_steps=-1` typed
out is the same run as leaving it away.
"""

from __future__ import annotations

import hashlib
import json

from omegaconf import DictConfig, OmegaConf

RESULTS_VERSION = 1

# Values that refer to a location are dropped before resolving (they may not resolve outside Hydra).
LOCATION_REFS = ("${paths.", "${hydra:")
DATA_NOT_RESULTS = ("_target_", "cache_dir", "num_workers", "pin_memory", "eval_batch_size")
MODEL_NOT_RESULTS = ("recipe", "fused_cpu_gru", "attn_implementation", "gradient_checkpointing")
OPTIMIZER_NOT_RESULTS = ("_target_", "_partial_", "fused", "foreach")
# Trainer arguments that decide a result, with Lightning's default (a value equal to it is unset).
TRAINER_RESULTS = {
    "max_epochs": None, "min_epochs": None, "max_steps": -1, "min_steps": None, "max_time": None,
    "limit_train_batches": 1.0, "limit_val_batches": 1.0, "limit_test_batches": 1.0,
    "overfit_batches": 0.0, "val_check_interval": 1.0, "check_val_every_n_epoch": 1,
    "accumulate_grad_batches": 1, "gradient_clip_val": None, "gradient_clip_algorithm": "norm",
    "precision": "32-true", "deterministic": False, "fast_dev_run": False,
    "devices": 1, "num_nodes": 1, "strategy": "auto", "use_distributed_sampler": True,
}
# Callbacks that only observe (metrics, logs, memory); any other callback can change the result.
OBSERVERS = ("metrics_timing", "lr_monitor", "test_examples", "attributions", "release_freed_memory")
CHECKPOINT_RESULTS = ("monitor", "mode")  # which checkpoint is tested; the rest is storage
DEFAULT_TASK = "classifier"  # conf/task/: a task's options live under its own name (lm.*)


def _drop_locations(node):
    if isinstance(node, dict):
        return {k: _drop_locations(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_drop_locations(v) for v in node]
    if isinstance(node, str) and any(ref in node for ref in LOCATION_REFS):
        return None
    return node


def _set(node):
    """Without null values, recursively (an unset option is the same run as an absent one)."""
    if isinstance(node, dict):
        return {k: _set(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_set(v) for v in node]
    return node


def _is_default(name: str, value) -> bool:
    default = TRAINER_RESULTS[name]
    if name.startswith("limit_") or name == "val_check_interval":
        return value is None or value == default  # null and 1.0 both mean "all batches"
    return value == default


def _class_name(target) -> str | None:
    return str(target).rsplit(".", 1)[-1] if target else None


def key_fields(cfg: DictConfig) -> dict:
    """The settings the key hashes, as a plain dict (shown by tests and useful to debug a mismatch)."""
    from imdb_lm.data.splits import RULE as SPLIT_RULE

    raw = OmegaConf.to_container(cfg, resolve=False)
    raw = {k: v for k, v in raw.items() if k not in ("paths", "hydra")}
    resolved = OmegaConf.to_container(OmegaConf.create(_drop_locations(raw)), resolve=True)
    data = {k: v for k, v in (resolved.get("data") or {}).items() if k not in DATA_NOT_RESULTS}
    model = {k: v for k, v in (resolved.get("model") or {}).items() if k not in MODEL_NOT_RESULTS}
    optimizer = dict(resolved.get("optimizer") or {})
    optimizer = {"class": _class_name(optimizer.get("_target_")),
                 **{k: v for k, v in optimizer.items() if k not in OPTIMIZER_NOT_RESULTS}}
    trainer = {k: v for k, v in (resolved.get("trainer") or {}).items()
               if k in TRAINER_RESULTS and not _is_default(k, v)}
    callbacks = {}
    for name, callback in (resolved.get("callbacks") or {}).items():
        if callback is None or name in OBSERVERS:
            continue
        if name == "model_checkpoint":
            callbacks[name] = {k: callback.get(k) for k in CHECKPOINT_RESULTS}
        else:
            callbacks[name] = {"class": _class_name(callback.get("_target_")),
                               **{k: v for k, v in callback.items() if k != "_target_"}}
    fields = {"results_version": RESULTS_VERSION, "split_rule": SPLIT_RULE, "data": data, "model": model,
              "optimizer": optimizer, "scheduler": resolved.get("scheduler"), "trainer": trainer,
              "callbacks": callbacks, "seed": resolved.get("seed"), "test": resolved.get("test", True)}
    task = resolved.get("task") or DEFAULT_TASK
    if task != DEFAULT_TASK:  # absent for the classifier: its keys stay those of every earlier record
        fields.update(task=task, **{task: resolved.get(task)})
    return _set(fields)


def config_key(cfg: DictConfig) -> str:
    """A stable id of the experiment a training config describes (see the module docstring)."""
    fields = json.dumps(key_fields(cfg), sort_keys=True, default=str)
    return hashlib.sha256(fields.encode()).hexdigest()[:20]
