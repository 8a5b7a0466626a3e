"""Baseline 3: a plain PyTorch training loop over this project's own batches and model.

Same data module loader, model, optimiser, precision and gradient clipping as the Lightning path,
with nothing else: it shows what Lightning itself costs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from imdb_lm.bench.harness import StepFlops, StepWindow, autocast
from imdb_lm.bench.workload import Workload, to_device


class PlainLoopSide:
    name = "plain_loop"
    flush_denormals = True

    def __init__(self, work: Workload, flops: StepFlops | None = None):
        self.work, self.flops = work, flops
        self.precision = work.precision
        self.description = (f"plain PyTorch loop over this project's batches and model, "
                            f"precision {work.precision}")
        self.model = work.make_model().to(work.device)
        cfg = {k: v for k, v in self.model.optimizer_cfg.items() if k != "weight_decay"}
        self.optimizer = instantiate({**cfg, "_partial_": True})(self.model._param_groups())
        self.train = work.train_slice()

    def _epoch(self, window: StepWindow, seed: int, limit: int | None = None) -> None:
        work, model = self.work, self.model
        model.train()
        loader = work.datamodule_on(self.train, seed).train_dataloader()
        window.start_now()
        for step, batch in enumerate(loader):
            if limit is not None and step >= limit:
                break
            batch = to_device(batch, work.device)
            with autocast(work.precision, work.device):
                logits = model(batch["input_ids"], batch["attention_mask"], batch["lengths"]).float()
            loss = F.cross_entropy(logits, batch["labels"])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if work.clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), work.clip)
            self.optimizer.step()
            size, length = batch["input_ids"].shape
            window.step_done(size, int(batch["lengths"].sum()), size * length,
                             self.flops(size, length) if self.flops else 0.0)

    def warmup(self, steps: int) -> None:
        self._epoch(StepWindow(0, self.work.device), seed=10_000, limit=steps)

    def train_repeat(self, repeat: int) -> dict:
        window = StepWindow(0, self.work.device)
        self._epoch(window, seed=repeat)
        return window.record()
