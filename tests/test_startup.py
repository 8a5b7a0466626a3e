"""The bench's whole-process start-up check: every command a user types first exits as expected.

Only the plumbing is tested here (exit statuses, the record's shape, the predict row found from a
real run); the timings against their targets are the bench's to judge (`python -m imdb_lm.bench
startup=3`), on a quiet machine, not a unit test's.
"""

from __future__ import annotations

import pytest

from imdb_lm.bench.startup import CONFIG_TARGET_S, DATA_TARGET_S, PREDICT_TARGET_S, measure_startup
from tests.helpers import TINY, run_cli


@pytest.mark.slow
def test_startup_commands_exit_as_expected_and_time_predict_from_a_real_run(tmp_path, cache_dir):
    run_cli("imdb_lm.train", *TINY, "model=bigru", "test=false", cwd=tmp_path, cache=cache_dir)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    block = measure_startup(1, scratch, tmp_path)  # raises if any command exits otherwise than expected
    cmds = block["commands"]
    assert block["bigru_run"].startswith("outputs/runs/") and block["predict_skipped"] is None
    assert cmds["train --help"]["target_s"] == CONFIG_TARGET_S
    assert cmds["error: unreadable checkpoint"]["target_s"] == DATA_TARGET_S
    assert cmds["predict one review (BiGRU)"]["target_s"] == PREDICT_TARGET_S
    for timing in cmds.values():
        assert len(timing["all_s"]) == 1 and timing["median_s"] == timing["all_s"][0] > 0
        assert timing["met"] == (timing["median_s"] <= timing["target_s"])
    assert block["all_met"] == all(t["met"] for t in cmds.values())


def test_startup_without_a_bigru_run_says_predict_was_skipped(tmp_path, monkeypatch):
    import imdb_lm.bench.startup as startup

    monkeypatch.setattr(startup, "time_commands", lambda cmds, repeats, cwd: {
        name: {"median_s": 1.0, "all_s": [1.0], "target_s": target, "met": True, "command": " ".join(args)}
        for name, (args, _, target) in cmds.items()})
    block = measure_startup(1, tmp_path, tmp_path)
    assert block["predict_skipped"].startswith("no finished BiGRU run")
    assert "predict one review (BiGRU)" not in block["commands"]
