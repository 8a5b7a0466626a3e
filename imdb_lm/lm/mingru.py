"""minGRU (Feng et al. 2024, "Were RNNs all we needed?"): a GRU whose gates read only the input.

    z_t = sigmoid(W_z x_t),  h~_t = g(W_h x_t),  h_t = (1 - z_t) * h_{t-1} + z_t * h~_t

with g(v) = v + 0.5 for v >= 0, sigmoid(v) otherwise, so states stay positive. No gate reads
h_{t-1}, so training needs no loop over positions: h_t = a_t h_{t-1} + b_t is a linear recurrence,
solved for all t at once in log space (Heinsen 2023) with cumulative sums, in fp32. `step` is the
same recurrence one position at a time (generation); tests hold the two equal.
Written here (~50 lines) rather than taken from `mingru-pytorch`, to keep the dependency list short.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def g(v: torch.Tensor) -> torch.Tensor:
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def log_g(v: torch.Tensor) -> torch.Tensor:
    return torch.where(v >= 0, torch.log(F.relu(v) + 0.5), -F.softplus(-v))


class MinGRU(nn.Module):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.gates = nn.Linear(input_size, 2 * hidden_size)  # z and h~ from the input only

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, I] -> (states [B, T, H], last state [B, H]); h0 [B, H] (positive) or None (zeros)."""
        with torch.autocast(x.device.type, enabled=False):
            k, v = self.gates(x.float()).chunk(2, dim=-1)
            log_a = -F.softplus(k)  # log(1 - z)
            log_b = -F.softplus(-k) + log_g(v)  # log(z * h~)
            if h0 is not None:  # the state carried in enters as b_0 with a_0 = 1
                log_a = F.pad(log_a, (0, 0, 1, 0))
                log_b = torch.cat([h0.float().clamp_min(1e-30).log()[:, None], log_b], dim=1)
            a_star = log_a.cumsum(dim=1)
            h = torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=1))
            if h0 is not None:
                h = h[:, 1:]
        return h, h[:, -1]

    def step(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        """One position: x [B, I], h [B, H] (None: zeros) -> the next state [B, H]."""
        k, v = self.gates(x.float()).chunk(2, dim=-1)
        z = torch.sigmoid(k)
        prev = torch.zeros_like(z) if h is None else h
        return (1 - z) * prev + z * g(v)
