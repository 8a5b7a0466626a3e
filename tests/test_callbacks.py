"""MetricsTimingCallback's single-review latency measurement on small samples."""

from __future__ import annotations

import contextlib

import pytest

from imdb_lm.callbacks.metrics import MetricsTimingCallback
from imdb_lm.data.batching import TokenizedReviews
from imdb_lm.models.recurrent import RecurrentClassifier


@pytest.mark.parametrize("samples", [1, 2, 7])
def test_latency_over_a_fixed_sample_of_any_size(samples):
    reviews = TokenizedReviews([[2, 3, 4], [5, 6], [7, 8, 9, 10], [11]] * 3, [0, 1, 0, 1] * 3, [str(i) for i in range(12)])
    model = RecurrentClassifier(20, embedding_dim=8, hidden_size=4)
    result = MetricsTimingCallback(latency_samples=samples).measure_latency(model, reviews, contextlib.nullcontext)
    assert result["latency_reviews"] == min(samples, len(reviews))
    assert 0 < result["latency_ms_p50"] <= result["latency_ms_p95"]


def test_testing_the_best_checkpoint_keeps_the_whole_run_record():
    """trainer.test(ckpt_path="best") restores callback state; only a resumed fit may take it."""
    callback = MetricsTimingCallback()
    best_epoch_state = callback.state_dict() | {"history": [{"epoch": 0}], "epoch_seconds": [90.0]}
    callback.history, callback.epoch_seconds = [{"epoch": e} for e in range(5)], [90.0] * 5
    callback.setup(None, None, stage="test")
    callback.load_state_dict(best_epoch_state)
    assert len(callback.history) == 5 and len(callback.epoch_seconds) == 5
    callback.setup(None, None, stage="fit")  # resuming a fit continues from the checkpoint's record
    callback.load_state_dict(best_epoch_state)
    assert callback.history == [{"epoch": 0}]
