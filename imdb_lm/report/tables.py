"""Tables computed from the runs frame: leaderboard, sensitivity, stability, paired comparison.

Settings are selected on validation accuracy only (mean over the seeds all settings of a model
share, so a reseeded setting is not compared with its rivals' single lucky draws); test numbers are
mean ± std over all seeds of the selected setting. A run "failed" when it did not finish
(failed/diverged) or its test accuracy is at or below the majority-class share (it learned nothing
a constant guess would not). A run an Optuna pruner stopped early (`pruned`) is neither: it is
counted apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from imdb_lm.report import statistics
from imdb_lm.report.collect import SETTING, predictions

FAMILY_LABEL = {"recurrent": "RNN", "transformer": "transformer"}


def finished(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["status"] == "completed") & frame["test_acc"].notna()]


def mark_failures(frame: pd.DataFrame, majority: float | None) -> pd.DataFrame:
    frame = frame.copy()
    chance = majority if majority is not None else 0.5
    unfinished = (frame["status"] != "completed") | frame["test_acc"].isna() | (frame["test_acc"] <= chance + 1e-9)
    frame["failed"] = unfinished & (frame["status"] != "pruned")
    return frame


def settings(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per setting (all seeds pooled): mean/std of quality, medians of timings."""
    done = finished(frame)
    grouped = done.groupby(SETTING, dropna=False)
    out = grouped.agg(
        seeds=("seed", "nunique"), val_acc=("val_acc", "mean"),
        test_acc=("test_acc", "mean"), test_acc_std=("test_acc", "std"),
        test_f1=("test_f1", "mean"), test_f1_std=("test_f1", "std"),
        test_auroc=("test_auroc", "mean"), test_auroc_std=("test_auroc", "std"),
        params=("params", "first"), fit_seconds=("fit_seconds", "median"),
        epoch_seconds=("epoch_seconds", "median"), test_samples_per_s=("test_samples_per_s", "median"),
        latency_ms_p50=("latency_ms_p50", "median"),
        best_run=("run_dir", lambda s: s.loc[done.loc[s.index, "val_acc"].idxmax()]),
    ).reset_index()
    out["selection_val"] = _selection_val(done, out)
    return out


def _selection_val(done: pd.DataFrame, table: pd.DataFrame) -> list[float]:
    """Mean val accuracy over the seeds every setting of the model has (in a seeded sweep: the grid
    seed). Averaging the reseeded best setting over more seeds than its rivals would compare a
    regressed mean against lucky single draws (the winner's curse) and pick a rival at random."""
    values = []
    for _, row in table.iterrows():
        same_model = done[done["model"] == row["model"]]
        seed_sets = [set(g["seed"]) for _, g in same_model.groupby(SETTING, dropna=False)]
        common = set.intersection(*seed_sets) if seed_sets else set()
        mine = same_model[_same_setting(same_model, row)]
        shared = mine[mine["seed"].isin(common)]
        values.append(float((shared if not shared.empty else mine)["val_acc"].mean()))
    return values


def leaderboard(frame: pd.DataFrame) -> pd.DataFrame:
    """Best setting per model (by mean val accuracy), sorted by test accuracy."""
    table = settings(frame)
    if table.empty:
        return table
    # ties on the selection value go to the setting with more seeds, then the higher mean val
    ranked = table.sort_values(["selection_val", "seeds", "val_acc"], ascending=False)
    best = ranked.groupby("model", sort=False).head(1)
    return best.sort_values("test_acc", ascending=False).reset_index(drop=True)


def best_per_family(board: pd.DataFrame) -> dict[str, pd.Series]:
    """The leaderboard's best setting per family, again by validation accuracy (the selection value)."""
    ranked = board.sort_values(["selection_val", "seeds", "val_acc"], ascending=False)
    return {family: rows.iloc[0] for family, rows in ranked.groupby("family", sort=False)}


def sensitivity(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    """Mean test accuracy of one model over optimizer (rows) x lr_scale (columns), seeds pooled."""
    rows = finished(frame[frame["model"] == model])
    return rows.pivot_table(index="optimizer", columns="lr_scale", values="test_acc", aggfunc="mean")


def lr_values(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    """The actual learning rate behind each optimizer x lr_scale cell."""
    rows = frame[frame["model"] == model]
    return rows.pivot_table(index="optimizer", columns="lr_scale", values="lr", aggfunc="first")


def batch_size_effect(frame: pd.DataFrame) -> pd.DataFrame:
    """Per model and batch size: best and median test accuracy over the other axes, median epoch time."""
    done = finished(frame)
    return done.groupby(["model", "batch_size"]).agg(
        best_test_acc=("test_acc", "max"), median_test_acc=("test_acc", "median"),
        median_epoch_seconds=("epoch_seconds", "median"), runs=("run_dir", "count")).reset_index()


def stability(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Share of failed runs (did not finish, or at/below the majority class) per group. Pruned runs
    are counted apart: `runs` and the share are over the others."""
    frame = frame.assign(pruned=frame["status"] == "pruned")
    frame = frame.assign(judged=~frame["pruned"])
    out = frame.groupby(by).agg(runs=("judged", "sum"), pruned=("pruned", "sum"),
                                failed=("failed", "sum")).reset_index()
    out["failed_share"] = out["failed"] / out["runs"].where(out["runs"] > 0)
    return out


def seed_variance(frame: pd.DataFrame, board: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy spread over seeds of each leaderboard setting."""
    cols = ["model", "seeds", "test_acc", "test_acc_std"]
    if board.empty:
        return pd.DataFrame(columns=[*cols, "test_acc_range"])
    table = board[cols].copy()
    table["test_acc_range"] = [_range(frame, row) for _, row in board.iterrows()]
    return table


def _same_setting(runs: pd.DataFrame, row: pd.Series) -> np.ndarray:
    """Which runs have `row`'s setting (every SETTING column equal, missing equal to missing)."""
    mask = np.ones(len(runs), bool)
    for key in SETTING:
        mask &= ((runs[key] == row[key]) | (runs[key].isna() & pd.isna(row[key]))).to_numpy()
    return mask


def _range(frame: pd.DataFrame, row: pd.Series) -> float:
    done = finished(frame)
    values = done.loc[_same_setting(done, row), "test_acc"]
    return float(values.max() - values.min()) if len(values) > 1 else float("nan")


def paired_comparison(run_a: str, run_b: str, resamples: int = 10_000, seed: int = 0) -> dict:
    """McNemar + bootstrap CI between two runs on the reviews both were tested on."""
    correct_a, correct_b = statistics.paired_outcomes(predictions(run_a), predictions(run_b))
    return {"mcnemar": statistics.mcnemar(correct_a, correct_b),
            "difference": statistics.bootstrap_difference(correct_a, correct_b, resamples, seed=seed)}
