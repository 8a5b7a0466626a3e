"""MetricsTimingCallback: one measurement code path for both model families.

Quality: torchmetrics accuracy, F1, AUROC and mean loss for train/val/test (synchronised across
processes by torchmetrics). Speed: wall time per training epoch, train samples/s and tokens/s, total
fit time, test-set inference throughput, single-review latency (median and p95 over a fixed sample
of test reviews), peak memory, parameter counts. Everything ends up in `self.summary()`.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time

import lightning as L
import torch
import torchmetrics
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryF1Score

STAGES = ("train", "val", "test")


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


class MetricsTimingCallback(L.Callback):
    def __init__(self, latency_samples: int = 50, latency_warmup: int = 5):
        super().__init__()
        self.latency_samples, self.latency_warmup = latency_samples, latency_warmup
        self.metrics = {
            # The inputs are checked here once (probabilities and 0/1 labels by construction), not by
            # every metric at every step.
            stage: torchmetrics.MetricCollection({"acc": BinaryAccuracy(validate_args=False),
                                                  "f1": BinaryF1Score(validate_args=False),
                                                  "auroc": BinaryAUROC(validate_args=False),
                                                  "loss": torchmetrics.MeanMetric()})
            for stage in STAGES}
        self.history: list[dict] = []
        self.epoch_seconds: list[float] = []
        self.train_samples = self.train_tokens = 0
        self.train_seconds = 0.0
        self.fit_seconds = None
        self.best_val = {"acc": None, "epoch": None}
        self.test_record: dict = {}
        self.test_predictions: dict[int, float] = {}
        self._epoch_start = self._fit_start = self._test_start = None
        self._test_samples = 0

    # ---- helpers --------------------------------------------------------------------------
    def _update(self, stage: str, pl_module: L.LightningModule, outputs: dict) -> None:
        collection = self.metrics[stage]
        if next(iter(collection.values())).device != pl_module.device:  # moved once, not every step
            collection.to(pl_module.device)
        probs = outputs["logits"].float().softmax(-1)[:, 1]
        labels = outputs["labels"]
        for name, metric in collection.items():
            if name == "loss":
                metric.update(outputs["loss"].detach().float(), weight=labels.numel())
            else:
                metric.update(probs, labels)

    def _compute(self, stage: str, pl_module: L.LightningModule) -> dict[str, float]:
        values = {k: float(v) for k, v in self.metrics[stage].compute().items()}
        self.metrics[stage].reset()
        for name, value in values.items():
            pl_module.log(f"{stage}/{name}", value, prog_bar=name == "acc", sync_dist=False)
        return values

    # ---- fit ------------------------------------------------------------------------------
    def on_fit_start(self, trainer, pl_module):
        self._fit_start = time.perf_counter()
        if torch.cuda.is_available() and pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)

    def on_train_start(self, trainer, pl_module):
        # A run resumed inside an epoch gets no on_train_epoch_start for that epoch.
        self._epoch_start = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._update("train", pl_module, outputs)
        self.train_samples += int(batch["labels"].numel())
        self.train_tokens += int(outputs["tokens"])

    def on_train_epoch_end(self, trainer, pl_module):
        seconds = time.perf_counter() - self._epoch_start
        self.epoch_seconds.append(seconds)
        self.train_seconds += seconds
        values = self._compute("train", pl_module)
        pl_module.log("time/epoch_seconds", seconds)
        entry = self.history[-1] if self.history and self.history[-1]["epoch"] == trainer.current_epoch else None
        if entry is None:
            entry = {"epoch": trainer.current_epoch}
            self.history.append(entry)
        entry.update({f"train_{k}": v for k, v in values.items()}, epoch_seconds=seconds)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking:
            self._update("val", pl_module, outputs)

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            self.metrics["val"].reset()
            return
        values = self._compute("val", pl_module)
        entry = self.history[-1] if self.history and self.history[-1]["epoch"] == trainer.current_epoch else None
        if entry is None:
            entry = {"epoch": trainer.current_epoch}
            self.history.append(entry)
        entry.update({f"val_{k}": v for k, v in values.items()}, step=trainer.global_step)
        if self.best_val["acc"] is None or values["acc"] > self.best_val["acc"]:
            self.best_val = {"acc": values["acc"], "epoch": trainer.current_epoch, **values}

    def on_fit_end(self, trainer, pl_module):
        self.fit_seconds = time.perf_counter() - self._fit_start

    # ---- test -----------------------------------------------------------------------------
    def on_test_epoch_start(self, trainer, pl_module):
        self._test_samples = 0
        self.test_predictions = {}
        self._test_start = time.perf_counter()

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._update("test", pl_module, outputs)
        self._test_samples += int(batch["labels"].numel())
        probs = outputs["logits"].float().softmax(-1)[:, 1].cpu().tolist()
        self.test_predictions.update(zip(outputs["index"].cpu().tolist(), probs, strict=True))

    def on_test_epoch_end(self, trainer, pl_module):
        seconds = time.perf_counter() - self._test_start
        values = self._compute("test", pl_module)
        if trainer.world_size > 1 and torch.distributed.is_initialized():  # each rank tested a shard
            shards = [None] * trainer.world_size
            torch.distributed.all_gather_object(shards, (self.test_predictions, self._test_samples))
            self.test_predictions = {i: p for preds, _ in shards for i, p in preds.items()}
            self._test_samples = sum(n for _, n in shards)
        self.test_record = {**values, "seconds": seconds,
                            "samples_per_s": self._test_samples / seconds if seconds else None}

    # ---- resume: what a checkpoint must carry so a resumed run reports the whole run -----------
    def state_dict(self) -> dict:
        self.metrics["train"].persistent(True)  # the partial epoch's train metrics
        return {"history": self.history, "epoch_seconds": self.epoch_seconds, "best_val": self.best_val,
                "train_samples": self.train_samples, "train_tokens": self.train_tokens,
                "train_seconds": self.train_seconds, "train_metrics": self.metrics["train"].state_dict()}

    def setup(self, trainer, pl_module, stage: str) -> None:
        self._stage = stage  # Lightning calls setup before it restores a checkpoint

    def load_state_dict(self, state_dict: dict) -> None:
        # Only a resumed fit continues the run's record. trainer.test(ckpt_path="best") restores
        # callbacks too, and would roll the history and timing back to the best epoch.
        if getattr(self, "_stage", "fit") != "fit":
            return
        for key in ("history", "epoch_seconds", "best_val", "train_samples", "train_tokens", "train_seconds"):
            setattr(self, key, state_dict[key])
        self.metrics["train"].persistent(True)
        self.metrics["train"].load_state_dict(state_dict["train_metrics"])

    # ---- latency --------------------------------------------------------------------------
    @torch.inference_mode()
    def measure_latency(self, pl_module: L.LightningModule, dataset, precision_context) -> dict:
        """Single-review latency over a fixed sample (every k-th test review), after warm-up."""
        pl_module.eval()
        step = max(1, len(dataset) // self.latency_samples)
        indices = list(range(0, len(dataset), step))[: self.latency_samples]
        times = []
        warmup = indices[: self.latency_warmup]
        for position, index in enumerate(warmup + indices):
            ids = dataset[index][0][None, :].to(pl_module.device)
            mask, lengths = torch.ones_like(ids), torch.tensor([ids.shape[1]], device=pl_module.device)
            start = time.perf_counter()
            with precision_context():
                pl_module(ids, mask, lengths)
            if pl_module.device.type == "cuda":
                torch.cuda.synchronize()
            if position >= len(warmup):
                times.append((time.perf_counter() - start) * 1000)
        times.sort()
        return {"latency_ms_p50": statistics.median(times),
                "latency_ms_p95": times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))],
                "latency_reviews": len(times)}

    def summary(self, pl_module: L.LightningModule) -> dict:
        cuda_peak = None
        if torch.cuda.is_available() and pl_module.device.type == "cuda":
            cuda_peak = torch.cuda.max_memory_allocated(pl_module.device) / 2**20
        return {
            "fit_seconds": self.fit_seconds,
            "epoch_seconds": self.epoch_seconds,
            "mean_epoch_seconds": statistics.mean(self.epoch_seconds) if self.epoch_seconds else None,
            "train_samples_per_s": self.train_samples / self.train_seconds if self.train_seconds else None,
            "train_tokens_per_s": self.train_tokens / self.train_seconds if self.train_seconds else None,
            "test_seconds": self.test_record.get("seconds"),
            "test_samples_per_s": self.test_record.get("samples_per_s"),
            "peak_rss_mb": peak_rss_mb(),
            "cuda_peak_mb": cuda_peak,
        }
