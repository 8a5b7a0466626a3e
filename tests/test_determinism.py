"""seed= makes CPU runs repeatable and trainer.deterministic=true is honoured.

Slow (three trainings); the default suite covers repeatability through tests/test_resume.py, whose
uninterrupted and interrupted-then-resumed runs with one seed end with identical weights."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import load_metrics, run_cli, run_dirs
from tests.reliability_args import TINY_GRU


def train(cwd, cache, *args):
    cwd.mkdir()
    run_cli("imdb_lm.train", *TINY_GRU, "trainer.max_epochs=1", *args, cwd=cwd, cache=cache)
    (run_dir,) = run_dirs(cwd)
    weights = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    return load_metrics(run_dir), weights


@pytest.mark.slow
def test_same_seed_same_run_other_seed_other_run(tmp_path, cache_dir):
    first, w1 = train(tmp_path / "a", cache_dir, "seed=7")
    second, w2 = train(tmp_path / "b", cache_dir, "seed=7")
    other, w3 = train(tmp_path / "c", cache_dir, "seed=8")
    assert first["config"]["trainer"]["deterministic"] is True
    assert first["metrics"]["test"] == second["metrics"]["test"]
    assert first["metrics"]["val"] == second["metrics"]["val"]
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert not all(torch.equal(w1[k], w3[k]) for k in w1)  # the seed matters
