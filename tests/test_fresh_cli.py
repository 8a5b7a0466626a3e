"""Every command in a new interpreter, as `python -m` starts it, on the session's tiny trained runs:
each exits 0 and its main output holds the run's own numbers.

The rest of the suite forks most commands from a process that has already imported torch,
Lightning, transformers and matplotlib.pyplot (tests/cli_runner.py). A module that leans on an
import made elsewhere (`matplotlib.pyplot` used after only `import matplotlib`) passes there and
fails here; import order and sys.path are the interpreter's own here too. Slow: every new
interpreter pays its imports (~10-15 s on two cores): about 3 CPU-minutes for the eight.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from imdb_lm.runs.records import read_metrics, read_predictions
from tests.helpers import run_cli
from tests.trained_runs import trained_run

pytestmark = pytest.mark.slow

# The bench's smallest honest setting: one model, its plain loop beside it, one repeat.
TINY_BENCH = ["models=bigru", "baselines=plain_loop", "max_length=32", "train_limit=32", "infer_limit=32",
              "warmup=1", "repeats=1", "latency_samples=3", "tokenization_reviews=0", "startup=0",
              "compiled_inference=off", "threads=1", "set=data.train_limit=300", "set=data.val_limit=50",
              "set=data.test_limit=100"]


def fresh(module: str, *args: str, cwd: Path, cache: Path):
    return run_cli(module, *args, cwd=cwd, cache=cache, fresh=True)


def own_copy(run: Path, into: Path) -> Path:
    """A folder of the run to write into (evaluate and explain write beside its record), so the shared
    run stays as the other tests expect it; the checkpoints are linked, not copied (MiniLM's: 0.5 GB)."""
    copy = into / run.name
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("checkpoints", "tensorboard", "evaluations",
                                                            "explain.*"))
    (copy / "checkpoints").symlink_to(run / "checkpoints", target_is_directory=True)
    return copy


def recorded_acc(run: Path) -> float:
    return read_metrics(run)["metrics"]["test"]["acc"]


def accuracy(predictions: dict[str, tuple[int, float]]) -> float:
    return sum((prob > 0.5) == bool(label) for label, prob in predictions.values()) / len(predictions)


def check_train(tmp: Path, cache: Path, rnn: Path, transformer: Path) -> None:
    run = trained_run(cache, "bigru", fresh=True)  # the session bigru's recipe (a few steps), a new interpreter
    record = read_metrics(run)
    assert record["status"] == "completed" and record["splits"]["test"]["count"] == 128
    assert recorded_acc(run) == pytest.approx(accuracy(read_predictions(run)))


def check_predict(tmp: Path, cache: Path, rnn: Path, transformer: Path) -> None:
    # test reviews the run's error analysis kept with their predictions: their first 400 characters, more
    # than the 64 tokens the run keeps from the head of a review, so the model sees what it saw in the test
    kept = json.loads((rnn / "analysis.json").read_text())["confidently_wrong"][:3]
    (tmp / "reviews.txt").write_text("\n".join(review["text"] for review in kept) + "\n", encoding="utf-8")
    proc = fresh("imdb_lm.predict", f"ckpt={rnn}", f"input={tmp / 'reviews.txt'}", "format=jsonl", cwd=tmp,
                 cache=cache)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [row["index"] for row in rows] == [0, 1, 2] and all(row["truncated"] for row in rows)
    assert [row["prob_pos"] for row in rows] == pytest.approx([review["prob_pos"] for review in kept], abs=1e-4)


def check_evaluate(tmp: Path, cache: Path, rnn: Path, transformer: Path) -> None:
    run = own_copy(rnn, tmp)
    fresh("imdb_lm.evaluate", f"ckpt={run}", cwd=tmp, cache=cache)
    result = json.loads((run / "evaluations" / "test.json").read_text())
    assert result["fingerprint"] == read_metrics(rnn)["splits"]["test"]
    assert result["metrics"]["test"]["acc"] == pytest.approx(recorded_acc(rnn), abs=1e-6)


def check_explain(tmp: Path, cache: Path, rnn: Path, transformer: Path) -> None:
    run = own_copy(transformer, tmp)  # the family with both explanations, and the one loaded through transformers
    fresh("imdb_lm.explain", f"ckpt={run}", "n=2", "show=1", "per_category=0", "scan=8", "n_steps=4",
          "random_repeats=1", cwd=tmp, cache=cache)
    record = json.loads((run / "explain.json").read_text())
    assert len(record["reviews"]) == 2 and [r["hash"] for r in record["per_review"]] == record["reviews"]
    assert set(record["faithfulness"]) == {"integrated_gradients", "attention_rollout"}
    for scores in record["faithfulness"].values():  # deletion curves and their AOPC against random deletion
        assert len(scores["curve"]) == len(record["fractions"])
        assert scores["aopc_gain"] == scores["aopc"] - scores["random_aopc"]
    assert "attention rollout" in (run / "explain.html").read_text()


def check_report(tmp: Path, cache: Path, rnn: Path, transformer: Path) -> None:
    out = tmp / "report"
    fresh("imdb_lm.report", str(rnn), str(transformer), f"out={out}", "bootstrap=200", cwd=tmp, cache=cache)
    rows = {row["model"]: float(row["test_acc"]) for row in _csv(out / "results.csv")}
    assert rows == pytest.approx({"bigru": recorded_acc(rnn), "transformer": recorded_acc(transformer)})
    assert "| bigru |" in (out / "report.md").read_text() and list((out / "figures").glob("*.png"))


def check_publish(tmp: Path, cache: Path, rnn: Path, transformer: Path) -> None:
    out = tmp / "study"
    fresh("imdb_lm.report.publish", str(rnn), str(transformer), f"out={out}", cwd=tmp, cache=cache)
    records = {r["model"]["name"]: r for r in map(json.loads, (p.read_text() for p in out.glob("runs/*/metrics.json")))}
    assert {name: r["metrics"]["test"]["acc"] for name, r in records.items()} == {
        "bigru": recorded_acc(rnn), "transformer": recorded_acc(transformer)}
    assert str(rnn.parent) not in json.dumps(records)  # compact: no machine paths
    assert len(_csv(out / "results.csv")) == 2


def check_bench(tmp: Path, cache: Path, rnn: Path, transformer: Path) -> None:
    out = tmp / "bench.json"
    fresh("imdb_lm.bench", *TINY_BENCH, f"output={out}", cwd=tmp, cache=cache)
    sides = json.loads(out.read_text())["models"]["bigru"]["sides"]
    assert set(sides) == {"lightning", "plain_loop"}
    assert all(side["train"]["samples_per_s"] > 0 for side in sides.values())


def check_study_ood(tmp: Path, cache: Path, rnn: Path, transformer: Path) -> None:
    run, sweep = own_copy(rnn, tmp), tmp / "study_tiny"
    sweep.mkdir()
    selection = {"groups": {"bigru": {"selected": {"runs": [{"dir": str(run), "seed": "42"}]}}}}
    (sweep / "study_selection.json").write_text(json.dumps(selection))  # the part of the sweeper's that the step reads
    fresh("imdb_lm.study.ood", str(sweep), "device=cpu", cwd=tmp, cache=cache)
    result = json.loads((run / "evaluations" / "rotten_tomatoes.json").read_text())
    assert result["out_of_domain"] and result["fingerprint"]["count"] == 8530
    assert result["metrics"]["test"]["acc"] == pytest.approx(accuracy(read_predictions(run, "rotten_tomatoes")))


def _csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


COMMANDS = {"train": check_train, "predict": check_predict, "evaluate": check_evaluate, "explain": check_explain,
            "report": check_report, "report.publish": check_publish, "bench": check_bench,
            "study.ood": check_study_ood}


@pytest.fixture(scope="module")
def runs(cache_dir):
    return trained_run(cache_dir, "bigru"), trained_run(cache_dir, "transformer")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_command_runs_in_a_fresh_interpreter(command, runs, tmp_path, cache_dir):
    COMMANDS[command](tmp_path, cache_dir, *runs)
