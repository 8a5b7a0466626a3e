"""The run-identity policy (imdb_lm/runs/key.py): the key changes exactly when the result can."""

from __future__ import annotations

import ast
import hashlib
import shutil
from pathlib import Path

import pytest

from imdb_lm.config.compose import compose_train
from imdb_lm.runs import key as run_key

ROOT = Path(__file__).resolve().parents[1]
BASE = ["model=bigru", "optimizer=adam", "seed=1", "trainer.precision=32-true", "data.train_limit=1000"]


def key_of(*overrides: str) -> str:
    return run_key.config_key(compose_train([*BASE, *overrides]))


def test_the_key_of_a_fixed_config_is_pinned():
    # Changing it forgets every earlier record (resume=auto, skip_completed, published study
    # records): only on purpose, together with RESULTS_VERSION or the policy itself.
    assert key_of() == "cc928566b9c7c7cebc71"


@pytest.mark.parametrize("override", [
    "logger=none", "trainer.log_every_n_steps=1", "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false", "trainer.num_sanity_val_steps=0",
    "callbacks.metrics_timing.latency_samples=3", "callbacks.attributions=null", "callbacks.test_examples=null",
    "callbacks.model_checkpoint.save_last=false", "callbacks.model_checkpoint.dirpath=/elsewhere",
    "paths.cache_dir=/elsewhere", "data.num_workers=2", "data.eval_batch_size=7",
    "results_dirs=[/x]", "skip_completed=true", "compile=true", "model.fused_cpu_gru=false",
    "+optuna_trial.number=3", "+optuna_trial.study=gru",  # which Optuna trial a job reports to
    # Lightning's usual arguments typed out at their defaults: an unset value is no new run
    "trainer.max_steps=-1", "trainer.accumulate_grad_batches=1", "trainer.limit_train_batches=1.0",
    "trainer.check_val_every_n_epoch=1", "trainer.fast_dev_run=false", "+trainer.benchmark=null",
])
def test_what_does_not_change_results_keeps_the_key(override):
    assert key_of(override) == key_of()


def test_an_equal_rate_reached_another_way_is_the_same_run():
    rate = compose_train(BASE).optimizer.lr
    assert key_of(f"optimizer.lr={rate * 3}") == key_of("lr_scale=3")


@pytest.mark.parametrize("override", [
    "seed=2", "optimizer=sgd", "optimizer.lr=0.123", "optimizer.weight_decay=0.1", "scheduler=cosine",
    "data.max_length=128", "data.truncation=head_tail", "data.train_limit=500", "data.val_fraction=0.2",
    "data.batch_size=16", "model.hidden_size=64", "model=lstm", "trainer.precision=bf16-mixed",
    "trainer.max_epochs=2", "trainer.max_steps=10", "trainer.limit_train_batches=0.5",
    "trainer.accumulate_grad_batches=2", "trainer.gradient_clip_val=5", "trainer.devices=2",
    "callbacks.model_checkpoint.monitor=val/loss", "callbacks.stability.majority_patience=9",
    "+callbacks.extra._target_=somewhere.EarlyStop", "test=false",
])
def test_what_changes_results_changes_the_key(override):
    assert key_of(override) != key_of()


def test_another_results_version_is_another_run(monkeypatch):
    before = key_of()
    monkeypatch.setattr(run_key, "RESULTS_VERSION", run_key.RESULTS_VERSION + 1)
    assert key_of() != before


# ---- code that changes results is versioned -------------------------------------------------------
# Renew RESULTS_CODE_DIGEST after a change to these files; bump RESULTS_VERSION in
# imdb_lm/runs/key.py too unless the change leaves every result as it was (a refactor).
RESULTS_CODE = ["imdb_lm/data", "imdb_lm/models", "imdb_lm/callbacks/metrics.py", "imdb_lm/callbacks/stability.py",
                "imdb_lm/callbacks/min_steps.py",
                "imdb_lm/config/resolvers.py", "imdb_lm/train.py"]
RESULTS_CODE_DIGEST = "db69222fa210f69b"


def code_digest(root: Path = ROOT) -> str:
    """Python files hashed by their syntax tree without docstrings (comments and docstrings may
    change freely), other sources (the C++ kernel) by their text."""
    digest = hashlib.sha256()
    files = sorted(f for entry in RESULTS_CODE for f in ([root / entry] if (root / entry).is_file()
                   else (root / entry).rglob("*")) if f.suffix in (".py", ".cpp"))
    for path in files:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".py":
            tree = ast.parse(text)
            for node in ast.walk(tree):
                body = getattr(node, "body", None)
                if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                        and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
                    node.body = body[1:] or [ast.Pass()]
            text = ast.dump(tree)
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()[:16]


def test_code_that_changes_results_is_versioned():
    digest = code_digest()
    assert digest == RESULTS_CODE_DIGEST, (
        f"code that changes results changed (RESULTS_CODE in {Path(__file__).name}): if results change, "
        f"bump RESULTS_VERSION in imdb_lm/runs/key.py (records of the old version are then retrained, "
        f"never reused); either way set RESULTS_CODE_DIGEST = \"{digest}\"")


def test_a_docstring_or_comment_does_not_count_as_a_change(tmp_path):
    for entry in RESULTS_CODE:  # a copy: the digest of the checkout itself is pinned above
        target = tmp_path / entry
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / entry).is_dir():
            shutil.copytree(ROOT / entry, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(ROOT / entry, target)
    assert code_digest(tmp_path) == code_digest()
    module = tmp_path / "imdb_lm/models/dropout.py"
    original = module.read_text()
    module.write_text(original.replace('"""', '"""Reworded. ', 1) + "\n# a comment\n")
    assert code_digest(tmp_path) == code_digest()
    module.write_text(original + "\nEXTRA = 1\n")
    assert code_digest(tmp_path) != code_digest()
