"""Compose `conf/train.yaml` with overrides outside a Hydra app: the train CLI's early check, the
bench's workload and the tests all build their config here, from the same files as a training run."""

from __future__ import annotations

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_train(overrides: list[str], with_hydra: bool = False):
    """The training config for `overrides`; `with_hydra` keeps Hydra's own node (run/sweep dirs)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="train"):
        return compose("train", overrides=overrides, return_hydra_config=with_hydra)
