"""`imdb_lm.predict` through the real CLI on checkpoints trained in this session on bundled data."""

from __future__ import annotations

import csv
import json
import os
import pickle
import shutil

import pytest
import torch

from imdb_lm.evaluation.inference import Reviews, encode, predict_probs, run_split
from imdb_lm.runs.checkpoint import load_run
from imdb_lm.runs.records import read_predictions
from tests.helpers import run_cli
from tests.trained_runs import trained_run


@pytest.fixture(scope="module")
def rnn_run(cache_dir):
    return trained_run(cache_dir, "bigru")


def test_predict_file_reproduces_training_predictions(rnn_run, tmp_path, cache_dir):
    """Test reviews given as a CSV get the probabilities the trainer recorded for them."""
    run = load_run(rnn_run, "cpu")
    reviews = run_split(run, "test")
    recorded = read_predictions(rnn_run)
    picked = list(range(0, 40, 8))
    with (tmp_path / "reviews.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text"])
        writer.writerows([[i, reviews.texts[i]] for i in picked])
    proc = run_cli("imdb_lm.predict", f"ckpt={rnn_run}", f"input={tmp_path / 'reviews.csv'}", "--format", "jsonl",
                   "batch_size=2", cwd=tmp_path, cache=cache_dir)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["index"] for r in rows] == list(range(len(picked)))
    for row, i in zip(rows, picked, strict=True):
        assert row["prob_pos"] == pytest.approx(recorded[reviews.hashes[i]][1], abs=1e-4)
        assert row["label"] == ("positive" if row["prob_pos"] >= 0.5 else "negative")
    assert "reviews/s" in proc.stderr


def test_predict_lines_with_empty_and_very_long_reviews(rnn_run, tmp_path, cache_dir):
    long_review = "an utterly wonderful film " * 2000
    (tmp_path / "reviews.txt").write_text(f"A great movie, loved it.\n\n{long_review}\n", encoding="utf-8")
    proc = run_cli("imdb_lm.predict", f"ckpt={rnn_run / 'checkpoints' / 'best.ckpt'}",
                   f"input={tmp_path / 'reviews.txt'}", "--format=jsonl", cwd=tmp_path, cache=cache_dir)
    first, empty, long = [json.loads(line) for line in proc.stdout.splitlines()]
    assert not first["empty"] and not first["truncated"] and first["tokens"] == 7
    assert empty["empty"] and 0.0 <= empty["prob_pos"] <= 1.0
    assert long["truncated"] and long["tokens"] == 64  # the run's max_length, as trained
    assert "predicted 3 reviews" in proc.stderr


def test_predict_text_on_transformer(cache_dir, tmp_path):
    run = trained_run(cache_dir, "transformer")
    texts = ["A superb film.", "Dull and far too long."]
    proc = run_cli("imdb_lm.predict", f"ckpt={run}", f"text=[{','.join(texts)}]", cwd=tmp_path, cache=cache_dir)
    lines = proc.stdout.strip().splitlines()
    jsonl = run_cli("imdb_lm.predict", f"ckpt={run}", f"text=[{','.join(texts)}]", "format=jsonl",
                    cwd=tmp_path, cache=cache_dir)
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert len(lines) == 2 and len(rows) == 2
    for line, text, row in zip(lines, texts, rows, strict=True):
        label, prob, preview = line.split("\t")
        # the text line shows the predicted class and its probability, from the model's P(positive)
        assert preview == text and label == ("positive" if row["prob_pos"] >= 0.5 else "negative")
        assert float(prob) == pytest.approx(max(row["prob_pos"], 1 - row["prob_pos"]), abs=1e-4)
    # and that probability is the model's own: the checkpoint reloaded in this process agrees
    loaded = load_run(run, "cpu")
    probs = predict_probs(loaded, encode(loaded, Reviews(texts, None, ["a", "b"])), batch_size=2)
    assert [r["prob_pos"] for r in rows] == pytest.approx(probs, abs=1e-4)
    assert "transformer on cpu" in proc.stderr


def test_predict_compiled_gives_the_eager_probabilities(rnn_run, cache_dir, tmp_path):
    """compile=true (torch.compile with frozen weights) is a speed option only: the same predictions.
    The option's path is the same for every family; the transformer's compiled logits are checked in
    tests/test_fast_paths.py (compiling MiniLM here costs over a minute on an AVX2 CPU)."""
    run = rnn_run
    reviews = ["A superb film.", "Dull and far too long.", "I laughed, I cried, and then I wanted my money "
               "back because the last hour undoes everything the first built so carefully.", "Fine.",
               "Not bad at all, with a cast that clearly enjoyed themselves and a script that keeps moving."]
    (tmp_path / "reviews.txt").write_text("\n".join(reviews) + "\n", encoding="utf-8")
    outputs = {}
    for compile_ in ("false", "true"):
        proc = run_cli("imdb_lm.predict", f"ckpt={run}", f"input={tmp_path / 'reviews.txt'}", "batch_size=2",
                       f"compile={compile_}", "--format", "jsonl", cwd=tmp_path, cache=cache_dir)
        outputs[compile_] = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "tokenization and compiling included" in proc.stderr
    assert len(outputs["true"]) == len(reviews)
    for eager, compiled in zip(outputs["false"], outputs["true"], strict=True):
        assert compiled["prob_pos"] == pytest.approx(eager["prob_pos"], abs=2e-3)
        assert compiled["label"] == eager["label"] or abs(eager["prob_pos"] - 0.5) < 2e-3


@pytest.mark.parametrize("args, message", [
    ([], "ckpt=<run folder or .ckpt> is required"),
    (["ckpt=RUN", "text=hi", "input=x.txt"], "exactly one of"),
    (["ckpt=RUN", "text=hi", "--format", "xml"], "format=xml: choose text or jsonl"),
    (["ckpt=RUN", "text=hi", "batch=3"], "unknown option 'batch'"),
    (["ckpt=RUN", "input=missing.txt"], "input=missing.txt: no such file"),
    (["ckpt=RUN", "text=hi", "compile=maybe"], "compile=maybe must be true or false"),
])
def test_predict_bad_input_is_one_line(rnn_run, capsys, args, message):
    """The entry point's own main(), in-process (a subprocess per case costs seconds of imports)."""
    from imdb_lm.predict import main

    with pytest.raises(SystemExit) as stop:
        main([a.replace("RUN", str(rnn_run)) for a in args])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


class Payload:
    """Unpickling this creates a file: what a malicious checkpoint would do (run code on load)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_checkpoint_is_refused_without_running_its_code(rnn_run, tmp_path, cache_dir):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "tokenizer.json", "metrics.json"):
        shutil.copy(rnn_run / name, run / name)
    good = torch.load(rnn_run / "checkpoints" / "best.ckpt", weights_only=True)
    marker = tmp_path / "pwned"
    torch.save({**good, "hyper_parameters": {**good["hyper_parameters"], "x": Payload(str(marker))}},
               run / "checkpoints" / "best.ckpt", pickle_protocol=pickle.HIGHEST_PROTOCOL)
    proc = run_cli("imdb_lm.predict", f"ckpt={run}", "text=fine", cwd=tmp_path, cache=cache_dir, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert "refused" in proc.stderr  # (pickle protocol 5 is stopped at its first unsafe opcode)
    assert not marker.exists() and not os.path.exists(tmp_path / "pwned")
