"""Run folders never collide: two processes composing the config at the same moment get distinct
run and sweep folders (process id + random tag), each stable within its process."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import ROOT

COMPOSE = """
from hydra import compose, initialize_config_dir
import imdb_lm.config.overrides as o
with initialize_config_dir(config_dir=str(o.CONF_DIR), version_base="1.3"):
    cfg = compose("train", overrides=["model=gru"], return_hydra_config=True)
import os
print(os.getpid(), cfg.hydra.run.dir, cfg.hydra.run.dir, cfg.hydra.sweep.dir)
"""


def test_simultaneous_jobs_get_distinct_folders(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", COMPOSE], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    lines = [p.communicate(timeout=120)[0].split() for p in procs]
    for pid, run_dir, again, sweep_dir in lines:
        assert run_dir == again  # resolved once per process: one job, one folder
        assert f"_{pid}-" in run_dir and f"_{pid}-" in sweep_dir
        assert run_dir.startswith("outputs/runs/") and run_dir.endswith("_gru")
    (_, a, _, sa), (_, b, _, sb) = lines
    # the part after the timestamp differs even if both started in the same microsecond
    assert a.split("_", 2)[2] != b.split("_", 2)[2] and sa.split("_", 2)[2] != sb.split("_", 2)[2]
