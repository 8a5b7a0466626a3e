"""What a study cost: wall time per machine and stage, from the runs' own records.

A study resumed on other machines (the published one is) mixes them, so the cost is told per
machine kind (device, CPU capability and native bf16), with the code revisions that ran there. A
run's wall time runs from its start to its record (start-up, tokenization, fit, test, latency
sample); a run resumed after an interruption counts its last attempt only, and evaluations made
afterwards (out of domain) are not runs and are not counted.
"""

from __future__ import annotations

import pandas as pd

STAGE_ORDER = ["grid", "promoted", "seed", "curve", "ablation"]


def wall_seconds(started_at, finished_at) -> float | None:
    """Seconds between two ISO timestamps of one record, or None where either is missing."""
    if not started_at or not finished_at:
        return None
    seconds = (pd.Timestamp(finished_at) - pd.Timestamp(started_at)).total_seconds()
    return seconds if seconds >= 0 else None


def machine(device, cpu_capability, bf16_native) -> str | None:
    """A machine kind as the report names it: the device, and for a CPU what it computes natively."""
    if not device:
        return None
    if not cpu_capability or not str(device).startswith("cpu"):
        return str(device)
    return f"{device} ({cpu_capability}{', native bf16' if bf16_native else ', no native bf16'})"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f}"


def cost_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per machine kind and stage: runs, summed wall time, the median and longest run, revisions."""
    if "wall_seconds" not in runs or runs["wall_seconds"].isna().all():
        return pd.DataFrame()
    timed = runs[runs["wall_seconds"].notna()].assign(
        machine=runs["machine"].fillna("unknown machine"), stage=runs["stage"].fillna("(none)"))
    rank = {s: i for i, s in enumerate(STAGE_ORDER)}
    rows = []
    for (name, stage), group in timed.groupby(["machine", "stage"]):
        seconds = group["wall_seconds"]
        revisions = sorted({str(r)[:7] for r in group["git_revision"].dropna()})
        rows.append({"machine": name, "stage": stage, "runs": len(group), "wall time (h)": _hours(seconds.sum()),
                     "median run (min)": f"{seconds.median() / 60:.1f}",
                     "longest run (min)": f"{seconds.max() / 60:.1f}",
                     "code revisions": ", ".join(revisions) or "-",
                     "_order": (name, rank.get(stage, len(rank)))})
    return pd.DataFrame(rows).sort_values("_order").drop(columns="_order").reset_index(drop=True)


def summary(runs: pd.DataFrame) -> str | None:
    """One sentence: the study's total wall time, and each machine kind's share of it."""
    if "wall_seconds" not in runs or runs["wall_seconds"].isna().all():
        return None
    timed = runs[runs["wall_seconds"].notna()]
    per_machine = (timed.assign(machine=timed["machine"].fillna("unknown machine"))
                   .groupby("machine")["wall_seconds"].agg(["sum", "size"]).sort_values("sum", ascending=False))
    parts = "; ".join(f"{_hours(row['sum'])} h on {name} ({int(row['size'])} runs)"
                      for name, row in per_machine.iterrows())
    untimed = len(runs) - len(timed)
    return (f"The {len(timed)} timed runs took {_hours(timed['wall_seconds'].sum())} h of wall time in all, one "
            f"after another: {parts}." + (f" {untimed} {'run carries' if untimed == 1 else 'runs carry'} no start time and "
                                 f"{'is' if untimed == 1 else 'are'} not counted." if untimed else ""))
