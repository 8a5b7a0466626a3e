"""What every side of a comparison shares: the composed train config, the tokenized frozen splits,
the training slice, the inference sample and the latency sample.

The config is composed from the same `conf/` as `python -m imdb_lm.train`, so `models=transformer`
here is exactly the model a training run builds (size, max length, precision recipe).
"""

from __future__ import annotations

import copy
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import torch
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from imdb_lm.config.compose import compose_train
from imdb_lm.data.batching import BucketBatchSampler, PadCollate, TokenizedReviews
from imdb_lm.data.datamodule import IMDBDataModule
from imdb_lm.devices import pick_device
from imdb_lm.errors import UserError
from imdb_lm.models.build import build_model


def compose_config(model: str, overrides: list[str]) -> DictConfig:
    cache = os.environ.get("IMDB_LM_CACHE", str(Path.cwd() / ".cache" / "imdb_lm"))
    try:
        cfg = compose_train([f"model={model}", f"paths.cache_dir={cache}", "paths.run_dir=.", *overrides])
    except HydraException as err:
        first = str(err).strip().splitlines()[0]
        raise UserError(f"--model {model} / --set {' '.join(overrides) or '(none)'}: {first}") from None
    OmegaConf.resolve(cfg)
    return cfg


def workload_device(cfg: DictConfig, requested: str) -> torch.device:
    """The requested device; `auto` follows a config that pins the CPU (trainer=cpu)."""
    if requested == "auto" and cfg.trainer.accelerator == "cpu":
        requested = "cpu"
    return pick_device(requested, option="--device")


@dataclass
class Workload:
    cfg: DictConfig
    device: torch.device
    datamodule: IMDBDataModule
    train_indices: list[int]
    infer_indices: list[int]
    latency_indices: list[int]
    infer_batch_size: int
    seed: int = 0
    family: str = field(init=False)

    def __post_init__(self):
        self.family = self.cfg.model.family

    @property
    def precision(self) -> str:
        return str(self.cfg.trainer.precision)

    @property
    def clip(self) -> float | None:
        return self.cfg.trainer.gradient_clip_val

    @property
    def batch_size(self) -> int:
        return int(self.cfg.data.batch_size)

    @property
    def max_length(self) -> int:
        return int(self.cfg.data.max_length)

    def split(self, name: str) -> TokenizedReviews:
        return self.datamodule.datasets[name]

    def train_slice(self) -> TokenizedReviews:
        return self.split("train").subset(self.train_indices)

    def make_model(self, seed: int | None = None):
        torch.manual_seed(self.seed if seed is None else seed)
        return build_model(self.cfg, self.datamodule)

    def datamodule_on(self, train: TokenizedReviews, seed: int) -> IMDBDataModule:
        """A copy of the data module whose train split is `train` (and whose shuffling uses `seed`)."""
        dm = copy.copy(self.datamodule)
        dm.datasets = {**self.datamodule.datasets, "train": train}
        dm.seed = seed
        return dm

    def our_inference_batches(self) -> list[dict]:
        """The inference sample as this project batches it: sorted by length, padded per batch."""
        data = self.split("test").subset(self.infer_indices)
        sampler = BucketBatchSampler(data.lengths, self.infer_batch_size, shuffle=False)
        collate = PadCollate(self.datamodule.pad_id)
        return [to_device({**collate([data[i] for i in rows]), "n": len(rows)}, self.device) for rows in sampler]


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def build_workload(model: str, overrides: list[str], device: str, train_limit: int, infer_limit: int,
                   latency_samples: int, infer_batch_size: int | None, seed: int = 0) -> Workload:
    cfg = compose_config(model, overrides)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    rng = random.Random(seed)
    n_train, n_test = len(datamodule.datasets["train"]), len(datamodule.datasets["test"])
    train_indices = rng.sample(range(n_train), min(train_limit, n_train))
    infer_indices = rng.sample(range(n_test), min(infer_limit, n_test))
    step = max(1, n_test // max(1, latency_samples))
    latency_indices = list(range(0, n_test, step))[:latency_samples]
    return Workload(cfg, workload_device(cfg, device), datamodule, train_indices, infer_indices,
                    latency_indices, infer_batch_size or int(datamodule.eval_batch_size), seed)
