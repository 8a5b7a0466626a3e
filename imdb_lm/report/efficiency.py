"""Data efficiency: test accuracy of each family's selected setting against the number of training
reviews (the study's curves stage), with a 95% interval over seeds, and the sentence that says where
the families cross or how the gap changes with N.

Curve runs carry `stage: curve`. Records without stages fall back on the selected setting's runs that
differ only in `data.train_limit`. The selected setting's full-fidelity seeds are the curve's last
point when the curves stage has none at that size (a job reused by skip_completed keeps its stage).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from imdb_lm.report import fidelity, tables, timing
from imdb_lm.report.collect import SETTING

COLUMNS = ["family", "model", "train_reviews", "seeds", "test_acc", "low", "high", "fit_seconds", "epochs", "machine"]


def _interval(values: pd.Series) -> tuple[float, float, float]:
    """Mean and t-based 95% interval over seeds (a single seed has no width)."""
    values = values.dropna().to_numpy(float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, mean, mean
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def _fallback(frame: pd.DataFrame, selected: pd.Series) -> pd.DataFrame:
    """The selected setting's runs at every training-set size: equal in every setting but train_limit."""
    mask = np.ones(len(frame), bool)
    for key in (k for k in SETTING if k != "train_limit"):
        mask &= ((frame[key] == selected[key]) | (frame[key].isna() & pd.isna(selected[key]))).to_numpy()
    return frame[mask]


def curve_runs(frame: pd.DataFrame, best: dict[str, pd.Series]) -> pd.DataFrame:
    """Finished runs of the curve per family (each family's selected setting)."""
    done = tables.finished(frame)
    staged = fidelity.curves(done)
    parts = []
    for family, selected in best.items():
        mine = staged[staged["family"] == family]
        if mine.empty:
            mine = _fallback(fidelity.candidates(done), selected)
        seeds = done[done["run_dir"].isin(selected["run_dirs"])]
        extra = seeds[~seeds["train_reviews"].isin(mine["train_reviews"])]
        parts.append(pd.concat([mine, extra]).assign(family=family))
    return pd.concat(parts) if parts else done.iloc[:0]


def curve_table(frame: pd.DataFrame, best: dict[str, pd.Series]) -> pd.DataFrame:
    """One row per family and training-set size: mean test accuracy, its 95% interval over seeds, the
    median training time over seeds (timing outliers left out, report/timing.py) and the machines
    the times come from. Empty unless some family has at least two sizes."""
    runs = curve_runs(frame, best)
    rows = []
    for (family, size), group in runs.dropna(subset=["train_reviews"]).groupby(["family", "train_reviews"]):
        mean, low, high = _interval(group["test_acc"])
        rows.append({"family": family, "model": ", ".join(sorted(group["model"].unique())),
                     "train_reviews": int(size), "seeds": int(group["seed"].nunique()), "test_acc": mean,
                     "low": low, "high": high, "fit_seconds": float(timing.timed(group)["fit_seconds"].median()),
                     "epochs": fidelity.epochs(group), "machine": timing.describe_devices(timing.machines(group))})
    table = pd.DataFrame(rows, columns=COLUMNS)
    if table.empty or table.groupby("family")["train_reviews"].nunique().max() < 2:
        return pd.DataFrame(columns=COLUMNS)
    return table.sort_values(["family", "train_reviews"]).reset_index(drop=True)


def gap_sentence(table: pd.DataFrame) -> str | None:
    """Where the transformer and the RNN cross, or how the gap changes with N (from the numbers)."""
    if table.empty or not {"recurrent", "transformer"} <= set(table["family"]):
        return None
    pivot = table.pivot_table(index="train_reviews", columns="family", values="test_acc").dropna()
    seeds = table.pivot_table(index="train_reviews", columns="family", values="seeds").loc[pivot.index]
    if len(pivot) < 2:
        return None
    gap = (pivot["transformer"] - pivot["recurrent"]) * 100
    sizes = list(gap.index)
    first, last = sizes[0], sizes[-1]
    support = (f"{int(seeds.min().min())}-{int(seeds.max().max())} seeds per point"
               if seeds.min().min() != seeds.max().max() else
               f"{int(seeds.min().min())} seed{'s' if int(seeds.min().min()) != 1 else ''} per point")
    changes = [(a, b) for a, b in zip(sizes, sizes[1:], strict=False) if np.sign(gap[a]) != np.sign(gap[b])]
    if changes:
        a, b = changes[0]
        leader = "the transformer" if gap[a] > 0 else "the RNN"
        return (f"The curves cross between {a:,} and {b:,} training reviews: {leader} leads at {a:,} "
                f"({gap[a]:+.1f} points, transformer minus RNN) and the gap is {gap[b]:+.1f} at {b:,}; at "
                f"{last:,} it is {gap[last]:+.1f} ({support}).")
    leader = "transformer" if gap[first] > 0 else "RNN"
    trend = "narrows" if abs(gap[last]) < abs(gap[first]) else "widens"
    return (f"The {leader} is ahead at every training-set size measured; the gap {trend} from "
            f"{abs(gap[first]):.1f} points at {first:,} training reviews to {abs(gap[last]):.1f} at {last:,} "
            f"({support}; hyperparameters stay at the selected setting, not re-tuned per size).")
