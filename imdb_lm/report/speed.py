"""Speed ratios from one interleaved bench (`python -m imdb_lm.bench across_models=true ...`).

Run records time each job on whatever machine ran it, under whatever load it had; a study spans
machines and sessions. Ratios between models are therefore read, where one exists, from `speed.json`
in a results folder: every model measured in one process, interleaved, at an equal budget (same
reviews, length, batch size and precision). Without it, the report falls back on the records and says so.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from imdb_lm.errors import UserError

SPEED_FILE = "speed.json"


def load(dirs: list[str | Path]) -> dict | None:
    """The first `speed.json` at the top of the given folders, or None."""
    for root in dirs:
        path = Path(root) / SPEED_FILE
        if path.is_file():
            try:
                record = json.loads(path.read_text())
                models = record["across_models"]
            except (ValueError, KeyError, OSError) as err:
                raise UserError(f"{path} is not an across-models bench record ({err}); rerun "
                                "python -m imdb_lm.bench across_models=true ... output=" + str(path)) from err
            env = record.get("env", {})
            return {"models": models, "path": str(path), "created_at": record.get("created_at"),
                    "command": record.get("command"), "device": env.get("device"),
                    "cpu_capability": env.get("cpu_capability"), "revision": env.get("git_revision"),
                    "load": record.get("load_average_1min")}
    return None


def figures(speed: dict | None, model: str) -> dict | None:
    """The bench's figures for a model as the report names it (its preset's name)."""
    if not speed:
        return None
    models = speed["models"]
    return models.get(model)


def ratios(speed: dict | None, a: str, b: str) -> dict[str, float] | None:
    """A over B: training time per token, single-review latency; None unless both were benched."""
    fa, fb = figures(speed, a), figures(speed, b)
    if not fa or not fb:
        return None
    per_token = (fa["train_seconds_per_million_tokens"] or math.nan) / (fb["train_seconds_per_million_tokens"] or math.nan)
    latency = fa["inference"]["latency_ms_p50"] / fb["inference"]["latency_ms_p50"]
    return {"time / token": per_token, "latency": latency, "time / token rounds": round_ratios(fa, fb)}


def round_ratios(fa: dict, fb: dict) -> list[float]:
    """A over B in training time per token, round by round: the bench interleaves the models, so round i
    of A ran beside round i of B, under the machine's load of that moment; the spread over rounds is
    how far a median ratio can be trusted on a shared machine."""
    rates_a, rates_b = fa["train"].get("tokens_per_s_all") or [], fb["train"].get("tokens_per_s_all") or []
    return [b / a for a, b in zip(rates_a, rates_b, strict=False) if a and b]


def describe(speed: dict) -> str:
    first = next(iter(speed["models"].values()))["config"]
    return (f"one interleaved bench ({speed['path']}, {speed.get('created_at') or 'undated'}, "
            f"{speed.get('device') or 'unknown device'}; {first['precision']}, {first['max_length']} tokens, "
            f"batch {first['batch_size']}, the same {first['train_slice']} training reviews for every model)")


def scope(speed: dict | None) -> str | None:
    """What a bench's ratios hold for: length, batch and precision (device and threads are named apart)."""
    if not speed or not speed.get("models"):
        return None
    first = next(iter(speed["models"].values())).get("config") or {}
    if not first:
        return None
    load = speed.get("load") or {}
    busy = (f", 1-minute load {load['start']:.1f} at its start and {load['end']:.1f} at its end"
            if load.get("start") is not None and load.get("end") is not None else "")
    return f"{first['max_length']} tokens, batch {first['batch_size']}, {first['precision']}{busy}"
