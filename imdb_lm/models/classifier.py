"""Shared LightningModule base: loss, steps, optimizer and scheduler wiring.

Metrics and timing live in MetricsTimingCallback (imdb_lm/callbacks/metrics.py), fed by what the steps return, so
both model families are measured by the same code.
"""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from lightning.fabric.plugins.precision.amp import _optimizer_handles_unscaling

from imdb_lm.models.options import check_training_options


def lr_scheduler(optimizer: torch.optim.Optimizer, cfg: dict, total_steps: int):
    """The per-step schedule of a `conf/scheduler` config (None for `none`): linear warmup over
    `warmup_ratio` of `total_steps`, then linear or cosine decay to `min_lr_ratio` of the rate."""
    name = cfg.get("name", "none")
    if name == "none":
        return None
    total = max(1, total_steps)
    warmup = int(cfg.get("warmup_ratio", 0.1) * total)
    min_ratio = float(cfg.get("min_lr_ratio", 0.0))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if name == "cosine":
            return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        return min_ratio + (1 - min_ratio) * (1 - progress)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def unscale_for_clipping(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> bool:
    """Unscale fp16 gradients before clipping where nobody else has: Lightning's mixed-precision plugin
    unscales before clipping only for optimizers that do not unscale inside their step (fused ones do).
    Returns whether it unscaled them here. (The plugin's own rule decides which optimizers it leaves
    scaled, so both sides agree.)"""
    if scaler is None or not scaler.is_enabled() or not _optimizer_handles_unscaling(optimizer):
        return False
    scaler.unscale_(optimizer)
    return True


class SequenceClassifier(L.LightningModule):
    family = "base"

    def __init__(self, optimizer: dict | None = None, scheduler: dict | None = None):
        super().__init__()
        self.optimizer_cfg = dict(optimizer or {"_target_": "torch.optim.AdamW", "lr": 1e-3})
        self.scheduler_cfg = dict(scheduler or {"name": "none"})
        check_training_options(self.optimizer_cfg, self.scheduler_cfg)

    # subclasses map a padded batch to logits [batch, 2] and expose their input embedding layer
    # (what Integrated Gradients attributes to)
    def embeddings(self) -> torch.nn.Module:
        raise NotImplementedError

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _shared_step(self, batch: dict) -> dict:
        logits = self(batch["input_ids"], batch["attention_mask"], batch["lengths"]).float()
        loss = F.cross_entropy(logits, batch["labels"])
        return {"loss": loss, "logits": logits.detach(), "labels": batch["labels"], "index": batch["index"],
                "tokens": batch["lengths"].sum()}

    def training_step(self, batch: dict, batch_idx: int) -> dict:
        return self._shared_step(batch)

    def validation_step(self, batch: dict, batch_idx: int) -> dict:
        return self._shared_step(batch)

    def test_step(self, batch: dict, batch_idx: int) -> dict:
        return self._shared_step(batch)

    def predict_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self(batch["input_ids"], batch["attention_mask"], batch["lengths"]).float()
        return logits.softmax(-1)[:, 1]

    # ---- optimisation ---------------------------------------------------------------------
    def _param_groups(self) -> list[dict]:
        """No weight decay on biases, norms and embeddings' padding-free scale parameters."""
        decay, no_decay = [], []
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            is_norm_or_bias = param.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")
            (no_decay if is_norm_or_bias else decay).append(param)
        wd = self.optimizer_cfg.get("weight_decay", 0.0) or 0.0
        return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]

    def configure_optimizers(self):
        cfg = {k: v for k, v in self.optimizer_cfg.items() if k != "weight_decay"}
        cfg["_partial_"] = True
        # Plain lists, not OmegaConf's ListConfig: older torch keeps `betas` as given in the param
        # groups, and a checkpoint holding a ListConfig is refused by weights-only loading.
        cfg["_convert_"] = "all"
        optimizer = instantiate(cfg)(self._param_groups())
        if self.scheduler_cfg.get("name", "none") == "none":  # no step count needed (may be unbounded)
            return optimizer
        scheduler = lr_scheduler(optimizer, self.scheduler_cfg, int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        """Clip here, not through Lightning's precision plugin, which refuses to clip for fused optimizers
        (the configs' default) under fp16: they unscale gradients inside their own step, so the plugin
        never unscales them. Under fp16 (16-mixed) the gradient scaler unscales them first here; its step
        then sees they are unscaled and still skips steps with inf/NaN gradients. bf16 and fp32 have no
        scaler. The optimizers stay fused under every precision."""
        if not gradient_clip_val:
            return
        unscale_for_clipping(optimizer, getattr(self.trainer.precision_plugin, "scaler", None))
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if str(gradient_clip_algorithm) == "value":
            torch.nn.utils.clip_grad_value_(params, gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)

    # ---- size and compute (recorded in metrics.json) -----------------------------------------
    def embedding_block(self) -> torch.nn.Module:
        """The input-embedding parameters left out of the non-embedding count (Kaplan et al. 2020
        leave them out too: a bigger vocabulary table adds parameters but no compute per token)."""
        return self.embeddings()

    def count_parameters(self) -> dict:
        params = list(self.parameters())  # shared (tied) parameters once
        embedding = {id(p) for p in self.embedding_block().parameters()}
        return {"total": sum(p.numel() for p in params),
                "trainable": sum(p.numel() for p in params if p.requires_grad),
                "non_embedding": sum(p.numel() for p in params if id(p) not in embedding)}

    def forward_flops_per_token(self, length: int) -> float:
        """Forward FLOPs per token of a `length`-token review (2 per multiply-add; each family says how
        it counts them)."""
        raise NotImplementedError
