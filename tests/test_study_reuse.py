"""What `make study` may take as already done: a finished record of the same experiment, never one
made under another results version (said aloud) or at another precision; and the study's fixed
precision makes a record of any machine the same experiment."""

from __future__ import annotations

import json
import shutil

import pytest

from imdb_lm.config import resolvers
from imdb_lm.config.compose import compose_train
from imdb_lm.runs.key import RESULTS_VERSION, config_key
from imdb_lm.runs.records import read_metrics
from tests.helpers import run_cli

RUN = ["experiment=study", "model=gru", "optimizer=adam", "data.train_limit=48", "data.val_limit=32",
       "data.test_limit=32", "data.max_length=32", "trainer.max_epochs=1", "callbacks.min_steps.steps=2",
       "callbacks.metrics_timing.latency_samples=3", "results_dirs=[committed]", "logger=none"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, cache_dir):
    """One finished study job, as if committed under `committed/` by an earlier run."""
    cwd = tmp_path_factory.mktemp("reuse")
    run_cli("imdb_lm.train", *RUN, "hydra.run.dir=committed/first", cwd=cwd, cache=cache_dir)
    return cwd, read_metrics(cwd / "committed" / "first")


def _again(cwd, cache_dir, name, *extra):
    proc = run_cli("imdb_lm.train", *RUN, *extra, f"hydra.run.dir=outputs/{name}", cwd=cwd, cache=cache_dir)
    return proc, read_metrics(cwd / "outputs" / name)


@pytest.mark.slow
def test_a_record_of_another_results_version_is_retrained_and_says_so(finished, cache_dir):
    cwd, record = finished
    stale = cwd / "committed" / "stale"
    shutil.copytree(cwd / "committed" / "first", stale)
    shutil.move(cwd / "committed" / "first", cwd / "first")  # only the stale copy is left to find
    try:
        path = stale / "metrics.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "results_version": RESULTS_VERSION - 1}))
        proc, again = _again(cwd, cache_dir, "after_stale")
        assert "not reusing finished records made under another results version" in proc.stdout
        assert "reused_from" not in again and (cwd / "outputs" / "after_stale" / "checkpoints").is_dir()
        assert again["config_key"] == record["config_key"]  # the same job, trained afresh
    finally:
        shutil.rmtree(stale)
        shutil.move(cwd / "first", cwd / "committed" / "first")


@pytest.mark.slow
def test_a_record_made_at_another_precision_is_another_experiment(finished, cache_dir):
    cwd, record = finished
    # The same job at bf16 (what a bf16-capable machine would run without the study's fixed precision).
    bf16_key = config_key(compose_train([*RUN, "trainer.precision=bf16-mixed"]))
    assert bf16_key != record["config_key"]
    other = cwd / "committed" / "bf16"
    shutil.copytree(cwd / "committed" / "first", other)
    shutil.move(cwd / "committed" / "first", cwd / "first")
    try:
        path = other / "metrics.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "config_key": bf16_key}))
        proc, again = _again(cwd, cache_dir, "at_32")
        assert "skip_completed: reusing" not in proc.stdout and "reused_from" not in again
        assert again["config_key"] == record["config_key"]
        # ... while a bf16 job does find its own record (the key is all that decides)
        proc, reused = _again(cwd, cache_dir, "at_bf16", "trainer.precision=bf16-mixed")
        assert reused["reused_from"] == str(other)
    finally:
        shutil.rmtree(other)
        shutil.move(cwd / "first", cwd / "committed" / "first")


@pytest.mark.parametrize("native_bf16", [True, False])
def test_the_study_is_the_same_experiment_on_every_machine(monkeypatch, native_bf16):
    plain = config_key(compose_train(["experiment=study", "model=transformer"]))
    monkeypatch.setattr(resolvers, "bf16_native", lambda device_type: native_bf16)
    assert config_key(compose_train(["experiment=study", "model=transformer"])) == plain
    # without the study's fixed precision, the recipe's bf16 would make it another experiment there
    recipe = compose_train(["model=transformer"])
    assert recipe.trainer.precision == ("bf16-mixed" if native_bf16 else "32-true")
