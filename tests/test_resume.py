"""Interrupt and resume: a run stopped by a signal and continued with resume=auto ends exactly where
an uninterrupted run ends (metrics and weights), in the same folder."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.helpers import cli_env, load_metrics, run_cli, run_dirs
from tests.reliability_args import TINY_GRU

TWO_EPOCHS = [*TINY_GRU, "trainer.max_epochs=2"]


def weights(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def without_timing(history):
    return [{k: v for k, v in epoch.items() if "seconds" not in k} for epoch in history]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, cache_dir):
    cwd = tmp_path_factory.mktemp("uninterrupted")
    run_cli("imdb_lm.train", *TWO_EPOCHS, cwd=cwd, cache=cache_dir)
    (run_dir,) = run_dirs(cwd)
    return run_dir


def test_interrupted_mid_epoch_then_resumed_equals_uninterrupted(tmp_path, cache_dir, uninterrupted):
    # SIGTERM after step 11 = epoch 2, batch 4 of 8: the resumed epoch must skip 3 trained batches
    # and continue the dropout random stream.
    first = run_cli("imdb_lm.train", *TWO_EPOCHS, cwd=tmp_path, cache=cache_dir, check=False,
                    IMDB_LM_SIGNAL_AT_STEP="11")
    assert first.returncode == 128 + signal.SIGTERM, first.stderr[-2000:]
    assert "resume=auto" in first.stdout
    (run_dir,) = run_dirs(tmp_path)
    stopped = load_metrics(run_dir)
    assert stopped["status"] == "interrupted"
    assert stopped["metrics"]["test"] == {}
    assert [e["epoch"] for e in stopped["history"]] == [0]
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 11

    second = run_cli("imdb_lm.train", *TWO_EPOCHS, "resume=auto", cwd=tmp_path, cache=cache_dir)
    assert f"continuing {run_dir}" in second.stdout
    assert run_dirs(tmp_path) == [run_dir]  # same folder, no new one
    resumed, reference = load_metrics(run_dir), load_metrics(uninterrupted)
    assert resumed["status"] == "completed"
    assert resumed["resumed_from"].endswith("last.ckpt")
    assert resumed["metrics"]["test"] == reference["metrics"]["test"]
    assert resumed["metrics"]["val"] == reference["metrics"]["val"]
    assert without_timing(resumed["history"]) == without_timing(reference["history"])
    a, b = weights(run_dir), weights(uninterrupted)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (run_dir / "predictions.csv").read_text() == (uninterrupted / "predictions.csv").read_text()


def test_ctrl_c_saves_checkpoint_and_resume_auto_finishes(tmp_path, cache_dir):
    args = [*TINY_GRU, "trainer.max_epochs=2"]
    proc = subprocess.Popen([sys.executable, "-m", "imdb_lm.train", *args], cwd=tmp_path,
                            env=cli_env(cache_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait for the first epoch's checkpoint, then press Ctrl+C.
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob("outputs/runs/*/checkpoints/last.ckpt")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint after 300 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    (run_dir,) = [p for p in tmp_path.glob("outputs/runs/*") if p.is_dir()]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "interrupted" and record["checkpoint"].endswith("last.ckpt")
    assert not list(run_dir.glob("checkpoints/.*.tmp"))  # the checkpoint was renamed into place

    run_cli("imdb_lm.train", *args, "resume=auto", cwd=tmp_path, cache=cache_dir)
    finished = load_metrics(run_dir)
    assert finished["status"] == "completed"
    assert [e["epoch"] for e in finished["history"]] == [0, 1]
    assert finished["metrics"]["test"]["acc"] > 0

    # Nothing left to continue: says so, trains nothing, creates no folder.
    again = run_cli("imdb_lm.train", *args, "resume=auto", cwd=tmp_path, cache=cache_dir)
    assert "already finished" in again.stdout
    assert [p for p in tmp_path.glob("outputs/runs/*") if p.is_dir()] == [run_dir]


def test_explicit_ckpt_path_continues_in_a_new_folder(tmp_path, cache_dir, uninterrupted):
    # One more epoch on top of the uninterrupted 2-epoch run: starts at epoch 2 with its optimizer state.
    proc = run_cli("imdb_lm.train", *TINY_GRU, "trainer.max_epochs=3",
                   f"ckpt_path={uninterrupted / 'checkpoints' / 'last.ckpt'}", cwd=tmp_path, cache=cache_dir)
    assert "Restoring states from the checkpoint" in proc.stdout + proc.stderr
    (run_dir,) = run_dirs(tmp_path)
    record = load_metrics(run_dir)
    assert record["status"] == "completed"
    assert [e["epoch"] for e in record["history"]] == [0, 1, 2]  # history carried over + the new epoch
    assert record["history"][2]["step"] == 24


@pytest.mark.slow
def test_rerun_sweep_with_resume_auto_continues_interrupted_jobs(tmp_path, cache_dir):
    sweep = ["--multirun", *TINY_GRU, "trainer.max_epochs=1", "seed=1,2"]
    first = run_cli("imdb_lm.train", *sweep, cwd=tmp_path, cache=cache_dir, check=False,
                    IMDB_LM_SIGNAL_AT_STEP="3")
    assert first.returncode == 143  # job 0 interrupted: the sweep stops there
    (job0,) = [p.parent for p in tmp_path.glob("outputs/multirun/*/*/metrics.json")]
    assert load_metrics(job0)["status"] == "interrupted"

    run_cli("imdb_lm.train", *sweep, "resume=auto", cwd=tmp_path, cache=cache_dir)
    records = {p.parent: load_metrics(p.parent) for p in tmp_path.glob("outputs/multirun/*/*/metrics.json")}
    assert len(records) == 2 and all(r["status"] == "completed" for r in records.values())
    assert records[job0]["resumed_from"].endswith("last.ckpt")  # continued in its own folder

    again = run_cli("imdb_lm.train", *sweep, "resume=auto", cwd=tmp_path, cache=cache_dir)
    assert again.stdout.count("already finished") == 2
