"""The optimizer and schedule options a model accepts, checked without importing torch or Lightning
(the model checks them when built; the train CLI runs the same check before Hydra starts)."""

from __future__ import annotations

from imdb_lm.errors import UserError

SCHEDULERS = ("none", "linear_warmup", "cosine")


def check_training_options(optimizer: dict, scheduler: dict) -> None:
    lr = optimizer.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, int | float) or lr <= 0:
        raise UserError(f"optimizer.lr={lr} must be a positive number")
    if scheduler.get("name", "none") not in SCHEDULERS:
        raise UserError(f"scheduler.name={scheduler.get('name')!r} is unknown; choose one of {', '.join(SCHEDULERS)}")
