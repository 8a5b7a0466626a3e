"""`python -m imdb_lm.train --help`: every option is listed with a line of help, and it answers
without importing torch (help.py composes the YAML files only)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from imdb_lm.config.help import train_help

ROOT = Path(__file__).resolve().parents[1]
OPTION = re.compile(r"^  (?P<key>[A-Za-z_][\w./]*)=")
HELP = re.compile(r"^      \S")


def options_without_help(text: str) -> list[str]:
    """Option lines of the help text not followed by an indented help line."""
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("Options"))
    missing = []
    for i in range(start + 1, len(lines)):
        match = OPTION.match(lines[i])
        if match and not (i + 1 < len(lines) and HELP.match(lines[i + 1])):
            missing.append(match["key"])
    return missing


def test_real_cli_help_gives_every_option_a_help_line():
    done = subprocess.run([sys.executable, "-m", "imdb_lm.train", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Options (key=value" in done.stdout
    listed = [m["key"] for line in done.stdout.splitlines() if (m := OPTION.match(line))]
    assert {"seed", "data.source", "model.hidden_size", "optimizer.lr", "trainer.max_steps",
            "callbacks.stability.majority_patience", "paths.cache_dir"} <= set(listed)
    assert options_without_help(done.stdout) == []


@pytest.mark.parametrize("overrides", [
    ["model=transformer", "optimizer=sgd", "scheduler=cosine"],
    ["model=bert_base", "optimizer=rmsprop", "scheduler=none", "trainer=ddp"],
    ["model=lstm", "optimizer=adamw", "scheduler=linear_warmup", "logger=none"],
    ["model=bow", "optimizer=sgd"],
    ["model=transformer_scratch"],
    ["model=bigru_minilm_emb"],
    ["task=lm", "model=gru_lm"],
    ["task=lm", "model=mingru_lm"],
    ["task=lm", "model=transformer_lm"],
], ids=lambda o: o[1] if o[0] == "task=lm" else o[0])
def test_other_presets_options_have_help_too(overrides):
    assert options_without_help(train_help("summary", overrides)) == []


def test_help_imports_no_torch():
    code = ("import sys; from imdb_lm.config.help import train_help; train_help('x'); "
            "heavy = [m for m in ('torch', 'lightning', 'transformers') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_checker_sees_a_missing_help_line():
    text = "Options (key=value):\n  a=1\n      help of a\n  b=2\n  c=3\n      help of c"
    assert options_without_help(text) == ["b"]
