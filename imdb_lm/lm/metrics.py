"""What a language-model run measures, for metrics.json (the classifier's is callbacks/metrics.py).

Per split: loss (nats per predicted token), perplexity, bits per character (of the lowercased text
the wordpieces cover; val and test) and perplexity by the position of the predicted token
(base.POSITION_BUCKETS). Over training: target tokens seen, tokens/s, and validation perplexity
against tokens seen and seconds of training (one history entry per validation). Sums are kept in
float64 on the CPU, so a split's perplexity is exact whatever its batching.
"""

from __future__ import annotations

import math
import statistics
import time

import lightning as L
import torch

from imdb_lm.callbacks.metrics import MetricsTimingCallback, peak_rss_mb
from imdb_lm.callbacks.stability import StabilityCallback
from imdb_lm.lm.base import POSITION_BUCKETS

STAGES = ("train", "val", "test")
BUCKET_NAMES = [f"{low}-{high}" for low, high in POSITION_BUCKETS]


class Totals:
    """Summed negative log-likelihood and counts of one split's pass."""

    def __init__(self):
        self.nll = self.tokens = self.chars = self.reviews = 0.0
        self.bucket_nll = torch.zeros(len(POSITION_BUCKETS), dtype=torch.float64)
        self.bucket_tokens = torch.zeros(len(POSITION_BUCKETS), dtype=torch.float64)

    def add(self, nll: torch.Tensor, buckets: torch.Tensor, reviews: int, chars: int = 0) -> None:
        nll, buckets = nll.detach().double().cpu(), buckets.cpu()
        self.nll += float(nll.sum())
        self.tokens += nll.numel()
        self.bucket_nll += torch.bincount(buckets, weights=nll, minlength=len(POSITION_BUCKETS))
        self.bucket_tokens += torch.bincount(buckets, minlength=len(POSITION_BUCKETS)).double()
        self.reviews += reviews
        self.chars += chars

    def values(self) -> dict:
        loss = self.nll / self.tokens if self.tokens else float("nan")
        values = {"loss": loss, "ppl": math.exp(loss) if self.tokens else float("nan"),
                  "tokens": int(self.tokens), "reviews": int(self.reviews),
                  "ppl_by_position": {name: math.exp(float(s / n)) if n else None for name, s, n in
                                      zip(BUCKET_NAMES, self.bucket_nll, self.bucket_tokens, strict=True)}}
        if self.chars:
            values.update(bpc=self.nll / math.log(2) / self.chars, chars=int(self.chars))
        return values

    def state_dict(self) -> dict:
        return {"nll": self.nll, "tokens": self.tokens, "chars": self.chars, "reviews": self.reviews,
                "bucket_nll": self.bucket_nll.tolist(), "bucket_tokens": self.bucket_tokens.tolist()}

    def load_state_dict(self, state: dict) -> None:
        self.nll, self.tokens, self.chars, self.reviews = state["nll"], state["tokens"], state["chars"], state["reviews"]
        self.bucket_nll = torch.tensor(state["bucket_nll"], dtype=torch.float64)
        self.bucket_tokens = torch.tensor(state["bucket_tokens"], dtype=torch.float64)


class LMMetricsCallback(L.Callback):
    def __init__(self, latency_samples: int = 50, latency_warmup: int = 5):
        super().__init__()
        self.latency_samples, self.latency_warmup = latency_samples, latency_warmup
        self.totals = {stage: Totals() for stage in STAGES}
        self.history: list[dict] = []
        self.epoch_seconds: list[float] = []
        self.train_tokens = self.train_reviews = 0  # predicted (target) tokens and reviews trained on
        self.train_seconds = 0.0
        self.fit_seconds = None
        self.best_val: dict = {"loss": None, "epoch": None}
        self.test_record: dict = {}
        self._epoch_start = self._fit_start = self._test_start = None

    # single-review latency: the classifier's measurement (a forward over one whole review)
    measure_latency = MetricsTimingCallback.measure_latency

    def _add(self, stage: str, trainer, outputs: dict) -> None:
        chars = 0
        counts = getattr(trainer.datamodule, "char_counts", {}).get(stage)
        if counts is not None:
            chars = sum(counts[i] for i in outputs["index"].tolist())
        self.totals[stage].add(outputs["nll"], outputs["buckets"], int(outputs["index"].numel()), chars)

    def _finish(self, stage: str, pl_module) -> dict:
        values = self.totals[stage].values()
        self.totals[stage] = Totals()
        for name in ("loss", "ppl", "bpc"):
            if name in values:
                pl_module.log(f"{stage}/{name}", values[name], prog_bar=name == "ppl", sync_dist=False)
        return values

    # ---- fit ------------------------------------------------------------------------------
    def on_fit_start(self, trainer, pl_module):
        self._fit_start = time.perf_counter()
        if torch.cuda.is_available() and pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)

    def on_train_start(self, trainer, pl_module):
        self._epoch_start = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._add("train", trainer, outputs)
        self.train_tokens += int(outputs["nll"].numel())
        self.train_reviews += int(outputs["index"].numel())

    def _entry(self, epoch: int) -> dict:
        if not self.history or self.history[-1]["epoch"] != epoch:
            self.history.append({"epoch": epoch})
        return self.history[-1]

    def on_train_epoch_end(self, trainer, pl_module):
        seconds = time.perf_counter() - self._epoch_start
        self.epoch_seconds.append(seconds)
        self.train_seconds += seconds
        values = self._finish("train", pl_module)
        pl_module.log("time/epoch_seconds", seconds)
        self._entry(trainer.current_epoch).update(train_loss=values["loss"], train_ppl=values["ppl"],
                                                  epoch_seconds=seconds)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking:
            self._add("val", trainer, outputs)

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            self.totals["val"] = Totals()
            return
        values = self._finish("val", pl_module)
        trained = self.train_seconds + (time.perf_counter() - self._epoch_start if self._epoch_start else 0.0)
        # A new entry per validation (val_check_interval may validate several times an epoch): the
        # learning curve against tokens seen and training time.
        self.history.append({"epoch": trainer.current_epoch, "step": trainer.global_step,
                             "tokens_seen": self.train_tokens, "train_seconds": trained,
                             **{f"val_{k}": v for k, v in values.items() if k in ("loss", "ppl", "bpc")}})
        if self.best_val["loss"] is None or values["loss"] < self.best_val["loss"]:
            self.best_val = {**values, "epoch": trainer.current_epoch, "step": trainer.global_step}

    def on_fit_end(self, trainer, pl_module):
        self.fit_seconds = time.perf_counter() - self._fit_start

    # ---- test -----------------------------------------------------------------------------
    def on_test_epoch_start(self, trainer, pl_module):
        self.totals["test"] = Totals()
        self._test_start = time.perf_counter()

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._add("test", trainer, outputs)

    def on_test_epoch_end(self, trainer, pl_module):
        seconds = time.perf_counter() - self._test_start
        reviews = self.totals["test"].reviews
        self.test_record = {**self._finish("test", pl_module), "seconds": seconds,
                            "samples_per_s": reviews / seconds if seconds else None}

    # ---- resume -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"history": self.history, "epoch_seconds": self.epoch_seconds, "best_val": self.best_val,
                "train_tokens": self.train_tokens, "train_reviews": self.train_reviews,
                "train_seconds": self.train_seconds, "train_totals": self.totals["train"].state_dict()}

    def setup(self, trainer, pl_module, stage: str) -> None:
        self._stage = stage

    def load_state_dict(self, state_dict: dict) -> None:
        if getattr(self, "_stage", "fit") != "fit":  # testing the best checkpoint restores callbacks too
            return
        for key in ("history", "epoch_seconds", "best_val", "train_tokens", "train_reviews", "train_seconds"):
            setattr(self, key, state_dict[key])
        self.totals["train"].load_state_dict(state_dict["train_totals"])

    def summary(self, pl_module: L.LightningModule) -> dict:
        cuda_peak = None
        if torch.cuda.is_available() and pl_module.device.type == "cuda":
            cuda_peak = torch.cuda.max_memory_allocated(pl_module.device) / 2**20
        def per_s(count: float) -> float | None:
            return count / self.train_seconds if self.train_seconds else None

        return {"fit_seconds": self.fit_seconds, "epoch_seconds": self.epoch_seconds,
                "mean_epoch_seconds": statistics.mean(self.epoch_seconds) if self.epoch_seconds else None,
                "train_tokens": self.train_tokens, "train_samples_per_s": per_s(self.train_reviews),
                "train_tokens_per_s": per_s(self.train_tokens),
                "test_seconds": self.test_record.get("seconds"), "test_samples_per_s": self.test_record.get("samples_per_s"),
                "peak_rss_mb": peak_rss_mb(), "cuda_peak_mb": cuda_peak}


class LMStabilityCallback(StabilityCallback):
    """The classifier's stability signals (NaN loss stops the run; spikes and gradient norms are
    logged) without its validation-accuracy rule, which has no meaning for a language model."""

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        pass

    def on_validation_epoch_end(self, trainer, pl_module):
        pass
