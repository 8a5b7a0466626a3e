"""The tokenization cache: a build killed half-way leaves nothing a later run trusts, and two
processes that need the same cache at once build it once and both go on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.helpers import ROOT, cli_env, load_metrics, run_cli, run_dirs
from tests.reliability_args import TINY_GRU

DELAY = "IMDB_LM_CACHE_BUILD_DELAY_S"  # test hook: holds the build open inside its temporary folder


def entries(cache):
    return sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock"))


def wait_for(predicate, proc, seconds=240):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_killed_build_leaves_nothing_trusted_and_next_run_rebuilds(tmp_path):
    cache = tmp_path / "cache"
    args = [*TINY_GRU, "trainer.max_epochs=1"]
    proc = subprocess.Popen([sys.executable, "-m", "imdb_lm.train", *args], cwd=tmp_path,
                            env=cli_env(cache, **{DELAY: "120"}), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(lambda: cache.exists() and any(n.startswith(".tmp-") for n in entries(cache)), proc)
    proc.send_signal(signal.SIGKILL)  # no handler, no cleanup: the worst case
    proc.communicate(timeout=60)
    (leftover,) = entries(cache)
    assert leftover.startswith(".tmp-")  # only a temporary folder: no entry a later run would use
    assert not list(cache.glob("*/meta.json"))

    run_cli("imdb_lm.train", *args, cwd=tmp_path, cache=cache)
    (entry,) = entries(cache)  # rebuilt, and the killed build's leftover removed
    assert not entry.startswith(".tmp-") and (cache / entry / "meta.json").is_file()
    record = load_metrics(run_dirs(tmp_path)[-1])
    assert record["status"] == "completed" and record["timing"]["tokenization_cache_hit"] is False


BUILD = """
import json, sys
from imdb_lm.data.datamodule import IMDBDataModule
dm = IMDBDataModule(train_limit=64, val_limit=32, test_limit=32, max_length=32, cache_dir=sys.argv[1])
dm.prepare_data()
dm.setup()
print(json.dumps({"built": dm.built_here, "fingerprints": dm.fingerprints,
                  "train": len(dm.datasets["train"])}))
"""


def test_two_processes_build_one_cache_once(tmp_path):
    cache = tmp_path / "cache"
    env = {**cli_env(cache, **{DELAY: "3"}), "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", BUILD, str(cache)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(r["built"] for r in results) == [False, True]  # one built it, one waited and loaded it
    assert results[0]["fingerprints"] == results[1]["fingerprints"]
    assert results[0]["train"] == results[1]["train"] == 64
    assert len(entries(cache)) == 1 and not any(n.startswith(".tmp-") for n in entries(cache))
    assert os.listdir(cache / entries(cache)[0])  # the entry holds the data
