"""The behavioural guard beside the results digest (tests/test_run_key.py): a tiny deterministic run
of each family whose test predictions are pinned, bit for bit, per RESULTS_VERSION.

The digest sees every edit of the training code; this sees what an edit does. A change declared
result-neutral (its digest added under the current version) must leave these bits as they are, and a
change in a library, a kernel or the data path that no digest can see shows up here too.

Floating-point bits depend on the torch build, the CPU's kernels and whether the project's fused GRU
kernel is built, so a pin is stored per (torch minor version, CPU capability, fused kernel built or
not); one thread, so that no reduction order depends on the core count. A machine with no pin skips,
saying how to record one (the bits printed by the skip, checked on a second run, go in PINS_FILE).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from imdb_lm.models import fused_gru
from imdb_lm.runs.key import RESULTS_VERSION
from tests.helpers import TINY, run_cli, run_dirs

PINS_FILE = Path(__file__).with_name("results_pins.json")
# fp32 and a fixed seed; a few optimizer steps, one validation, the test slice predicted.
RUNS = {
    "bigru": [*TINY, "trainer.precision=32-true", "seed=7", "data.train_limit=128"],
    "transformer": [*TINY, "model=transformer", "trainer.precision=32-true", "seed=7", "data.max_length=32",
                    "data.train_limit=64", "trainer.limit_train_batches=2", "callbacks.attributions=null"],
}


def machine_key() -> str:
    version = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    fused = "fused GRU built" if fused_gru.unavailable_reason() is None else "fused GRU not built"
    return f"torch {version} | {torch.backends.cpu.get_cpu_capability()} | {fused}"


def prediction_bits(run_dir: Path) -> str:
    """A digest of the test predictions (per review, 6 decimals) and the selection metric."""
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    digest = hashlib.sha256((run_dir / "predictions.csv").read_bytes())
    digest.update(repr(metrics["best_val_acc"]).encode())
    return digest.hexdigest()[:16]


RECORD_ENV = "IMDB_LM_RECORD_PIN"  # =1: run where no pin exists and report the bits (in the skip reason)


@pytest.fixture(scope="module")
def pins() -> dict:
    pinned = json.loads(PINS_FILE.read_text()).get(str(RESULTS_VERSION), {}).get(machine_key())
    if not pinned and not os.environ.get(RECORD_ENV):
        pytest.skip(f"no pin for results version {RESULTS_VERSION} on ({machine_key()}) in {PINS_FILE.name}; "
                    f"to record one: {RECORD_ENV}=1 pytest -rs {Path(__file__).relative_to(Path.cwd())}, twice "
                    f"(the bits must agree), then add them there")
    return pinned or {}


@pytest.mark.parametrize("family", sorted(RUNS))
def test_a_tiny_run_reproduces_its_pinned_predictions(family, pins, tmp_path, cache_dir):
    run_cli("imdb_lm.train", *RUNS[family], cwd=tmp_path, cache=cache_dir, OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1")
    (run_dir,) = run_dirs(tmp_path)
    bits = prediction_bits(run_dir)
    if family not in pins:
        pytest.skip(f"{family} on ({machine_key()}), results version {RESULTS_VERSION}: {bits}")
    assert bits == pins[family], (
        f"{family}: a tiny fp32 run no longer gives its pinned predictions on ({machine_key()}): results "
        f"changed. Bump RESULTS_VERSION in imdb_lm/runs/key.py and pin the new bits under it in {PINS_FILE.name} "
        f"({bits}), unless the change is in a library or the machine (then say which in the commit)")
