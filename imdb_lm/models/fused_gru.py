"""The CPU fast path of GRU layers: all directions' recurrences in one fused C++ loop (csrc/).

torch runs nn.GRU on the CPU as one small matrix product plus about ten element-wise operations
per time step and direction, each recorded for autograd; oneDNN's fused RNN layer is wired into
torch for LSTM only. The kernel here does one batched product and one pass over the gates per
step for every direction at once, with the backward pass written out, and leaves the large
products (input projections, recurrent weight gradient) to single matrix multiplications.

It computes exactly what `nn.GRU` computes with the same weights (tests hold it to the module's
outputs and gradients), is built on first use with the machine's C++ compiler and cached, and
falls back to `nn.GRU` with one warning where it is not built (fused_gru_build says when and why).
"""

from __future__ import annotations

import os
import threading
from importlib import resources

import torch
from torch import nn

from imdb_lm.models import fused_gru_build

DISABLE_ENV = "IMDB_LM_FUSED_GRU"  # set to 0 to force nn.GRU everywhere
_lock = threading.Lock()
_state: dict = {}


def _source() -> str:
    return resources.files("imdb_lm.models").joinpath("csrc/fused_gru.cpp").read_text()


def extension():
    """The compiled kernel module, or None where it is not built (reported once per process)."""
    if os.environ.get(DISABLE_ENV, "1") == "0":
        return None
    with _lock:
        if "module" not in _state:
            _state["module"], _state["reason"] = fused_gru_build.load(_source())
        return _state["module"]


def unavailable_reason() -> str | None:
    """Why `extension()` is None (one line), or None while it is available."""
    if os.environ.get(DISABLE_ENV, "1") == "0":
        return f"disabled by {DISABLE_ENV}=0"
    return None if extension() is not None else _state["reason"]


def usable(x: torch.Tensor) -> bool:
    """Whether the fused kernel serves this input (CPU float tensors; CUDA has cuDNN's GRU)."""
    return x.device.type == "cpu" and extension() is not None


class _Recurrence(torch.autograd.Function):
    """gi [B, T, D, 3H] (product dtype), the recurrent weights w_hh [D, 3H, H] and b_hh [D, 3H]
    (float32 parameters) and lengths [B] -> outputs [B, T, D, H] (float32)."""

    @staticmethod
    def forward(ctx, gi: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor, lengths: torch.Tensor):
        save = torch.is_grad_enabled() or any(ctx.needs_input_grad)
        w_hh_m = w_hh.to(gi.dtype)
        out, out_m, rz, n, ghn = extension().forward(gi, w_hh_m.transpose(1, 2).contiguous(), b_hh, lengths, save)
        if save:
            ctx.save_for_backward(w_hh_m.contiguous(), out, out_m, rz, n, ghn, lengths)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        w_hh_m, out, out_m, rz, n, ghn, lengths = ctx.saved_tensors
        dgi, dgh, db = extension().backward(grad_out.contiguous(), w_hh_m, out, rz, n, ghn, lengths)
        B, T, D, H = out.shape
        # Each direction's recurrent weight gradient as one product over all steps and reviews: dgh
        # holds every step's recurrent-side gradient at the position of the state it started from.
        dw_hh = torch.stack([dgh[:, :, d].reshape(B * T, 3 * H).t() @ out_m[:, :, d].reshape(B * T, H)
                             for d in range(D)])
        return dgi, dw_hh.float(), db, None


def product_dtype(x: torch.Tensor) -> torch.dtype:
    """bfloat16 under CPU bf16 autocast (as autocast runs products), else float32."""
    autocast_bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    return torch.bfloat16 if autocast_bf16 else torch.float32


@torch.compiler.disable  # an opaque C++ extension: torch.compile runs it as is (a clean graph break)
def gru_layer(x: torch.Tensor, lengths: torch.Tensor, layers: list[nn.GRU]) -> torch.Tensor:
    """One layer of single-layer, batch-first GRUs on x [B, T, E]: `layers[0]` reads left to right,
    `layers[1]` (if given) reads each review right to left within its own `lengths`. Returns
    [B, T, H * len(layers)] (float32): at every position the directions' outputs side by side, as
    `cat([layers[0](x)[0], reverse(layers[1](reverse(x))[0])], -1)` with `reverse_within_length`."""
    dtype = product_dtype(x)
    B, T, _ = x.shape
    with torch.autocast("cpu", enabled=False):
        # Both directions' input projections from one product: [B, T, D * 3H].
        w_ih = torch.cat([m.weight_ih_l0 for m in layers]).to(dtype)
        b_ih = torch.cat([m.bias_ih_l0 for m in layers]).to(dtype)
        gi = torch.nn.functional.linear(x.to(dtype), w_ih, b_ih).view(B, T, len(layers), -1)
        w_hh = torch.stack([m.weight_hh_l0 for m in layers]).float()  # [D, 3H, H]
        b_hh = torch.stack([m.bias_hh_l0 for m in layers]).float()
        lengths = lengths.to("cpu", torch.long).clamp(0, T).contiguous()
        out = _Recurrence.apply(gi, w_hh, b_hh, lengths)
    return out.view(B, T, -1)
