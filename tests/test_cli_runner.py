"""The forked CLI runner (tests/cli_runner.py) behaves as a new interpreter would: the same exit
status and output, the run's own folder and environment, and a timeout that stops it."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.cli_runner import run_forked
from tests.helpers import cli_env, run_cli


def test_forked_and_fresh_runs_give_the_same_status_and_error(tmp_path, cache_dir):
    forked = run_cli("imdb_lm.train", "model=nosuch", cwd=tmp_path, cache=cache_dir, check=False)
    fresh = run_cli("imdb_lm.train", "model=nosuch", cwd=tmp_path, cache=cache_dir, check=False, fresh=True)
    assert forked.returncode == fresh.returncode != 0
    assert forked.stderr.strip() == fresh.stderr.strip() != ""
    assert "model=nosuch" in forked.stderr and not list(tmp_path.iterdir())  # nothing half-written


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
