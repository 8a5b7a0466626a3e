"""The forked CLI runner (tests/cli_runner.py) behaves as a new interpreter would: the same exit
status and output, the run's own folder and environment, and a timeout that stops it."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli_runner import fork_disabled, run_forked
from tests.helpers import cli_env, run_cli
from tests.trained_runs import trained_run


def test_forked_and_fresh_runs_give_the_same_status_and_error(tmp_path, cache_dir):
    forked = run_cli("imdb_lm.train", "model=nosuch", cwd=tmp_path, cache=cache_dir, check=False)
    fresh = run_cli("imdb_lm.train", "model=nosuch", cwd=tmp_path, cache=cache_dir, check=False, fresh=True)
    assert forked.returncode == fresh.returncode != 0
    assert forked.stderr.strip() == fresh.stderr.strip() != ""
    assert "model=nosuch" in forked.stderr and not list(tmp_path.iterdir())  # nothing half-written


def comparable(run_dir: Path) -> dict:
    """The run's record without what differs between any two runs: times, timings and its own folder."""
    text = (run_dir / "metrics.json").read_text()
    record = json.loads(text.replace(json.loads(text)["config"]["paths"]["run_dir"], "<run>"))
    for key in ("timing", "started_at", "finished_at"):
        record.pop(key)
    for epoch in record["history"]:
        epoch.pop("epoch_seconds")
    return record


@pytest.mark.slow
@pytest.mark.skipif(fork_disabled(), reason="IMDB_LM_TEST_FRESH_CLI=1: the session's runs are fresh too")
def test_forked_and_fresh_training_write_the_same_record(cache_dir):
    # the session's bigru (forked, shared with the other tests) and its recipe trained by a new interpreter
    forked, fresh = trained_run(cache_dir, "bigru"), trained_run(cache_dir, "bigru", fresh=True)
    assert comparable(forked)["status"] == "completed"
    assert comparable(forked) == comparable(fresh)


def test_a_forked_run_has_its_own_folder_environment_and_argv(tmp_path, cache_dir):
    code = "import os, sys; print(os.getcwd()); print(os.environ['PROBE']); print(sys.argv[1:])"
    done = run_forked("timeit", ["-n", "1", f"exec({code!r})"], tmp_path, cli_env(cache_dir, PROBE="x1"), 60)
    assert done.returncode == 0, done.stderr
    cwd, probe, argv = done.stdout.splitlines()[:3]
    assert (cwd, probe) == (str(tmp_path), "x1") and argv.startswith("['-n', '1'")


def test_a_forked_run_past_its_timeout_is_stopped(tmp_path, cache_dir):
    start = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run_forked("timeit", ["-n", "1", "import time; time.sleep(60)"], tmp_path, cli_env(cache_dir), 3)
    assert time.monotonic() - start < 30
