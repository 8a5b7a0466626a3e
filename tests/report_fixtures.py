"""A tiny real sweep of `experiment=compare_quick`, built once per test session and shared.

Two models (GRU and the bundled MiniLM) x two optimizers x two batch sizes (the experiment narrows
the transformer to batch 16), then one more seed of each model's best setting: eight real jobs on a
few dozen bundled reviews, seconds each.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock

from tests.helpers import run_cli

SWEEP_ARGS = [
    "--multirun", "experiment=compare_quick", "model=gru,transformer", "optimizer=adam,sgd", "lr_scale=1",
    "data.batch_size=16,32", "hydra.sweeper.seeds=[1]",
    "data.train_limit=48", "data.val_limit=32", "data.test_limit=48",
    "study.max_length.recurrent=32", "study.max_length.transformer=24", "study.max_epochs.recurrent=1",
    "trainer.limit_train_batches=2", "callbacks.metrics_timing.latency_samples=3",
]
JOBS = 8


def tiny_sweep_dir(base: Path, cache: Path) -> Path:
    """Run the tiny sweep under `base` once (later calls, from any test module and any test worker,
    reuse it: the callers pass the folder the workers share, the cache's)."""
    cwd = base / "tiny_sweep"
    sweep = cwd / "outputs" / "multirun" / "tiny"
    with FileLock(str(base / "tiny_sweep.lock")):
        if not (cwd / "done").is_file():
            cwd.mkdir(exist_ok=True)
            run_cli("imdb_lm.train", *SWEEP_ARGS, f"hydra.sweep.dir={sweep}", cwd=cwd, cache=cache)
            (cwd / "done").write_text("ok")
    return sweep
