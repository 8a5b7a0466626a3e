"""`python -m imdb_lm.train --help`: every option is listed with a line of help, and it answers, as a
mistyped option does, without importing torch, Lightning or transformers (help.py composes the YAML
files only; overrides.py checks the arguments before Hydra starts)."""

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


def imported_by(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """`python -m imdb_lm.train args` itself, in a new interpreter that lists every module it imports
    (-X importtime: one stderr line per import, whatever imports it and however it exits)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "imdb_lm.train", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    imports = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    modules = {line.rsplit("|", 1)[1].strip() for line in imports[1:]}  # the first line is the header
    done.stderr = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("import time:"))
    return done, modules


@pytest.mark.parametrize("args, code, module", [
    (["--help"], 0, "imdb_lm.config.help"),
    (["model=nosuch"], 2, "imdb_lm.config.overrides"),
], ids=["help", "config error"])
def test_help_and_a_config_error_import_no_torch(args, code, module):
    done, modules = imported_by(*args)
    assert done.returncode == code, done.stderr
    assert module in modules  # the probe sees the command's own imports ...
    heavy = sorted(m for m in modules if m.split(".")[0] in ("torch", "lightning", "transformers"))
    assert heavy == [], heavy[:5]  # ... and none of the heavy libraries


def test_checker_sees_a_missing_help_line():
    text = "Options (key=value):\n  a=1\n      help of a\n  b=2\n  c=3\n      help of c"
    assert options_without_help(text) == ["b"]
