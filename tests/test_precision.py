"""bf16 is used only where the hardware computes it natively; elsewhere the recipe falls back to fp32."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch

from imdb_lm.config import resolvers
from imdb_lm.config.compose import compose_train


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("model", ["transformer", "bigru", "lstm"])
def test_recipe_precision_follows_the_hardware(monkeypatch, native, model):
    """Both families' recipes ask for bf16-mixed; it is kept only where bf16 is native."""
    monkeypatch.setattr(resolvers, "bf16_native", lambda device_type: native)
    cfg = compose_train([f"model={model}", "trainer=cpu"])
    assert cfg.trainer.precision == ("bf16-mixed" if native else "32-true")
    # an explicit choice is kept
    assert compose_train([f"model={model}", "trainer.precision=bf16-mixed"]).trainer.precision == "bf16-mixed"
    assert compose_train([f"model={model}", "trainer.precision=32-true"]).trainer.precision == "32-true"


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="reads the CPU's flags from /proc/cpuinfo")
def test_native_bf16_check_matches_this_machine():
    # An independent source: the CPU's own flags (AVX512-BF16 or AMX-BF16 compute bf16 natively).
    expected = bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})
    assert resolvers.bf16_native("cpu") is expected
    assert resolvers.hardware_precision("bf16-mixed", "cpu") == ("bf16-mixed" if expected else "32-true")
    assert resolvers.hardware_precision("16-mixed", "cpu") == "16-mixed"


def test_a_bf16_run_is_served_in_fp32_where_bf16_is_emulated(monkeypatch):
    from omegaconf import OmegaConf

    from imdb_lm.runs import checkpoint

    run = checkpoint.LoadedRun.__new__(checkpoint.LoadedRun)
    run.cfg = OmegaConf.create({"trainer": {"precision": "bf16-mixed"}})
    run.model = torch.nn.Linear(2, 2)
    run.model.device = torch.device("cpu")
    monkeypatch.setattr(checkpoint, "bf16_native", lambda device_type: False)
    assert isinstance(run.autocast(), contextlib.nullcontext)
    monkeypatch.setattr(checkpoint, "bf16_native", lambda device_type: True)
    assert isinstance(run.autocast(), torch.autocast)
