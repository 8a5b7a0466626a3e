"""This project's path, measured as a user runs it: the Lightning Trainer built from the train
config (precision, gradient clipping) with the metrics callback of every real run, over the data
module's length-bucketed, dynamically padded batches of the cached tokenized splits."""

from __future__ import annotations

import copy
import dataclasses
import time

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

from imdb_lm.bench.harness import StepFlops, StepWindow, autocast, correct_over, count_flops, sync
from imdb_lm.bench.workload import Workload, to_device
from imdb_lm.callbacks.metrics import MetricsTimingCallback
from imdb_lm.data.batching import BucketBatchSampler, PadCollate, TokenizedReviews
from imdb_lm.models.frozen import FrozenForward


class _Clock(L.Callback):
    def __init__(self, window: StepWindow, flops: StepFlops | None):
        self.window, self.flops = window, flops

    def on_train_epoch_start(self, trainer, pl_module):
        self.window.start_now()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        size, length = batch["input_ids"].shape
        self.window.step_done(size, int(batch["lengths"].sum()), size * length,
                              self.flops(size, length) if self.flops else 0.0)


def sorted_batches(data: TokenizedReviews, batch_size: int, pad_id: int, device: torch.device) -> list[dict]:
    collate = PadCollate(pad_id)
    return [to_device({**collate([data[i] for i in rows]), "n": len(rows)}, device)
            for rows in BucketBatchSampler(data.lengths, batch_size, shuffle=False)]


def transformer_flops(work: Workload, model: torch.nn.Module) -> StepFlops:
    """FLOPs of a training step by shape, counted on this model (the baselines share its architecture)."""
    device = work.device
    model.to(device)

    def count_shape(batch: int, length: int) -> int:
        ids = torch.randint(1000, 2000, (batch, length), device=device)
        mask, lengths = torch.ones_like(ids), torch.full((batch,), length, device=device)

        def step():
            with autocast(work.precision, device):
                logits = model(ids, mask, lengths).float()
            F.cross_entropy(logits, torch.zeros(batch, dtype=torch.long, device=device)).backward()

        flops = count_flops(step)
        model.zero_grad(set_to_none=True)
        return flops

    return StepFlops(count_shape)


class LightningSide:
    name = "lightning"
    flush_denormals = True  # train.run() sets it for every run

    def __init__(self, work: Workload, flops: StepFlops | None = None):
        self.work, self.flops = work, flops
        self.precision = work.precision
        self.description = (f"this project: Lightning Trainer, length-bucketed dynamic padding, "
                            f"precision {work.precision}")
        self.model = work.make_model()
        self.train = work.train_slice()
        self._infer_batches = None

    def _trainer(self, window: StepWindow | None, epochs: int = 1, limit_batches: int | None = None):
        callbacks = [MetricsTimingCallback()] + ([_Clock(window, self.flops)] if window else [])
        return instantiate(self.work.cfg.trainer, max_epochs=epochs, max_steps=-1,
                           limit_train_batches=limit_batches, limit_val_batches=0, num_sanity_val_steps=0,
                           val_check_interval=None, logger=False, enable_checkpointing=False,
                           enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks)

    def warmup(self, steps: int) -> None:
        self._trainer(None, limit_batches=steps).fit(
            self.model, datamodule=self.work.datamodule_on(self.train, seed=10_000))

    def train_repeat(self, repeat: int) -> dict:
        """One pass over the training slice (every bucket length, so no lucky short batches)."""
        window = StepWindow(0, self.work.device)
        self._trainer(window).fit(self.model, datamodule=self.work.datamodule_on(self.train, seed=repeat))
        return window.record()

    def _forward(self, batch: dict) -> torch.Tensor:
        with autocast(self.work.precision, self.work.device):
            return self.model(batch["input_ids"], batch["attention_mask"], batch["lengths"])

    def inference_batches(self) -> list[dict]:
        if self._infer_batches is None:
            self._infer_batches = self.work.our_inference_batches()
        return self._infer_batches

    def prepare_inference(self) -> None:
        self.model.to(self.work.device).eval()
        sync(self.work.device)

    def forward_batch(self, batch: dict) -> torch.Tensor:
        return self._forward(batch)

    def forward_one(self, ids: torch.Tensor) -> torch.Tensor:
        lengths = torch.tensor([ids.shape[1]], device=ids.device)
        with autocast(self.work.precision, self.work.device):
            return self.model(ids, torch.ones_like(ids), lengths)

    def train_and_test(self, train: TokenizedReviews, epochs: int, seed: int) -> np.ndarray:
        """Accuracy parity: a fresh model (initialised and shuffled by `seed`) trained on `train` for
        `epochs`, then per-review correctness on the whole test split."""
        self.model = self.work.make_model(seed)
        self._trainer(None, epochs=epochs).fit(self.model, datamodule=self.work.datamodule_on(train, seed=seed))
        self.prepare_inference()
        batches = sorted_batches(self.work.split("test"), self.work.infer_batch_size,
                                 self.work.datamodule.pad_id, self.work.device)
        return correct_over(self._forward, batches)


class LightningAttentionDropoutSide(LightningSide):
    """This project's path exactly, but for the checkpoint's attention dropout (`model.attention_dropout=null`,
    0.1 for MiniLM) instead of 0: against the `lightning` side it measures what the dropout choice alone
    gains (SDPA's fused kernel instead of a materialised, masked attention matrix), a change of the
    regularisation rather than of the engineering. Training only (dropout is off at inference)."""

    name = "lightning_attention_dropout"

    def __init__(self, work: Workload, flops: StepFlops | None = None):
        cfg = copy.deepcopy(work.cfg)
        OmegaConf.update(cfg, "model.attention_dropout", None, merge=False)
        super().__init__(dataclasses.replace(work, cfg=cfg), flops)
        self.description = (f"this project's path with the checkpoint's attention dropout "
                            f"(model.attention_dropout=null), precision {work.precision}")


class CompiledInferenceSide:
    """This project's batch inference with `compile=true` (`python -m imdb_lm.predict ... compile=true`):
    the trained `lightning` side's model and batches, through torch.compile with frozen weights.
    Compiling happens in `prepare_inference` (timed apart, as `first_pass_seconds`)."""

    name = "lightning_compiled"
    flush_denormals = True

    def __init__(self, ours: LightningSide):
        self.ours, self.work = ours, ours.work
        self.description = (f"this project's inference with compile=true: torch.compile, frozen weights, "
                            f"length-sorted batches, precision {ours.work.precision}")
        self.forward = None
        self.first_pass_seconds = None

    def inference_batches(self) -> list[dict]:
        return self.ours.inference_batches()

    def prepare_inference(self) -> None:
        """Compile on the final weights: one pass over the sample and one single review (batch sizes
        1 and above are compiled apart)."""
        self.ours.prepare_inference()
        self.forward = FrozenForward(self.ours.model, lambda: autocast(self.work.precision, self.work.device))
        start = time.perf_counter()
        with torch.inference_mode():
            for batch in self.inference_batches():
                self.forward_batch(batch)
            self.forward_one(self.inference_batches()[0]["input_ids"][:1])
        sync(self.work.device)
        self.first_pass_seconds = time.perf_counter() - start

    def forward_batch(self, batch: dict) -> torch.Tensor:
        return self.forward(batch["input_ids"], batch["attention_mask"], batch["lengths"])

    def forward_one(self, ids: torch.Tensor) -> torch.Tensor:
        return self.forward(ids, torch.ones_like(ids), torch.tensor([ids.shape[1]], device=ids.device))
