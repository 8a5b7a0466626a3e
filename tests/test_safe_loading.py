"""Checkpoints are read without executing code from them: a crafted file is refused on resume."""

from __future__ import annotations

import os

import torch

from tests.helpers import run_cli
from tests.reliability_args import TINY_GRU


class RunsCodeOnLoad:
    """Unpickling this calls os.system: what a malicious checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def refused(proc) -> str:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    return line


def test_checkpoint_that_runs_code_on_load_is_refused(tmp_path, cache_dir):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": RunsCodeOnLoad(marker)}, evil)
    torch.load(evil, weights_only=False)  # the file is live: plain unpickling runs its code
    assert marker.exists()
    marker.unlink()

    work = tmp_path / "work"
    work.mkdir()
    proc = run_cli("imdb_lm.train", *TINY_GRU, f"ckpt_path={evil}", cwd=work, cache=cache_dir, check=False)
    line = refused(proc)
    assert f"{evil}: refused" in line and "execute code" in line
    assert not marker.exists()
    assert not (work / "outputs").exists() or not list((work / "outputs").rglob("*.*"))


def test_truncated_checkpoint_is_refused_with_one_line(tmp_path, cache_dir):
    broken = tmp_path / "broken.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, broken)
    broken.write_bytes(broken.read_bytes()[:300])  # a copy cut short
    proc = run_cli("imdb_lm.train", *TINY_GRU, f"ckpt_path={broken}", cwd=tmp_path, cache=cache_dir, check=False)
    assert f"{broken}: not a readable PyTorch checkpoint" in refused(proc)
