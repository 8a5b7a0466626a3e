"""trainer=ddp_cpu: two gloo processes train one model on shards of the same split and write one
consistent record; every test review is evaluated exactly once."""

from __future__ import annotations

import csv

from tests.helpers import load_metrics, run_cli, run_dirs
from tests.reliability_args import TINY_GRU


def test_ddp_cpu_two_processes_write_one_consistent_record(tmp_path, cache_dir):
    # eval batches of 16: each of the 2 ranks gets test batches to evaluate. fresh: Lightning starts
    # the second rank by re-executing sys.argv, which a user's `python -m` has and a forked run fakes
    proc = run_cli("imdb_lm.train", *TINY_GRU, "trainer=ddp_cpu", "trainer.max_epochs=1",
                   "data.eval_batch_size=16", cwd=tmp_path, cache=cache_dir, fresh=True)
    (run_dir,) = run_dirs(tmp_path)  # one run folder, one metrics.json
    assert (run_dir / "train_ddp_process_1.log").exists()  # the second process ran in the same folder
    record = load_metrics(run_dir)
    assert record["status"] == "completed"
    assert record["env"]["world_size"] == 2
    assert record["config"]["trainer"]["strategy"] == "ddp"

    with (run_dir / "predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    hashes = [r["review_hash"] for r in rows]
    # the whole test split, each review once (not once per process)
    assert len(hashes) == len(set(hashes)) == record["splits"]["test"]["count"] == 128
    # the accuracy synchronised across processes is the accuracy of the gathered predictions
    acc = sum((float(r["prob_pos"]) > 0.5) == (r["label"] == "1") for r in rows) / len(rows)
    assert abs(acc - record["metrics"]["test"]["acc"]) < 1e-6
    # each process trained 4 of the 8 batches per epoch: 4 optimizer steps
    assert record["history"][0]["step"] == 4
    assert "test accuracy" in proc.stdout
