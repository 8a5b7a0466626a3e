"""MetricsTimingCallback's single-review latency measurement on small samples."""

from __future__ import annotations

import contextlib

import pytest

from imdb_lm.callbacks import MetricsTimingCallback
from imdb_lm.data.batching import TokenizedReviews
from imdb_lm.models.recurrent import RecurrentClassifier


@pytest.mark.parametrize("samples", [1, 2, 7])
def test_latency_over_a_fixed_sample_of_any_size(samples):
    reviews = TokenizedReviews([[2, 3, 4], [5, 6], [7, 8, 9, 10], [11]] * 3, [0, 1, 0, 1] * 3, [str(i) for i in range(12)])
    model = RecurrentClassifier(20, embedding_dim=8, hidden_size=4)
    result = MetricsTimingCallback(latency_samples=samples).measure_latency(model, reviews, contextlib.nullcontext)
    assert result["latency_reviews"] == min(samples, len(reviews))
    assert 0 < result["latency_ms_p50"] <= result["latency_ms_p95"]
