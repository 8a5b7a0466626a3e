"""`imdb_lm.evaluate` through the real CLI: own split (fingerprint checked) and other sources."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from imdb_lm.runs.records import predictions_file, read_predictions
from tests.helpers import load_metrics, run_cli
from tests.trained_runs import trained_run


@pytest.fixture(scope="module")
def rnn_run(cache_dir):
    return trained_run(cache_dir, "bigru")


def test_evaluate_own_test_split_matches_training(rnn_run, tmp_path, cache_dir):
    proc = run_cli("imdb_lm.evaluate", f"ckpt={rnn_run}", cwd=tmp_path, cache=cache_dir)
    assert "fingerprint ok" in proc.stdout
    trained = load_metrics(rnn_run)["metrics"]["test"]
    record = json.loads((rnn_run / "evaluations" / "test.json").read_text())
    assert record["fingerprint"] == load_metrics(rnn_run)["splits"]["test"]
    for key in ("acc", "f1", "auroc", "loss"):
        assert record["metrics"]["test"][key] == pytest.approx(trained[key], abs=1e-5)
    analysis = json.loads((rnn_run / "evaluations" / "test.analysis.json").read_text())
    assert analysis["n"] == 128 and (rnn_run / "evaluations" / "test.reliability.png").stat().st_size > 1000


def test_evaluate_refuses_a_changed_split(rnn_run, tmp_path, cache_dir):
    copy = tmp_path / "run"
    shutil.copytree(rnn_run, copy, ignore=shutil.ignore_patterns("tensorboard", "evaluations"))
    record = load_metrics(copy)
    record["splits"]["test"]["digest"] = "0" * 16
    (copy / "metrics.json").write_text(json.dumps(record))
    proc = run_cli("imdb_lm.evaluate", f"ckpt={copy}", cwd=tmp_path, cache=cache_dir, check=False)
    assert proc.returncode == 2 and "fingerprint" in proc.stderr and proc.stderr.strip().count("\n") == 0
    assert not (copy / "evaluations").exists()


def test_evaluate_out_of_domain_sources(rnn_run, tmp_path, cache_dir):
    rows = [("A moving, beautifully acted story.", "pos"), ("Tedious and badly written.", "neg")] * 10
    with (tmp_path / "ood.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("text", "label"), *rows])
    proc = run_cli("imdb_lm.evaluate", f"ckpt={rnn_run}", "data.source=csv", f"data.path={tmp_path / 'ood.csv'}",
                   "name=ood", cwd=tmp_path, cache=cache_dir)
    assert "all 20 rows" in proc.stdout
    record = json.loads((rnn_run / "evaluations" / "ood.json").read_text())
    assert record["out_of_domain"] and record["split"] == "all" and record["fingerprint"]["count"] == 20
    # per review, as training writes the test split's: the report pairs two runs on these rows with them
    assert record["predictions"] == "ood.predictions.csv"
    predictions = read_predictions(rnn_run, "ood")
    assert len(predictions) == 2  # the ten copies of each row share one review hash
    correct = [(prob > 0.5) == bool(label) for label, prob in predictions.values()]
    assert record["metrics"]["test"]["acc"] == pytest.approx(sum(correct) / len(correct))


@pytest.mark.slow
def test_evaluate_on_bundled_rotten_tomatoes(rnn_run, tmp_path, cache_dir):
    run_cli("imdb_lm.evaluate", f"ckpt={rnn_run}", "data.source=rotten_tomatoes", cwd=tmp_path, cache=cache_dir)
    rt = json.loads((rnn_run / "evaluations" / "rotten_tomatoes.json").read_text())
    analysis = json.loads((rnn_run / "evaluations" / "rotten_tomatoes.analysis.json").read_text())
    # every row as written (read_predictions keys them by review hash, which repeated texts share)
    with (rnn_run / predictions_file("rotten_tomatoes")).open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert analysis["n"] == len(rows) == rt["fingerprint"]["count"] == 8530
    correct = [(float(row["prob_pos"]) > 0.5) == (row["label"] == "1") for row in rows]
    assert rt["metrics"]["test"]["acc"] == pytest.approx(sum(correct) / len(rows), abs=1e-6)  # float32; a review: 1e-4
