"""Batch inference through torch.compile with frozen weights (inductor's `freezing`).

Freezing compiles the forward with the weights as constants: on CPU inductor packs them once for
oneDNN's matrix kernels and folds what depends on weights alone, instead of re-reading and
re-converting every weight at every call (under bf16 autocast eager PyTorch casts each fp32
weight to bf16 at each forward). The bundled MiniLM ran ~1.18x eager's throughput on a 2-core
bf16 CPU (docs/benchmarks.md); compiling takes ~5 s (BiGRU) to ~25 s (MiniLM) once per process, so it pays off over
thousands of reviews, not one.

Only for a model that will not change again: the weights are baked in at the first call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch


class FrozenForward:
    """`model(input_ids, attention_mask, lengths)` compiled for inference with frozen weights, under
    `autocast` (a context factory: the run's precision). Dynamic shapes: one compilation serves
    every batch size and length (sizes 0 and 1 are specialised once more, as torch does)."""

    def __init__(self, model: torch.nn.Module, autocast: Callable[[], contextlib.AbstractContextManager]
                 = contextlib.nullcontext):
        self.model = model.eval()
        self.autocast = autocast
        self._compiled = torch.compile(model, dynamic=True)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, lengths: torch.Tensor):
        # Imported here: inductor takes seconds to import, and only compiled inference needs it.
        import torch._inductor.config as inductor_config

        # freezing is read when a graph is compiled (the first call and any recompilation), so it is
        # set around every call, never globally: a model still training must not be frozen.
        with inductor_config.patch(freezing=True), torch.no_grad(), self.autocast():
            return self._compiled(input_ids, attention_mask, lengths)
