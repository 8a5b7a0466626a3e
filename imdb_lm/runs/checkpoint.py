"""Find a trained run from a checkpoint path or run folder and rebuild its model and tokenizer.

A run folder written by `imdb_lm.train` holds `config.yaml` (the resolved config), `metrics.json`,
`tokenizer.json` (recurrent models) and `checkpoints/{best,last}.ckpt`. The model class comes from
the run's model family (never from an arbitrary `_target_`), its constructor arguments from the
checkpoint's saved hyperparameters, and the weights are read with `torch.load(weights_only=True)`:
a checkpoint that needs to execute pickled code to load is refused.
"""

from __future__ import annotations

import contextlib
import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig, OmegaConf

from imdb_lm.config.resolvers import bf16_native
from imdb_lm.data.tokenize import PretrainedTokenizer, WordTokenizer
from imdb_lm.devices import pick_device
from imdb_lm.errors import UserError
from imdb_lm.models.build import model_class
from imdb_lm.models.pretrained import resolve_checkpoint
from imdb_lm.runs.folders import (
    BEST_CHECKPOINT,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    LAST_CHECKPOINT,
    METRICS_FILE,
    TOKENIZER_FILE,
)
from imdb_lm.runs.records import read_metrics

if TYPE_CHECKING:  # the class is built through models/build.py's registry
    from imdb_lm.models.classifier import SequenceClassifier

CHECKPOINT_NAMES = (Path(BEST_CHECKPOINT).name, Path(LAST_CHECKPOINT).name)


@dataclass
class LoadedRun:
    run_dir: Path
    ckpt_path: Path
    cfg: DictConfig
    record: dict | None  # metrics.json, when the run finished writing it
    model: SequenceClassifier
    tokenizer: WordTokenizer | PretrainedTokenizer

    @property
    def family(self) -> str:
        return self.model.family

    @property
    def device(self) -> torch.device:
        return self.model.device

    def autocast(self):
        """The precision the run trained with (bf16 autocast for bf16-mixed), for fast inference."""
        precision = str(self.cfg.trainer.get("precision", "32-true"))
        # A bf16 run served where bf16 is only emulated runs in fp32 (same weights, far faster).
        if precision.startswith("bf16") and bf16_native(self.device.type):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        if precision.startswith("16") and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def special_positions(self, ids: list[int]) -> set[int]:
        return special_positions(self.tokenizer, ids)


def special_positions(tokenizer, ids: list[int]) -> set[int]:
    """Positions of the tokens the tokenizer adds around the text ([CLS], [SEP]): never explained."""
    if isinstance(tokenizer, PretrainedTokenizer):
        head, tail = len(tokenizer.prefix), len(tokenizer.suffix)
        return set(range(head)) | set(range(len(ids) - tail, len(ids)))
    return set()


def find_checkpoint(path: str | Path) -> tuple[Path, Path]:
    """(run folder, checkpoint file) from either of them."""
    path = Path(str(path)).expanduser()
    if not path.exists():
        raise UserError(f"ckpt={path}: no such file or folder; give a run folder (outputs/runs/<run>) "
                        "or its checkpoints/best.ckpt")
    if path.is_dir():
        for folder in (path / CHECKPOINTS_DIR, path):
            for name in CHECKPOINT_NAMES:
                if (folder / name).is_file():
                    ckpt = folder / name
                    return (folder.parent if folder.name == CHECKPOINTS_DIR else folder), ckpt
        raise UserError(f"ckpt={path}: no checkpoints/best.ckpt or last.ckpt inside; is it a run folder "
                        "written by imdb_lm.train?")
    run_dir = path.parent.parent if path.parent.name == CHECKPOINTS_DIR else path.parent
    return run_dir, path


def read_checkpoint(ckpt: Path, option: str = "ckpt") -> dict:
    """The one safe checkpoint loader: tensors and plain data only; pickled code is refused, not
    run. `option` names the command-line option the path came from, for the error."""
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing; the error says it all
            warnings.simplefilter("ignore")
            data = torch.load(ckpt, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL \S+|Unsupported operand \S+", str(err))
        reason = found.group(0)[:120] if found else "unsafe pickle content"
        raise UserError(f"{option}={ckpt}: refused: loading it would execute code or build objects other "
                        f"than tensors and plain data ({reason}); only use checkpoints written by "
                        "imdb_lm.train") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise UserError(f"{option}={ckpt}: not a readable PyTorch checkpoint ({type(err).__name__}: "
                        f"{str(err).splitlines()[0][:120] if str(err) else 'empty'}); is the file complete?") from None
    if not isinstance(data, dict) or "state_dict" not in data or "hyper_parameters" not in data:
        raise UserError(f"{option}={ckpt}: lacks state_dict/hyper_parameters; it was not saved by imdb_lm.train")
    return data


def load_run_config(run_dir: Path) -> DictConfig:
    config = run_dir / CONFIG_FILE
    if not config.is_file():
        raise UserError(f"{config}: missing; the checkpoint must sit in its run folder "
                        "(<run>/checkpoints/best.ckpt next to <run>/config.yaml)")
    return OmegaConf.load(config)


def build_tokenizer(run_dir: Path, cfg: DictConfig) -> WordTokenizer | PretrainedTokenizer:
    data = cfg.data
    if data.tokenizer == "word":
        vocab = run_dir / TOKENIZER_FILE
        if not vocab.is_file():
            raise UserError(f"{vocab}: missing; a recurrent run keeps its vocabulary there (re-train, or "
                            "copy tokenizer.json from the run's cache folder)")
        return WordTokenizer.load(vocab, int(data.max_length), str(data.truncation))
    ckpt = resolve_checkpoint(str(data.pretrained), option="data.pretrained")
    return PretrainedTokenizer(ckpt.source, int(data.max_length), str(data.truncation), **ckpt.kwargs())


@contextlib.contextmanager
def _quiet_transformers():
    """Building the transformer from its base checkpoint reports a freshly initialised classifier
    head; here the trained head is loaded right after, so that report would only mislead."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()


def load_run(path: str | Path, device: str = "auto") -> LoadedRun:
    run_dir, ckpt_path = find_checkpoint(path)
    cfg = load_run_config(run_dir)
    if cfg.get("task", "classifier") != "classifier":  # predict, evaluate and explain classify
        raise UserError(f"ckpt={path}: a {cfg.task} run ({cfg.model.name}), not a classifier; give a run of "
                        "`python -m imdb_lm.train` without task=, or sample from this one with "
                        f"`python -m imdb_lm.generate ckpt={path} prompt=...`")
    data = read_checkpoint(ckpt_path)
    model_cls = model_class(str(cfg.model.get("family", "")), where=f"{run_dir / 'config.yaml'}: model.family")
    hparams = dict(data["hyper_parameters"])
    try:
        with _quiet_transformers():
            model = model_cls(**hparams)
        model.load_state_dict(data["state_dict"])
    except (TypeError, RuntimeError) as err:
        raise UserError(f"ckpt={ckpt_path}: weights do not fit a {model_cls.__name__} "
                        f"({str(err).splitlines()[0][:160]})") from None
    model.to(pick_device(device)).eval()
    record = read_metrics(run_dir) if (run_dir / METRICS_FILE).is_file() else None
    return LoadedRun(run_dir, ckpt_path, cfg, record, model, build_tokenizer(run_dir, cfg))
