"""Shared test helpers: run the real CLI as a user would, offline, in a temporary folder.

Imported as `tests.helpers` everywhere; conftest.py holds only fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli_runner import fork_disabled, run_forked

ROOT = Path(__file__).resolve().parents[1]
# A small slice of the real bundled data: the whole pipeline in seconds.
TINY = ["debug=smoke", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
# A language model (task=lm) on a smaller slice still: its 30,522-way softmax dominates a step.
LM_TINY = ["task=lm", "model.size=tiny", "data.train_limit=64", "data.val_limit=16", "data.test_limit=16",
           "data.max_length=32", "data.batch_size=8", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
           "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
           "trainer.enable_model_summary=false", "callbacks.metrics_timing.latency_samples=2"]


def worker_threads() -> int | None:
    """CPU threads per test worker when pytest-xdist runs several (None: a single process, torch's
    default). Workers that each start torch with every core's threads oversubscribe the machine, and
    OpenMP threads spinning on a busy core slow every process several-fold."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None


def cli_env(cache: Path, **extra: str) -> dict[str, str]:
    threads = worker_threads()
    limits = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {}
    return {**os.environ, "IMDB_LM_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false", "HYDRA_FULL_ERROR": "0", **limits, **extra}


def run_cli(module: str, *args: str, cwd: Path, cache: Path, timeout: int = 900, check: bool = True,
            fresh: bool = False, **env: str) -> subprocess.CompletedProcess:
    """`python -m module args` in cwd, offline; forked from a process that has done the imports
    (tests/cli_runner.py) unless fresh=True or IMDB_LM_TEST_FRESH_CLI=1 asks for a new interpreter."""
    environment = cli_env(cache, **env)
    if fresh or fork_disabled():
        proc = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=environment,
                              capture_output=True, text=True, timeout=timeout)
    else:
        proc = run_forked(module, list(args), cwd, environment, timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {' '.join(args)} exited {proc.returncode}\n"
                             f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}")
    return proc


def run_dirs(cwd: Path) -> list[Path]:
    """Every run folder (single runs and multirun jobs) that holds a metrics.json."""
    return sorted(p.parent for p in (cwd / "outputs").rglob("metrics.json"))


def load_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def padded_batch(lengths: list[int], vocab: int = 50, seed: int = 0):
    """Random token ids padded to the longest length, with the mask and lengths a model takes."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(2, vocab, (n,), generator=gen)
    lengths = torch.tensor(lengths)
    mask = (torch.arange(ids.shape[1])[None] < lengths[:, None]).long()
    return ids, mask, lengths


def mcnemar_reference(only_a: int, only_b: int) -> tuple[float, float]:
    """McNemar's p from scipy's exact binomial test on the discordant reviews, and how far the code's p
    may lie from it: the same test below 25 of them; from 25 on, the continuity-corrected chi-squared
    is within 0.003 of it, unless the two counts differ by less than 2 (the correction then overshoots,
    and both are far from significant)."""
    from scipy import stats

    discordant = only_a + only_b
    exact = stats.binomtest(min(only_a, only_b), discordant, 0.5).pvalue if discordant else 1.0
    return exact, 1e-9 if discordant < 25 else 0.003 if abs(only_a - only_b) >= 2 else 0.16
