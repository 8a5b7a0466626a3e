"""Check a composed training config before anything is written: one clear error per problem.

The data and model constructors own the checks of their arguments; this runs them early (without
building anything) and adds what must be known before any folder or cache is touched: seed,
epochs, files, offline checkpoints. Used by the CLI before Hydra starts, and by `train.run` for every job of a sweep.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from imdb_lm.data.options import check_data_options
from imdb_lm.errors import UserError
from imdb_lm.lm.options import check_task
from imdb_lm.loggers import check_available as check_loggers
from imdb_lm.models.options import check_training_options

RESUME_CHOICES = (None, "auto")


def _positive(name: str, value, kind=(int,)) -> None:
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        raise UserError(f"{name}={value} must be a positive {'integer' if kind == (int,) else 'number'}")


def _select(cfg: DictConfig, key: str):
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=True)
    except Exception as err:  # noqa: BLE001 - an unresolvable value is a config error, said once
        raise UserError(f"{key}: cannot be resolved ({str(err).splitlines()[0]}); check its override") from None


def _checkpoint_length_limit(pretrained: str) -> int | None:
    """The longest input the checkpoint's position embeddings allow (None if it does not say)."""
    from imdb_lm.models.pretrained import resolve_checkpoint

    ckpt = resolve_checkpoint(pretrained)  # one-line error when unreachable offline
    local = Path(ckpt.source) / "config.json"
    if local.is_file():  # read directly: importing transformers would take seconds
        limit = json.loads(local.read_text(encoding="utf-8")).get("max_position_embeddings")
    else:
        from transformers import AutoConfig

        limit = getattr(AutoConfig.from_pretrained(ckpt.source, **ckpt.kwargs()), "max_position_embeddings", None)
    return int(limit) if isinstance(limit, int) and limit > 0 else None


def validate_config(cfg: DictConfig) -> None:
    seed = _select(cfg, "seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"seed={seed} must be a non-negative integer")
    # The model's and the data module's own checks, run here before anything is built or written.
    check_training_options({"lr": _select(cfg, "optimizer.lr")}, {"name": _select(cfg, "scheduler.name")})
    if not isinstance(_select(cfg, "compile") or False, bool):
        raise UserError(f"compile={_select(cfg, 'compile')} must be true or false")
    _positive("trainer.max_epochs", _select(cfg, "trainer.max_epochs"))
    max_length = _select(cfg, "data.max_length")

    source, path = _select(cfg, "data.source"), _select(cfg, "data.path")
    if source in ("csv", "aclimdb"):
        what = "a CSV file with text and label columns" if source == "csv" else "the extracted aclImdb folder"
        if not path:
            raise UserError(f"data.source={source} needs data.path=<{what}>")
        if not Path(path).expanduser().exists():
            raise UserError(f"data.path={path}: no such {'file' if source == 'csv' else 'folder'}; "
                            f"give the path of {what}")

    # A model preset that fits the task (`task=`, conf/task/), and the task's own options.
    lm = cfg.get("lm")
    check_task(str(cfg.get("task") or "classifier"), str(_select(cfg, "model.family")), str(_select(cfg, "model.name")),
               {k: _select(cfg, f"data.{k}") for k in ("tokenizer", "truncation")},
               OmegaConf.to_container(lm, resolve=True) if lm is not None else None,
               cfg.model.get("size"), list(OmegaConf.select(cfg, "model.recipe.sizes", default=None) or []))

    # The data module's own argument checks (sizes, lengths, limits), without importing the data stack.
    check_data_options(**{k: _select(cfg, f"data.{k}") for k in cfg.data if k not in ("_target_", "cache_dir")})

    # Any model on a checkpoint's tokenizer (transformers, and RNNs on MiniLM's WordPiece): its
    # tokenizer refuses longer inputs, so say so before anything is written.
    if _select(cfg, "data.tokenizer") == "pretrained":
        pretrained = _select(cfg, "data.pretrained")
        limit = _checkpoint_length_limit(pretrained)
        if limit is not None and max_length > limit:
            raise UserError(f"data.max_length={max_length} is larger than model.pretrained={pretrained} "
                            f"allows ({limit} positions); set data.max_length<={limit}")

    check_loggers(cfg)  # an optional tracker that is not installed: name its extra

    resume, ckpt_path = cfg.get("resume"), cfg.get("ckpt_path")
    if resume not in RESUME_CHOICES:
        raise UserError(f"resume={resume}: unknown; use resume=auto (continue the latest run of this "
                        "config) or ckpt_path=<file.ckpt>")
    if resume and ckpt_path:
        raise UserError("resume=auto and ckpt_path are both set; use one of them")
    if ckpt_path and not Path(ckpt_path).expanduser().is_file():
        raise UserError(f"ckpt_path={ckpt_path}: no such file; give a .ckpt file (e.g. a run's "
                        "checkpoints/last.ckpt) or use resume=auto")
