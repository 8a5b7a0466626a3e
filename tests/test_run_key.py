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
# Every source under imdb_lm/ and hydra_plugins/ is hashed, except the modules below, which cannot
# change what a training run records (they read records, present them, or run after training on
# their own). A new module is covered by default: leaving it out is a decision written here.
RESULTS_CODE_ROOTS = ["imdb_lm", "hydra_plugins"]
RESULT_NEUTRAL = {
    "imdb_lm/report": "reads records and checkpoints to build the report; never trains",
    "imdb_lm/explain": "attributions after training (the attributions callback only observes: runs/key.py OBSERVERS)",
    "imdb_lm/bench": "timing benchmarks; write their own JSON, never a run record",
    "imdb_lm/gpu_check": "the GPU smoke check and its packaging",
    "imdb_lm/evaluate.py": "evaluates a finished checkpoint on another source; its own file, not the run's result",
    "imdb_lm/predict.py": "predictions of a finished checkpoint",
    "imdb_lm/study/ood.py": "runs imdb_lm.evaluate on the selected runs after training",
    "imdb_lm/evaluation/error_analysis.py": "analysis.json of the written test predictions, after the test",
    "imdb_lm/config/help.py": "--help text",
    "imdb_lm/loggers.py": "TensorBoard/CSV/MLflow/W&B loggers: observers (runs/key.py leaves loggers out)",
    "imdb_lm/callbacks/examples.py": "logs example predictions: an observer (runs/key.py OBSERVERS)",
    "imdb_lm/callbacks/memory.py": "hands freed heap back to the OS: an observer (runs/key.py OBSERVERS)",
    "imdb_lm/memory.py": "allocator settings (how freed memory is kept), not what is computed",
}
CODE_SUFFIXES = (".py", ".cpp", ".h", ".cu")
# {RESULTS_VERSION: {digest: why this code has that version's results}}. A digest is added under the
# current version only for a change shown to leave every result as it was (the behavioural pin in
# tests/test_results_pin.py still passing, and an argument); any other change bumps RESULTS_VERSION.
RESULTS_CODE_DIGESTS = {
    1: {
        "db69222fa210f69b": "the hand-kept list of modules (before the list was inverted)",
        "d47178001079d2ea": "list inverted (every module hashed but the result-neutral ones); imdb_lm/training.py, "
                   "now covered, has no commit since 2d8a8bb, the code of the first published record",
        "ec988826fd97e4dc": "the language-model task (imdb_lm/lm, tasks.py: the classifier's steps moved into "
                            "ClassifierTask unchanged) and the sweeper's policy v2 stages (which jobs run, not what "
                            "a job computes); tests/test_results_pin.py passes unchanged",
        "8cdc4f43979074f0": "a budget that ends before its first validation is refused before training, a run "
                            "that ends unvalidated is failed (configs that validate train as before), and the "
                            "sweepers log failed jobs' errors; tests/test_results_pin.py passes unchanged",
        "1d020239bdf2ccf3": "the two edge rules of the seeded-grid sweeper share one helper (a refactor of which jobs run)",
    },
}


def results_sources(root: Path = ROOT) -> list[Path]:
    neutral = {root / entry for entry in RESULT_NEUTRAL}
    return sorted(path for top in RESULTS_CODE_ROOTS for path in (root / top).rglob("*")
                  if path.suffix in CODE_SUFFIXES and "__pycache__" not in path.parts
                  and not any(path == n or n in path.parents for n in neutral))


def code_digest(root: Path = ROOT) -> str:
    """Python files hashed by their syntax tree without docstrings (comments and docstrings may
    change freely), other sources (the C++ kernel) by their text."""
    digest = hashlib.sha256()
    for path in results_sources(root):
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
    digest, version = code_digest(), run_key.RESULTS_VERSION
    known = RESULTS_CODE_DIGESTS.get(version, {})
    assert digest in known, (
        f"code that can change results changed (every source under {'/ and '.join(RESULTS_CODE_ROOTS)}/ but "
        f"RESULT_NEUTRAL in {Path(__file__).name}); its digest {digest} is not in RESULTS_CODE_DIGESTS[{version}]. "
        f"Decide: if any result can change, bump RESULTS_VERSION in imdb_lm/runs/key.py (records of the old "
        f"version are then retrained, never reused) and add {{{version + 1}: {{\"{digest}\": \"<what changed>\"}}}}; "
        f"if no result can change, show it (tests/test_results_pin.py passes unchanged; say why in the reason) "
        f"and add \"{digest}\": \"<why results are unchanged>\" under RESULTS_CODE_DIGESTS[{version}]")


def test_the_result_neutral_list_names_existing_modules():
    # A renamed module would otherwise drop out of this list silently and be hashed (harmless), or a
    # typo would leave a module covered that was meant to be out: either way the list must be true.
    for entry, reason in RESULT_NEUTRAL.items():
        assert (ROOT / entry).exists(), f"RESULT_NEUTRAL names {entry}, which does not exist"
        assert reason.strip()
    assert ROOT / "imdb_lm/training.py" in results_sources()
    assert not any("imdb_lm/report/" in p.as_posix() for p in results_sources())


def _copy_sources(tmp_path: Path) -> None:
    for top in RESULTS_CODE_ROOTS:  # a copy: the digest of the checkout itself is pinned above
        shutil.copytree(ROOT / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__"))


def test_a_docstring_or_comment_does_not_count_as_a_change(tmp_path):
    _copy_sources(tmp_path)
    assert code_digest(tmp_path) == code_digest()
    module = tmp_path / "imdb_lm/models/dropout.py"
    original = module.read_text()
    module.write_text(original.replace('"""', '"""Reworded. ', 1) + "\n# a comment\n")
    assert code_digest(tmp_path) == code_digest()
    module.write_text(original + "\nEXTRA = 1\n")
    assert code_digest(tmp_path) != code_digest()


@pytest.mark.parametrize("edit", [
    # the two edits the hand-kept list let through: another seed, and denormals no longer flushed
    ("imdb_lm/training.py", "L.seed_everything(cfg.seed,", "L.seed_everything(cfg.seed + 1,"),
    ("imdb_lm/training.py", "    torch.set_flush_denormal(True)\n", ""),
    ("hydra_plugins/imdb_lm_sweeper/stages.py", "def ", "def _unused(): return 0\n\n\ndef "),
])
def test_an_edit_anywhere_in_the_training_code_changes_the_digest(tmp_path, edit):
    _copy_sources(tmp_path)
    path, old, new = edit
    module = tmp_path / path
    assert old in module.read_text(), f"{path} no longer holds {old!r}: update this test"
    module.write_text(module.read_text().replace(old, new, 1))
    assert code_digest(tmp_path) != code_digest()


def test_a_new_module_is_covered_by_default(tmp_path):
    _copy_sources(tmp_path)
    (tmp_path / "imdb_lm/data/new_step.py").write_text("SCALE = 2\n")
    assert code_digest(tmp_path) != code_digest()
    (tmp_path / "imdb_lm/data/new_step.py").unlink()
    (tmp_path / "imdb_lm/report/new_table.py").write_text("WIDTH = 2\n")
    assert code_digest(tmp_path) == code_digest()
