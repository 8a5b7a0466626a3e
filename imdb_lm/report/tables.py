"""Tables computed from the runs frame: leaderboard, sensitivity, stability, seed-level comparison.

Settings are selected on validation accuracy only (mean over the seeds all settings of a model
share, so a reseeded setting is not compared with its rivals' single lucky draws); test numbers are
mean ± std over all seeds of the selected setting. Every table shows the test accuracy of a setting
chosen on validation, never a maximum over test. Which runs each table reads (the grid, the
full-fidelity seeds; never ablations) is decided in report/fidelity.py. A run "failed" when it did not finish
(failed/diverged) or its test accuracy is at or below the majority-class share (it learned nothing
a constant guess would not). A run an Optuna pruner stopped early (`pruned`) is neither: it is
counted apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from imdb_lm.report import fidelity, outcomes, rules, statistics, timing
from imdb_lm.report.collect import SETTING

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
    """One row per setting (all seeds pooled): mean/std of quality, medians of timings (a run flagged
    as a timing outlier, report/timing.py, counts for quality but not for timings)."""
    done = timing.timed(finished(frame))
    grouped = done.groupby(SETTING, dropna=False)
    out = grouped.agg(
        seeds=("seed", "nunique"), val_acc=("val_acc", "mean"),
        test_acc=("test_acc", "mean"), test_acc_std=("test_acc", "std"),
        test_f1=("test_f1", "mean"), test_f1_std=("test_f1", "std"),
        test_auroc=("test_auroc", "mean"), test_auroc_std=("test_auroc", "std"),
        params=("params", "first"), fit_seconds=("fit_seconds", "median"),
        epoch_seconds=("epoch_seconds", "median"), test_samples_per_s=("test_samples_per_s", "median"),
        train_tokens_per_s=("train_tokens_per_s", "median"),
        latency_ms_p50=("latency_ms_p50", "median"),
        train_reviews=("train_reviews", "max"), epochs_given=("epochs_given", "max"), stage=("stage", "first"),
        ood_acc=("ood_acc", "mean"), ood_acc_std=("ood_acc", "std"), ood_seeds=("ood_acc", "count"),
        best_run=("run_dir", lambda s: s.loc[done.loc[s.index, "val_acc"].idxmax()]),
        run_dirs=("run_dir", list),
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


def select(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The setting with the best validation accuracy in each group of `by` (settings() rows)."""
    # ties on the selection value go to the setting with more seeds, then the higher mean val
    ranked = table.sort_values(["selection_val", "seeds", "val_acc"], ascending=False)
    return ranked.groupby(by, sort=False, dropna=False).head(1)


def leaderboard(frame: pd.DataFrame) -> pd.DataFrame:
    """Best setting per model (by mean val accuracy) among the full-fidelity runs, sorted by test
    accuracy. Ablation runs and curve points are never selected."""
    table = settings(fidelity.full(frame))
    if table.empty:
        return table
    return select(table, ["model"]).sort_values("test_acc", ascending=False).reset_index(drop=True)


def best_per_family(board: pd.DataFrame, frame: pd.DataFrame) -> dict[str, pd.Series]:
    """The leaderboard's best setting per family: the highest mean validation accuracy over the seeds
    all of the family's selected settings share (in the study: every seed of each, the rule the
    sweeper uses to choose the curves' setting). A model's `selection_val` compares its settings on
    the grid seed only, which would rank the family's models on one draw each."""
    done = finished(frame)
    chosen = {}
    for family, rows in board.groupby("family", sort=False):
        runs = [done[done["run_dir"].isin(dirs)] for dirs in rows["run_dirs"]]
        common = set.intersection(*(set(r["seed"]) for r in runs))
        scores = [float((r[r["seed"].isin(common)] if common else r)["val_acc"].mean()) for r in runs]
        ranked = rows.assign(family_val=scores).sort_values(["family_val", "seeds", "val_acc"], ascending=False)
        chosen[family] = ranked.iloc[0]
    return chosen


def selected_by(frame: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """Per model and value(s) of `axes`: the setting chosen on validation among the grid's settings
    with that value, and its test accuracy (mean over its seeds). Never a maximum over test."""
    table = settings(fidelity.grid(frame))
    if table.empty:
        return table
    return select(table, ["model", *axes]).sort_values(["model", *axes]).reset_index(drop=True)


def sensitivity(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    """Test accuracy of one model over optimizer (rows) x lr_scale (columns): in each cell the
    batch size chosen on validation (grid runs, seeds pooled)."""
    rows = selected_by(frame, ["optimizer", "lr_scale"])  # the grid is chosen over all models' runs
    rows = rows[rows["model"] == model] if not rows.empty else rows
    if rows.empty:
        return pd.DataFrame()
    return rows.pivot_table(index="optimizer", columns="lr_scale", values="test_acc", aggfunc="first")


def failed_cells(frame: pd.DataFrame, model: str) -> set[tuple[str, float]]:
    """(optimizer, lr_scale) cells of one model's grid that ran but where no run finished: shown as
    failed, not left blank like the cells the grid never ran."""
    grid = fidelity.grid(frame)
    grid = grid[grid["model"] == model]
    done = finished(grid)
    ran = set(zip(grid["optimizer"], grid["lr_scale"], strict=True))
    return ran - set(zip(done["optimizer"], done["lr_scale"], strict=True))


def lr_values(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    """The actual learning rate behind each optimizer x lr_scale cell."""
    rows = frame[frame["model"] == model]
    return rows.pivot_table(index="optimizer", columns="lr_scale", values="lr", aggfunc="first")


def batch_size_effect(frame: pd.DataFrame) -> pd.DataFrame:
    """Per model and batch size: the validation-selected setting's test accuracy and epoch time."""
    return selected_by(frame, ["batch_size"])


def optimizer_effect(frame: pd.DataFrame) -> pd.DataFrame:
    """Per model and optimizer: the validation-selected setting's test accuracy."""
    return selected_by(frame, ["optimizer"])


def stability(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Share of failed runs (did not finish, or at/below the majority class) per group. Pruned runs
    are counted apart: `runs` and the share are over the others. Only full-fidelity runs count: a
    low-fidelity grid mixes under-training with instability."""
    frame = fidelity.full(frame)
    frame = frame.assign(pruned=frame["status"] == "pruned")
    frame = frame.assign(judged=~frame["pruned"])
    out = frame.groupby(by).agg(runs=("judged", "sum"), pruned=("pruned", "sum"),
                                failed=("failed", "sum")).reset_index()
    out["failed_share"] = out["failed"] / out["runs"].where(out["runs"] > 0)
    return out


def grid_divergence(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Grid runs that diverged (or failed to finish) per group: the instability the full-fidelity table
    cannot show, since only settings that trained well on the grid were promoted. Pruned runs are
    left out, as in `stability`."""
    grid = fidelity.grid(frame)
    grid = grid[grid["status"] != "pruned"]
    out = grid.assign(diverged=grid["status"] == "diverged",
                      unfinished=~grid["status"].isin(["completed", "diverged"])).groupby(by).agg(
        runs=("status", "size"), diverged=("diverged", "sum"), unfinished=("unfinished", "sum")).reset_index()
    out["diverged_share"] = out["diverged"] / out["runs"].where(out["runs"] > 0)
    return out


def seed_variance(frame: pd.DataFrame, board: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy spread over seeds of each leaderboard setting, the 95% prediction interval for one
    more seed of it, and (for the study's settings) the command that trains that seed."""
    cols = ["model", "seeds", "test_acc", "test_acc_std"]
    if board.empty:
        return pd.DataFrame(columns=[*cols, "test_acc_range", "predict_low", "predict_high", "rerun"])
    table = board[cols].copy()
    done = finished(frame)
    values = [done.loc[_same_setting(done, row)] for _, row in board.iterrows()]
    table["test_acc_range"] = [float(v["test_acc"].max() - v["test_acc"].min()) if len(v) > 1 else float("nan")
                               for v in values]
    intervals = [prediction_interval(v["test_acc"].to_numpy()) for v in values]
    table["predict_low"] = [low for low, _ in intervals]
    table["predict_high"] = [high for _, high in intervals]
    table["rerun"] = [rerun_command(row, v) for (_, row), v in zip(board.iterrows(), values, strict=True)]
    return table


def prediction_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Where one more seed's value falls with probability `level`, if seeds vary normally around their
    mean: mean +- t(n-1) * sd * sqrt(1 + 1/n). Wider than the mean's confidence interval by design: it
    covers one new draw, not the mean. NaN with fewer than 2 seeds."""
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * np.std(values, ddof=1) * np.sqrt(1 + 1 / n))
    mean = float(np.mean(values))
    return mean - half, mean + half


STUDY_STAGES = ("promoted", "seed")


def rerun_command(row: pd.Series, runs: pd.DataFrame) -> str | None:
    """The command that trains one more seed of a study setting at full fidelity (the smallest seed it
    has not used), or None for runs that are not the study's full-fidelity stages."""
    if runs.empty or not runs["stage"].isin(STUDY_STAGES).all():
        return None
    used = set(runs["seed"].dropna().astype(int))
    seed = next(s for s in range(1, len(used) + 2) if s not in used)
    return (f"python -m imdb_lm.train experiment=study model={row['model']} optimizer={row['optimizer']} "
            f"lr_scale={row['lr_scale']:g} data.batch_size={int(row['batch_size'])} data.train_limit=null "
            f"data.val_limit=null seed={seed}")


def _same_setting(runs: pd.DataFrame, row: pd.Series) -> np.ndarray:
    """Which runs have `row`'s setting (every SETTING column equal, missing equal to missing)."""
    mask = np.ones(len(runs), bool)
    for key in SETTING:
        mask &= ((runs[key] == row[key]) | (runs[key].isna() & pd.isna(row[key]))).to_numpy()
    return mask


def seed_comparison(frame: pd.DataFrame, runs_a: list[str], runs_b: list[str], resamples: int = 10_000,
                    seed: int = 0, evaluation: str | None = None) -> dict | None:
    """Every seed of setting A against every seed of setting B on the same reviews (the test split, or
    those of the evaluation named `evaluation`): the two-level bootstrap of the accuracy difference,
    and McNemar per pair of seeds (equal seed numbers where both have them, else in seed order). None
    when no run of A or none of B has per-review outcomes, or they were scored on different reviews."""
    seeds = dict(zip(frame["run_dir"], frame["seed"], strict=True))
    found_a = [(seeds.get(d), outcomes.run_outcomes(d, evaluation=evaluation)) for d in runs_a]
    found_b = [(seeds.get(d), outcomes.run_outcomes(d, evaluation=evaluation)) for d in runs_b]
    found_a = sorted(((s, o) for s, o in found_a if o is not None), key=lambda so: so[0])
    found_b = sorted(((s, o) for s, o in found_b if o is not None), key=lambda so: so[0])
    if not found_a or not found_b:
        return None
    try:
        matrix = outcomes.stack([o for _, o in found_a + found_b])
    except ValueError:  # not the same reviews: nothing to pair
        if evaluation is None:
            raise
        return None
    matrix_a, matrix_b = matrix[:len(found_a)], matrix[len(found_a):]
    difference = statistics.seed_bootstrap(matrix_a, matrix_b, resamples, seed=seed)
    shared = sorted(set(dict(found_a)) & set(dict(found_b)))
    pairs = ([(s, s) for s in shared] if shared else
             list(zip([s for s, _ in found_a], [s for s, _ in found_b], strict=False)))
    by_seed_a, by_seed_b = dict(found_a), dict(found_b)
    mcnemar = [(sa, sb, statistics.mcnemar(by_seed_a[sa].correct, by_seed_b[sb].correct)) for sa, sb in pairs]
    return {"difference": difference, "mcnemar": mcnemar,
            # the rules' seed-level test (rules.py): one accuracy per seed, seeds as the units
            "welch": statistics.seed_welch(matrix_a.mean(axis=1), matrix_b.mean(axis=1), rules.ACCURACY_MARGIN,
                                           rules.ALPHA)}
