"""Error analysis: length buckets, confidently wrong reviews, ECE and the reliability plot."""

from __future__ import annotations

import json

import pytest

from imdb_lm.evaluation.error_analysis import analyse, write_analysis
from tests.trained_runs import trained_run


def test_analysis_numbers_on_a_hand_made_case(tmp_path):
    texts = ["w " * 50, "w " * 150, "w " * 150, "w " * 900]
    labels = [1, 0, 1, 0]
    probs = [0.95, 0.9, 0.7, 0.2]  # the 2nd is confidently wrong
    record = analyse(texts, labels, probs, ["a", "b", "c", "d"])
    assert record["accuracy"] == 0.75
    by_length = {b["words"]: b for b in record["accuracy_by_length"]}
    assert by_length["0-99"] == {"words": "0-99", "count": 1, "accuracy": 1.0}
    assert by_length["100-199"]["count"] == 2 and by_length["100-199"]["accuracy"] == 0.5
    assert by_length["800+"]["accuracy"] == 1.0 and by_length["200-399"]["accuracy"] is None
    assert [w["hash"] for w in record["confidently_wrong"]] == ["b"]
    # ECE (torchmetrics) equals the bin-weighted |accuracy - confidence| of the reliability bins
    bins = [b for b in record["calibration"]["bins"] if b["count"]]
    by_hand = sum(b["count"] / 4 * abs(b["accuracy"] - b["confidence"]) for b in bins)
    assert record["calibration"]["ece"] == pytest.approx(by_hand, abs=1e-6)
    # confidences 0.95, 0.9, 0.7, 0.8 -> bins [0.9,1.0): 2 (1 right), [0.7,0.8): 1, [0.8,0.9): 1
    assert record["calibration"]["ece"] == pytest.approx((abs(0.5 - 0.925) * 2 + abs(1 - 0.7) + abs(1 - 0.8)) / 4)
    write_analysis(tmp_path, texts, labels, probs, ["a", "b", "c", "d"])
    assert json.loads((tmp_path / "analysis.json").read_text())["n"] == 4
    assert (tmp_path / "reliability.png").read_bytes()[:4] == b"\x89PNG"


def test_training_writes_analysis_and_stability(cache_dir):
    run = trained_run(cache_dir, "bigru")
    analysis = json.loads((run / "analysis.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert analysis["n"] == 128 and analysis["accuracy"] == pytest.approx(metrics["metrics"]["test"]["acc"])
    assert sum(b["count"] for b in analysis["accuracy_by_length"]) == 128
    assert (run / "reliability.png").stat().st_size > 1000
    assert metrics["status"] == "completed" and metrics["stability"]["grad_norm"]["steps"] == 4
    assert 0 < metrics["stability"]["grad_norm"]["median"] <= metrics["stability"]["grad_norm"]["max"]
