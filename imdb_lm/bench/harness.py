"""Timing primitives shared by every side of the benchmark, so all sides are measured alike.

A training figure is the wall time of whole optimisation steps (data fetch, forward, backward,
optimiser) after warm-up, synchronised on CUDA; figures are medians over repeats, and repeats of
different sides are interleaved (A B A B) so load on a shared machine hits every side alike.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
from collections.abc import Callable

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(precision: str, device: torch.device):
    """The forward context Lightning uses for a `trainer.precision` value (weight-cast cache off, as
    in Lightning's mixed-precision plugin)."""
    if "bf16" in str(precision) and "true" not in str(precision):
        return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)
    if str(precision).startswith("16"):
        return torch.autocast(device.type, dtype=torch.float16, cache_enabled=False)
    return contextlib.nullcontext()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def median_record(records: list[dict]) -> dict:
    """Median of every numeric field over repeats, plus the raw values of the main ones."""
    out: dict = {"repeats": len(records)}
    for key in records[0]:
        values = [r[key] for r in records if isinstance(r.get(key), int | float)]
        if values:
            out[key] = statistics.median(values)
            out[f"{key}_all"] = values
    return out


class StepWindow:
    """Counts samples and tokens of the steps after warm-up and the wall time they took."""

    def __init__(self, warmup: int, device: torch.device):
        self.warmup, self.device = warmup, device
        self.steps = self.samples = self.tokens = self.padded_tokens = 0
        self.flops = 0.0
        self._start = self._end = None

    def step_done(self, samples: int, tokens: int, padded_tokens: int, flops: float = 0.0) -> None:
        sync(self.device)
        now = time.perf_counter()
        self.steps += 1
        if self.steps <= self.warmup:
            if self.steps == self.warmup:
                self._start = now
            return
        self.samples += samples
        self.tokens += tokens
        self.padded_tokens += padded_tokens
        self.flops += flops
        self._end = now

    def start_now(self) -> None:
        """With no warm-up steps inside the window, it starts when the first step starts."""
        sync(self.device)
        self._start = time.perf_counter()

    def record(self) -> dict:
        seconds = (self._end - self._start) if self._start is not None and self._end is not None else None
        if not seconds:
            raise RuntimeError("no timed training steps: raise the number of steps")
        return {"seconds": seconds, "steps": self.steps - self.warmup,
                "samples_per_s": self.samples / seconds, "tokens_per_s": self.tokens / seconds,
                "padded_tokens_per_s": self.padded_tokens / seconds,
                "padding_fraction": 1 - self.tokens / self.padded_tokens if self.padded_tokens else None,
                "flops_per_s": self.flops / seconds if self.flops else None}


class PeakMemory:
    """Peak memory while a block runs: CUDA allocator peak, or on CPU the resident set size
    sampled every few milliseconds (the kernel's own peak never goes down, so it cannot be reset
    between sides)."""

    def __init__(self, device: torch.device, interval: float = 0.005):
        self.device, self.interval = device, interval
        self.peak_mb: float | None = None
        self._stop = threading.Event()

    @staticmethod
    def _rss_mb() -> float | None:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError):
            return None

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = self._rss_mb()
            if rss is not None:
                self.peak_mb = max(self.peak_mb or 0.0, rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self._stop.set()
            self._thread.join()


def count_flops(step: Callable[[], None]) -> int:
    """FLOPs of one call (a forward and backward pass), counted by torch's FlopCounterMode."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


class StepFlops:
    """FLOPs of one training step of a transformer as B * (c + a*T + b*T^2): per-sequence work (the
    classification head), linear layers growing with T, attention with T^2. c, a, b are solved from
    three shapes counted exactly by FlopCounterMode (attention through the math kernel, which the
    counter sees as matrix products); every timed batch then gets its own count."""

    def __init__(self, count_shape: Callable[[int, int], int], lengths: tuple[int, int, int] = (32, 64, 128)):
        rows = torch.tensor([[1.0, t, t * t] for t in lengths], dtype=torch.float64)
        per_sequence = torch.tensor([count_shape(2, t) / 2 for t in lengths], dtype=torch.float64)
        self.constant, self.linear, self.quadratic = torch.linalg.solve(rows, per_sequence).tolist()

    def __call__(self, batch: int, length: int) -> float:
        return batch * (self.constant + self.linear * length + self.quadratic * length**2)


@torch.inference_mode()
def time_inference(forward: Callable[[dict], torch.Tensor], batches: list[dict], device: torch.device) -> dict:
    """Samples/s of `forward` over prepared batches (already on the device)."""
    sync(device)
    start = time.perf_counter()
    samples = 0
    for batch in batches:
        forward(batch)
        samples += int(batch["n"])
    sync(device)
    seconds = time.perf_counter() - start
    return {"samples_per_s": samples / seconds, "seconds": seconds, "samples": samples}


@torch.inference_mode()
def time_latency(forward_one: Callable[[torch.Tensor], torch.Tensor], reviews: list[torch.Tensor],
                 device: torch.device, warmup: int = 3) -> dict:
    """Single-review latency (batch of one, no padding): p50 and p95 in milliseconds."""
    times = []
    for position, ids in enumerate(reviews[:warmup] + reviews):
        ids = ids.to(device)[None, :]
        sync(device)
        start = time.perf_counter()
        forward_one(ids)
        sync(device)
        if position >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    return {"latency_ms_p50": statistics.median(times), "latency_ms_p95": percentile(times, 0.95),
            "latency_reviews": len(times)}


@torch.inference_mode()
def correct_over(forward: Callable[[dict], torch.Tensor], batches: list[dict]) -> np.ndarray:
    """Per-review correctness of `forward` (logits [B, 2]) over batches carrying `labels`, in the data's
    order: a batch's `index` says where its rows belong (sorted batches), else rows come in order."""
    correct, rows, seen = [], [], 0
    for batch in batches:
        hits = (forward(batch).argmax(-1) == batch["labels"]).cpu()
        index = batch.get("index")
        rows.append(index.cpu() if index is not None else torch.arange(seen, seen + len(hits)))
        correct.append(hits)
        seen += len(hits)
    ordered = torch.empty(seen, dtype=torch.bool)
    ordered[torch.cat(rows)] = torch.cat(correct)
    return ordered.numpy()
