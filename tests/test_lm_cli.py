"""Language models through the real CLIs (`python -m imdb_lm.train task=lm`, `python -m imdb_lm.generate`),
on a small slice of the bundled data with the tiny presets."""

from __future__ import annotations

import json
import math

import pytest

from tests.helpers import LM_TINY, load_metrics, run_cli, run_dirs
from tests.trained_runs import trained_run


@pytest.mark.parametrize("preset", ["gru_lm", "lstm_lm", "mingru_lm", "transformer_lm"])
def test_every_lm_family_trains_and_records_perplexity(tmp_path, cache_dir, preset):
    proc = run_cli("imdb_lm.train", *LM_TINY, f"model={preset}", "logger=none", cwd=tmp_path, cache=cache_dir)
    [run] = run_dirs(tmp_path)
    assert "test perplexity:" in proc.stdout and "tokens/s" in proc.stdout
    record = load_metrics(run)
    assert record["status"] == "completed" and record["model"]["name"] == preset
    assert record["hparams"]["task"] == "lm" and record["config"]["task"] == "lm"
    test, val = record["metrics"]["test"], record["metrics"]["val"]
    for split in (test, val):
        assert 1 < split["ppl"] < 1e6 and math.isclose(split["ppl"], math.exp(split["loss"]))
        assert split["bpc"] > 0 and split["chars"] > split["tokens"] > 0 and split["reviews"] == 16
        # reviews cut at 32 tokens: only the first position bucket holds tokens
        assert split["ppl_by_position"]["1-32"] > 1 and split["ppl_by_position"]["129-256"] is None
    assert math.isclose(test["bpc"], test["loss"] * test["tokens"] / math.log(2) / test["chars"])
    assert record["metrics"]["best_val_ppl"] == val["ppl"]
    assert record["timing"]["train_tokens_per_s"] > 0 and record["timing"]["train_tokens"] > 0
    assert record["history"][-1]["tokens_seen"] == record["timing"]["train_tokens"]
    size = record["model"]["params"]
    assert 0.36e6 < size["non_embedding"] < 0.44e6 and size["total"] > 30522 * 128
    assert record["model"]["forward_flops_per_token"] > 2 * 30522 * 128
    assert record["splits"]["train"]["count"] == 64 and record["splits"]["test"]["count"] == 16
    assert record["splits"]["train_full"]["count"] > 64  # the fingerprints of the frozen split
    assert (run / "checkpoints" / "best.ckpt").is_file() and not (run / "predictions.csv").exists()


def generated(run, out=None) -> list[dict]:
    path = out or run / "generated.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_generate_is_deterministic_under_a_seed_and_follows_the_label(tmp_path, cache_dir):
    run = trained_run(cache_dir, "lm_conditional")
    args = [f"ckpt={run}", "prompt=This movie", "label=positive", "n=3", "max_new_tokens=6"]
    first = run_cli("imdb_lm.generate", *args, "seed=0", f"out={tmp_path / 'a.jsonl'}", cwd=tmp_path, cache=cache_dir)
    run_cli("imdb_lm.generate", *args, "seed=0", f"out={tmp_path / 'b.jsonl'}", cwd=tmp_path, cache=cache_dir)
    run_cli("imdb_lm.generate", *args, "seed=1", f"out={tmp_path / 'c.jsonl'}", cwd=tmp_path, cache=cache_dir)
    a, b, c = (generated(run, tmp_path / f"{name}.jsonl") for name in "abc")
    assert len(a) == 3 and first.stdout.count("This movie") == 3
    assert [r["text"] for r in a] == [r["text"] for r in b] and [r["text"] for r in a] != [r["text"] for r in c]
    for row in a:
        assert row["prompt"] == "This movie" and row["label"] == "positive"
        assert 1 <= row["tokens"] <= 6 and row["seconds"] > 0 and set(row) >= {"text", "ended"}


@pytest.mark.parametrize("case, args, option", [pytest.param(*case, id=case[0].replace(" ", "_")) for case in [
    ("classifier run", ["prompt=This movie"], "ckpt="),
    ("empty prompt", ["prompt="], "prompt"),
    ("blank prompt", ["prompt=  "], "prompt"),
    ("no new tokens", ["prompt=This movie", "max_new_tokens=0"], "max_new_tokens=0"),
    ("negative new tokens", ["prompt=This movie", "max_new_tokens=-3"], "max_new_tokens=-3"),
    ("unknown label", ["prompt=This movie", "label=great"], "label=great"),
    ("label on an unconditional LM", ["prompt=This movie", "label=positive"], "lm.conditional=true"),
]])
def test_generate_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path, cache_dir, case, args, option):
    run = trained_run(cache_dir, "bigru" if case == "classifier run" else "lm")
    before = sorted(p.name for p in run.rglob("*"))
    proc = run_cli("imdb_lm.generate", f"ckpt={run}", *args, cwd=tmp_path, cache=cache_dir, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and option in lines[0], proc.stderr
    assert sorted(p.name for p in run.rglob("*")) == before and not list(tmp_path.iterdir())


def test_generate_help_lists_every_option(tmp_path, cache_dir):
    proc = run_cli("imdb_lm.generate", "--help", cwd=tmp_path, cache=cache_dir)
    for option in ("ckpt=", "prompt=", "label=", "n=1", "max_new_tokens=64", "temperature=1.0", "top_k=50",
                   "top_p=0.95", "seed=0", "out="):
        assert option in proc.stdout


@pytest.mark.parametrize("args, expected", [
    (["model=gru_lm", "lm.conditional=true"], "lm.conditional is an option of task=lm; add task=lm"),
    (["task=lm", "model=gru"], "task=lm needs a language-model preset, not model=gru"),
    (["model=gru_lm"], "model=gru_lm is a language model; train it with task=lm"),
    (["task=lm", "model=gru_lm", "model.size=huge"], "model.size=huge is unknown"),
    (["task=lm", "model=gru_lm", "lm.conditional=maybe"], "lm.conditional=maybe must be true or false"),
])
def test_train_refuses_a_task_and_model_mismatch_in_one_line(tmp_path, cache_dir, args, expected):
    proc = run_cli("imdb_lm.train", *args, cwd=tmp_path, cache=cache_dir, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_predict_refuses_a_language_model_in_one_line(tmp_path, cache_dir):
    run = trained_run(cache_dir, "lm")
    proc = run_cli("imdb_lm.predict", f"ckpt={run}", "text=A fine film.", cwd=tmp_path, cache=cache_dir, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "not a classifier" in lines[0], proc.stderr
    assert "python -m imdb_lm.generate" in lines[0] and not list(tmp_path.iterdir())
