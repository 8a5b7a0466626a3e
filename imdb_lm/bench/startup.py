"""How fast the command line answers: whole-process timings of the commands a user types first.

Targets (a 2-core CPU): `python -m imdb_lm.train --help` and every one-line error about the config
itself (an unknown group choice, an unknown key, an invalid value) within 3 s; errors that need the
data or a checkpoint read within 5 s; `predict` of one review from a BiGRU run within 8 s. Each
command runs `repeats` times in a fresh process (imports included, as a user sees it), interleaved,
and its median is compared with its target. Run by `python -m imdb_lm.bench startup=N`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONFIG_TARGET_S, DATA_TARGET_S, PREDICT_TARGET_S = 3.0, 5.0, 8.0


def commands(run_dir: str | None, scratch: Path) -> dict[str, tuple[list[str], int, float]]:
    """name -> (arguments after `python -m`, expected exit status, target seconds)."""
    not_a_checkpoint = scratch / "notes.ckpt"
    not_a_checkpoint.write_text("not a checkpoint\n")
    missing = scratch / "no_such_reviews.csv"
    cmds = {
        "train --help": (["imdb_lm.train", "--help"], 0, CONFIG_TARGET_S),
        "error: unknown group choice": (["imdb_lm.train", "model=nosuch"], 2, CONFIG_TARGET_S),
        "error: unknown key": (["imdb_lm.train", "optimizer.lrr=0.1"], 2, CONFIG_TARGET_S),
        "error: invalid value": (["imdb_lm.train", "optimizer.lr=-1"], 2, CONFIG_TARGET_S),
        "error: missing data file": (["imdb_lm.train", "data.source=csv", f"data.path={missing}"], 2,
                                     DATA_TARGET_S),
        "error: unreadable checkpoint": (["imdb_lm.predict", f"ckpt={not_a_checkpoint}", "text=fine"], 2, DATA_TARGET_S),
        "predict --help": (["imdb_lm.predict", "--help"], 0, CONFIG_TARGET_S),
    }
    if run_dir:
        cmds["predict one review (BiGRU)"] = (["imdb_lm.predict", f"ckpt={run_dir}", "text=A fine film."], 0,
                                              PREDICT_TARGET_S)
    return cmds


def time_commands(cmds: dict[str, tuple[list[str], int, float]], repeats: int, cwd: Path) -> dict:
    """Median (and all) wall seconds per command; a command that exits otherwise than expected fails."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "TOKENIZERS_PARALLELISM": "false"}
    seconds: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(repeats):
        for name, (args, expected, _) in cmds.items():  # interleaved: load hits every command alike
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True)
            seconds[name].append(time.perf_counter() - start)
            if proc.returncode != expected:
                raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}, expected {expected}:\n"
                                   f"{proc.stderr[-2000:]}")
    out = {}
    for name, (args, _, target) in cmds.items():
        median = statistics.median(seconds[name])
        out[name] = {"command": "python -m " + " ".join(args), "median_s": median, "all_s": seconds[name],
                     "target_s": target, "met": median <= target}
    return out


def find_bigru_run(root: Path = Path("outputs")) -> str | None:
    """The newest finished BiGRU run under outputs/ (make train leaves one), for the predict timing."""
    import json

    found = []
    for path in root.glob("runs/*/metrics.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if (record.get("model") or {}).get("name") == "bigru" and record.get("status") == "completed":
            found.append((path.stat().st_mtime, str(path.parent)))
    return max(found)[1] if found else None


def measure_startup(repeats: int, scratch: Path, cwd: Path) -> dict:
    """The record's `startup` block: each command's timings against its target, and whether all met."""
    run_dir = find_bigru_run(cwd / "outputs")
    timings = time_commands(commands(run_dir, scratch), repeats, cwd)
    return {"repeats": repeats, "bigru_run": run_dir and os.path.relpath(run_dir, cwd),
            "predict_skipped": None if run_dir else "no finished BiGRU run under outputs/ (make train makes one)",
            "commands": timings, "all_met": all(t["met"] for t in timings.values())}


def print_startup(block: dict) -> None:
    print(f"\nstart-up (whole process, median of {block['repeats']}):")
    for name, t in block["commands"].items():
        print(f"  {name:<34}{t['median_s']:>6.2f} s  (target {t['target_s']:g} s: {'met' if t['met'] else 'NOT met'})")
    if block["predict_skipped"]:
        print(f"  predict one review: skipped, {block['predict_skipped']}")
