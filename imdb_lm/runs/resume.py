"""Resuming training: which run to continue, whether a checkpoint fits this run, and the state
Lightning does not save itself.

Lightning's checkpoints restore weights, optimizer, scheduler, epoch and step; the training
loader saves its position inside the epoch (data/batching.py). `ResumeState` adds the random
number generators (dropout) and what the checkpoint was trained on (model, vocabulary, split
fingerprints), so a checkpoint from another model or data is refused with one clear line.
Checkpoints are read with `weights_only=True`: a file that would run code on load is refused.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from imdb_lm.atomic import write_text as write_text_atomic
from imdb_lm.errors import UserError
from imdb_lm.runs.checkpoint import read_checkpoint
from imdb_lm.runs.folders import KEY_FILE, LAST_CHECKPOINT, METRICS_FILE, is_locked
from imdb_lm.runs.key import config_key
from imdb_lm.runs.records import read_metrics


# ---- which run ------------------------------------------------------------------------------
def write_key(run_dir: Path, key: str) -> None:
    write_text_atomic(run_dir / KEY_FILE, key + "\n")


def runs_root(dir_template: str) -> Path:
    """The folder holding runs: the part of Hydra's run/sweep dir before the first `${...}`."""
    if "${" not in dir_template:
        return Path(dir_template).parent
    static = dir_template.split("${", 1)[0]
    return Path(static) if static.endswith("/") else Path(static).parent


def _record(run_dir: Path) -> dict | None:
    try:
        return read_metrics(run_dir / METRICS_FILE)
    except (OSError, ValueError):
        return None  # none yet (killed hard, or still running), or unreadable


def status_of(run_dir: Path) -> str | None:
    return (_record(run_dir) or {}).get("status")


@dataclass(frozen=True)
class PreviousRun:
    run_dir: Path
    status: str | None  # None: no metrics.json (killed hard, or still running)

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / LAST_CHECKPOINT

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "diverged")

    @property
    def resumable(self) -> bool:
        return not self.finished and self.checkpoint.is_file()

    @property
    def best_val_acc(self) -> float | None:
        return ((_record(self.run_dir) or {}).get("metrics") or {}).get("best_val_acc")


def latest_run(roots: list[Path], key: str, exclude: Path | None = None) -> PreviousRun | None:
    """The most recently started run with this config key (single runs and sweep jobs)."""
    found = []
    for root in dict.fromkeys(roots):
        for key_file in (*root.glob(f"*/{KEY_FILE}"), *root.glob(f"*/*/{KEY_FILE}")):
            run_dir = key_file.parent
            if exclude is not None and run_dir.resolve() == exclude.resolve():
                continue
            if key_file.read_text().strip() == key:
                found.append((key_file.stat().st_mtime_ns, run_dir))
    if not found:
        return None
    run_dir = max(found)[1]
    if is_locked(run_dir):
        raise UserError(f"resume=auto: the latest run of this config, {run_dir}, is still running "
                        "(its lock is held); wait for it or stop it first")
    return PreviousRun(run_dir, status_of(run_dir))


# ---- which checkpoint fits -------------------------------------------------------------------
def vocabulary_digest(tokenizer) -> str:
    backend = getattr(tokenizer, "hf", None) or tokenizer.tokenizer
    vocab = sorted(backend.get_vocab().items())
    return hashlib.sha256(json.dumps(vocab).encode()).hexdigest()[:16]


def run_meta(cfg: DictConfig, model: L.LightningModule, datamodule) -> dict:
    """What a checkpoint was trained on; stored in every checkpoint by ResumeState."""
    return {"model": str(cfg.model.name), "family": str(cfg.model.family), "class": type(model).__name__,
            "vocabulary": vocabulary_digest(datamodule.tokenizer), "splits": dict(datamodule.fingerprints)}


def check_checkpoint(path: str | Path, meta: dict, model: L.LightningModule, option: str) -> None:
    """Refuse (one line) a checkpoint from another model family, architecture, vocabulary or split."""
    ckpt = read_checkpoint(Path(path), option)
    saved = ckpt.get("callbacks", {}).get(ResumeState.__qualname__, {}).get("meta")
    if saved is None:
        raise UserError(f"{option}={path}: this checkpoint was not written by `imdb_lm.train` (no run "
                        "metadata); resume only from a run's checkpoints/last.ckpt")
    if saved["family"] != meta["family"] or saved["class"] != meta["class"]:
        raise UserError(f"{option}={path}: checkpoint is a {saved['family']} model ({saved['model']}), this run "
                        f"trains a {meta['family']} model ({meta['model']}); use model={saved['model']} "
                        "or a checkpoint of this model")
    if saved["vocabulary"] != meta["vocabulary"]:
        raise UserError(f"{option}={path}: checkpoint was trained with a different vocabulary (data or "
                        "tokenizer options differ); resume with the data.* options it was trained with")
    if saved["splits"] != meta["splits"]:
        changed = sorted(k for k in set(saved["splits"]) | set(meta["splits"])
                         if saved["splits"].get(k) != meta["splits"].get(k))
        raise UserError(f"{option}={path}: split fingerprint mismatch ({', '.join(changed)}): the checkpoint "
                        "was trained on other data; resume with the data options it was trained with")
    own = model.state_dict()
    wrong = [k for k, v in ckpt["state_dict"].items() if k not in own or own[k].shape != v.shape]
    missing = [k for k in own if k not in ckpt["state_dict"]]
    if wrong or missing:
        raise UserError(f"{option}={path}: checkpoint weights do not fit this model ({(wrong + missing)[0]} "
                        "differs); resume with the model.* options it was trained with")


# ---- state Lightning does not keep ------------------------------------------------------------
def capture_rng() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumeState(L.Callback):
    """Saves RNG states and run metadata in every checkpoint; restores the RNGs on resume."""

    def __init__(self, meta: dict):
        self.meta = meta
        self._rng_to_restore: dict | None = None

    def state_dict(self) -> dict:
        return {"rng": capture_rng(), "meta": self.meta}

    def load_state_dict(self, state_dict: dict) -> None:
        self._rng_to_restore = state_dict.get("rng")

    def on_train_start(self, trainer, pl_module) -> None:
        # After the restore and the sanity check, right before the first resumed batch.
        if self._rng_to_restore is not None:
            restore_rng(self._rng_to_restore)
            self._rng_to_restore = None


# ---- the decision ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ResumePlan:
    run_dir: Path | None = None  # a previous run folder to continue in (None: Hydra's new folder)
    ckpt_path: str | None = None
    finished: PreviousRun | None = None  # resume=auto found the config's latest run already done
    rank_zero: bool = True


def hydra_roots() -> list[Path]:
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = OmegaConf.to_container(HydraConfig.get(), resolve=False)
    return [runs_root(hydra_cfg["run"]["dir"]), runs_root(hydra_cfg["sweep"]["dir"])]


def announce(plan: ResumePlan) -> None:
    """Say what resume=auto decided (once: the CLI decides for single runs, train.run for sweep jobs)."""
    if plan.finished is not None:
        print(f"resume=auto: the latest run of this config, {plan.finished.run_dir.resolve()}, already "
              f"finished ({plan.finished.status}); nothing to resume")
    elif plan.run_dir is not None:
        print(f"resume=auto: continuing {plan.run_dir.resolve()} from {Path(plan.ckpt_path).resolve()}")
    else:
        print("resume=auto: no interrupted run of this config; starting a new one")


def plan_resume(cfg: DictConfig, roots: list[Path] | None = None) -> ResumePlan:
    """ckpt_path=<file>: resume from it in this run's folder. resume=auto: continue the latest run
    of the same config in its own folder; report it if it already finished; else start afresh.
    (The CLI turns resume=auto into ckpt_path + hydra.run.dir before Hydra starts, so Lightning's
    child processes see the same decision; this covers sweep jobs and direct calls.)"""
    from lightning.pytorch.utilities import rank_zero_only

    if rank_zero_only.rank != 0:
        return ResumePlan(ckpt_path=cfg.get("ckpt_path"), rank_zero=False)
    if cfg.get("resume") != "auto":
        return ResumePlan(ckpt_path=cfg.get("ckpt_path"))
    previous = latest_run(roots if roots is not None else hydra_roots(), config_key(cfg))
    if previous is None:
        return ResumePlan()
    if previous.finished:
        return ResumePlan(finished=previous)
    if previous.resumable:
        return ResumePlan(run_dir=previous.run_dir, ckpt_path=str(previous.checkpoint))
    return ResumePlan()  # killed before its first checkpoint: nothing to continue
