"""Timings that say what they are: one aggregation (the median over seeds), runs whose timing is far
off their siblings' flagged and left out, and ratios at the precision the timings support.

A run's record times it on whatever machine ran it, under that machine's load of the moment. One
seed of a setting slowed by a busy neighbour (the published study has one at 1,169 s beside
siblings at 149-188 s) would move a mean by a factor and a ratio with it; the median of three
resists one such run but not two. A run more than OUTLIER_FACTOR times its siblings' median (the
same setting, other seeds) in fit time or latency is therefore flagged and its timings left out
of every timing column, and the report lists it. Ratios of such timings moved by a quarter between
two benches of one machine: two significant digits is all they carry.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

OUTLIER_FACTOR = 5.0
# the timings an outlier check reads, and every timing column it leaves out once flagged
CHECKED = {"fit_seconds": "fit time", "latency_ms_p50": "latency"}
TIMINGS = ["fit_seconds", "epoch_seconds", "train_samples_per_s", "train_tokens_per_s", "test_samples_per_s",
           "latency_ms_p50", "latency_ms_p95"]
AGGREGATION = "median over seeds"


def _unit(column: str, value: float) -> str:
    return f"{value:,.0f} s" if column == "fit_seconds" else f"{value:,.1f} ms"


def outlier_reasons(frame: pd.DataFrame, setting: list[str]) -> pd.Series:
    """Per run, why its timings are left out ("fit time 1,169 s vs 168 s, the median of the setting's
    2 other runs"), or None. Siblings are the other finished runs of the same setting (`setting` columns
    equal, missing equal to missing); a run without siblings is never flagged."""
    reasons = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    done = frame[frame["status"] == "completed"] if "status" in frame else frame
    for _, rows in done.groupby(setting, dropna=False):
        if len(rows) < 2:
            continue
        for index in rows.index:
            others = rows.drop(index)
            found = []
            for column, name in CHECKED.items():
                value, median = rows.at[index, column], others[column].median()
                if pd.notna(value) and pd.notna(median) and median > 0 and value > OUTLIER_FACTOR * median:
                    found.append(f"{name} {_unit(column, value)} vs {_unit(column, median)}")
            if found:
                n = len(others)
                reasons.at[index] = f"{', '.join(found)}, the median of the setting's {n} other run{'s' if n != 1 else ''}"
    return reasons


def timed(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the timings of flagged runs blanked: what every timing column aggregates."""
    if "timing_outlier" not in frame or frame["timing_outlier"].isna().all():
        return frame
    out = frame.copy()
    flagged = out["timing_outlier"].notna()
    out.loc[flagged, [c for c in TIMINGS if c in out]] = np.nan
    return out


def outliers(frame: pd.DataFrame) -> pd.DataFrame:
    """The flagged runs, one row each: what the report lists under its timing tables."""
    if "timing_outlier" not in frame:
        return pd.DataFrame()
    rows = frame[frame["timing_outlier"].notna()]
    # named by model and config key, as docs/study names a compact record: the same in a sweep's folders
    names = [f"{m}-{k}" if k != d else Path(d).name for m, k, d in zip(rows["model"], rows["job_key"], rows["run_dir"],
                                                                        strict=True)]
    return pd.DataFrame({"record": names, "model": rows["model"], "stage": rows["stage"], "seed": rows["seed"],
                         "machine": rows["machine"].fillna(rows["device"]) if "machine" in rows else rows["device"],
                         "left out because": rows["timing_outlier"]}).reset_index(drop=True)


def outlier_note(frame: pd.DataFrame) -> str:
    """How outliers are treated, with how many there are among `frame`: a clause for a caption."""
    n = int(frame["timing_outlier"].notna().sum()) if "timing_outlier" in frame else 0
    found = f"{n} run{'s' if n != 1 else ''}, listed under \"Timing outliers\"" if n else "none here"
    return (f"a run whose fit time or latency exceeds {OUTLIER_FACTOR:g}x the median of its setting's other runs "
            f"is left out ({found})")


def ratio(value: float) -> str:
    """A ratio to two significant digits, never in exponent form: 0.93, 7.6, 25, 420."""
    if value is None or not math.isfinite(value) or value == 0:
        return "-"
    rounded = float(f"{value:.2g}")
    return f"{rounded:.{max(1 - math.floor(math.log10(abs(rounded))), 0)}f}"


def machines(runs: pd.DataFrame) -> pd.Series:
    """Each run's machine kind (device with its CPU capability) where its record has it, else its
    device: one CPU model name covers machines with and without native bf16, which time differently."""
    devices = runs["machine"].fillna(runs["device"]) if "machine" in runs else runs["device"]
    return devices.dropna()


def describe_devices(devices: pd.Series) -> str:
    """The machine of the runs, or each machine with its run count: a study resumed on another
    machine mixes them, and its records' timings are then not comparable across runs."""
    counts = devices.value_counts()
    if counts.empty:
        return "unknown device"
    if len(counts) == 1:
        return str(counts.index[0])
    ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    return f"{len(counts)} machines: " + "; ".join(f"{name} ({n} run{'s' if n != 1 else ''})" for name, n in ordered)
