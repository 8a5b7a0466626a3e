"""Which torch device a command runs on: one rule for predict, evaluate, explain and bench."""

from __future__ import annotations

import torch

from imdb_lm.errors import UserError


def pick_device(name: str = "auto", option: str = "device") -> torch.device:
    """auto: CUDA where visible, else CPU; cpu; cuda[:N] (refused in one line where CUDA is absent)."""
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"{option}={name}: CUDA is not available here; use {option}=cpu or {option}=auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"{option}={name!r} is not a torch device; use auto, cpu or cuda[:N]") from None
