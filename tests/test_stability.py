"""Stability signals: NaN loss and majority-class collapse mark a run `diverged` and stop it early."""

from __future__ import annotations

import torch

from imdb_lm.callbacks.stability import StabilityCallback
from tests.helpers import TINY, load_metrics, run_cli, run_dirs


def test_nan_and_spikes_are_detected():
    cb = StabilityCallback(spike_factor=3.0, min_spike_history=5)
    for step in range(10):
        assert cb.observe_loss(step, 0.7 - 0.01 * step) is None
    assert cb.observe_loss(10, 5.0) is None and cb.spike_count == 1
    assert cb.spikes[0]["step"] == 10 and cb.spikes[0]["recent_median"] < 0.7
    assert "nan" in cb.observe_loss(11, float("nan"))
    assert "inf" in cb.observe_loss(12, float("inf"))


def test_majority_class_needs_patience_and_resets():
    cb = StabilityCallback(majority_patience=2)
    labels = torch.tensor([1, 1, 1, 0])  # majority rate 0.75
    all_positive = torch.tensor([0.9, 0.8, 0.7, 0.6])
    learning = torch.tensor([0.9, 0.8, 0.7, 0.1])  # accuracy 1.0
    assert cb.observe_validation(labels, all_positive) is None
    assert cb.observe_validation(labels, learning) is None and cb.at_majority == 0
    assert cb.observe_validation(labels, all_positive) is None
    reason = cb.observe_validation(labels, all_positive)
    assert reason and "majority-class rate 0.750" in reason


def test_injected_nan_gives_diverged_status_and_a_clean_early_stop(tmp_path, cache_dir):
    proc = run_cli("imdb_lm.train", *TINY, "trainer.limit_train_batches=null", "data.batch_size=16",
                   "+callbacks.inject_nan._target_=tests.nan_injection.InjectNaN", "+callbacks.inject_nan.at_step=2",
                   cwd=tmp_path, cache=cache_dir)
    assert proc.returncode == 0  # a diverged run is a result, not a crash
    assert "status: diverged" in proc.stdout
    (run,) = run_dirs(tmp_path)
    record = load_metrics(run)
    assert record["status"] == "diverged"
    assert "training loss became nan at step 2" in record["error"]
    stability = record["stability"]
    # stopped at once, not after the epoch's 16 steps
    assert stability["diverged"] and stability["grad_norm"]["steps"] == 3
    assert stability["grad_norm"]["median"] > 0
    assert stability["grad_norm"]["nonfinite_steps"] == 1
