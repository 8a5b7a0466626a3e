"""Which runs each part of the report reads, by the study's stage and fidelity.

A study (issue: the study that answers the question) mixes a low-fidelity grid (`stage: grid`, a
subset of the train split and/or fewer epochs), full-fidelity promoted settings and their seeds
(`promoted`, `seed`), data-efficiency curves (`curve`, several training-set sizes) and ablations
(`ablation`, other presets). Each table draws from one of these pools so that no table mixes
under-training with instability. Records without a `stage` (plain sweeps) fall back on their
training-set size: each model's largest is its full fidelity, its most common one its grid.
"""

from __future__ import annotations

import pandas as pd
from scipy import stats

GRID, PROMOTED, SEED, CURVE, ABLATION = "grid", "promoted", "seed", "curve", "ablation"


def _staged(frame: pd.DataFrame) -> bool:
    return "stage" in frame and frame["stage"].notna().any()


def candidates(frame: pd.DataFrame) -> pd.DataFrame:
    """Runs that may be selected as a model's setting: never an ablation or a curve point."""
    if "stage" not in frame:
        return frame
    return frame[~frame["stage"].isin([ABLATION, CURVE])]


def _per_model(frame: pd.DataFrame, pick) -> pd.DataFrame:
    """Runs at the training-set size `pick` chooses per model (runs of unknown size are kept)."""
    keep = frame["train_reviews"].isna()
    for _, rows in frame.groupby("model"):
        sizes = rows["train_reviews"].dropna()
        if not sizes.empty:
            keep |= (frame["model"] == rows["model"].iloc[0]) & (frame["train_reviews"] == pick(sizes))
    return frame[keep]


FIDELITY = ["model", "train_reviews", "max_epochs"]


def _same_fidelity(pool: pd.DataFrame, chosen: pd.Series) -> pd.Series:
    """`chosen` runs, plus the others trained at the fidelity of one of them (same model, training
    set size and epochs): a seeded grid without promotion reseeds at the grid's own fidelity, so its
    grid runs are full fidelity and its seed runs belong to the grid."""
    key = pool[FIDELITY].astype(str).agg("|".join, axis=1)
    return chosen | key.isin(set(key[chosen]))


def full(frame: pd.DataFrame) -> pd.DataFrame:
    """Full-fidelity runs: the promoted settings and their seeds (and runs at their fidelity);
    without stages, each model's runs on its largest training set."""
    pool = candidates(frame)
    if _staged(pool) and pool["stage"].isin([PROMOTED, SEED]).any():
        return pool[_same_fidelity(pool, pool["stage"].isin([PROMOTED, SEED]))]
    return _per_model(pool, lambda sizes: sizes.max())


GRID_ONLY = " (the grid's: no setting has been promoted to full fidelity yet)"


def grid_only(full_text: str) -> bool:
    """Whether describe_full's text is the grid's pool (a study not yet promoted)."""
    return full_text.endswith(GRID_ONLY)


def describe_full(frame: pd.DataFrame) -> str:
    """The full-fidelity pool in words; a study still in its grid stage says that this pool is the
    grid's, so no table reads as full fidelity before any setting was promoted."""
    text = describe(full(frame))
    pool = candidates(frame)
    if _staged(pool) and (pool["stage"] == GRID).any() and not pool["stage"].isin([PROMOTED, SEED]).any():
        text += GRID_ONLY
    return text


def grid(frame: pd.DataFrame) -> pd.DataFrame:
    """The sensitivity grid: `stage: grid` (and runs at its fidelity); without stages, each model's
    most common training-set size."""
    pool = candidates(frame)
    if _staged(pool) and (pool["stage"] == GRID).any():
        return pool[_same_fidelity(pool, pool["stage"] == GRID)]
    return _per_model(pool, lambda sizes: sizes.mode().max())


def curves(frame: pd.DataFrame) -> pd.DataFrame:
    """Data-efficiency runs: `stage: curve`; empty without stages (report/efficiency.py falls back)."""
    return frame[frame["stage"] == CURVE] if "stage" in frame else frame.iloc[:0]


def _span(values: pd.Series, unit: str) -> str:
    values = sorted({int(v) for v in values.dropna()})
    if not values:
        return f"unknown {unit}s"
    if len(values) == 1:
        return f"{values[0]:,} {unit}{'s' if values[0] != 1 else ''}"
    return f"{values[0]:,}-{values[-1]:,} {unit}s"


def epochs(frame: pd.DataFrame) -> str:
    """The epochs the runs were given (more than max_epochs where callbacks.min_steps raised it),
    counted over the completed runs where there are any: an early stop is not a fidelity."""
    column = "epochs_given" if "epochs_given" in frame else "max_epochs"
    completed = frame[frame["status"] == "completed"] if "status" in frame else frame
    return _span((completed if not completed.empty else frame)[column], "epoch")


def step_budget(frame: pd.DataFrame) -> str | None:
    """"600 optimizer steps of 32 reviews" where every run was given a step budget (the ablation's;
    its max_epochs is a bound never reached), else None: epochs describe it."""
    if "max_steps" not in frame:
        return None
    completed = frame[frame["status"] == "completed"] if "status" in frame else frame
    budgets = (completed if not completed.empty else frame)
    if budgets["max_steps"].isna().any():
        return None
    return (f"{_span(budgets['max_steps'], 'optimizer step')} of {_span(budgets['batch_size'], 'review')}"
            + (f" ({budget_epochs(budgets)})" if "train_reviews" in budgets else ""))


def epochs_of_budget(frame: pd.DataFrame) -> pd.Series:
    """The passes over its training reviews a step budget makes: max_steps x batch / train reviews."""
    return frame["max_steps"] * frame["batch_size"] / frame["train_reviews"]


def budget_epochs(frame: pd.DataFrame) -> str:
    """"0.96 epoch": a step budget in epochs (600 steps of 32 reviews on 20,005 reviews), two
    significant digits: under one epoch, some training reviews were never seen."""
    values = sorted({float(f"{v:.2g}") for v in epochs_of_budget(frame).dropna()})
    if not values:
        return "unknown epochs"
    text = f"{values[0]:g}" if len(values) == 1 else f"{values[0]:g}-{values[-1]:g}"
    return f"{text} epoch{'' if values == [1.0] or (len(values) == 1 and values[0] < 1) else 's'}"


def describe(frame: pd.DataFrame) -> str:
    """The fidelity of a set of runs in words, e.g. "20,005 train reviews, 5 epochs"."""
    if frame.empty:
        return "no runs"
    return f"{_span(frame['train_reviews'], 'train review')}, {step_budget(frame) or epochs(frame)}"


# What a setting is apart from its fidelity (training-set size, epochs) and seed: a grid run and its
# promoted rerun share these.
SETTING_AT_ANY_FIDELITY = ["model", "family", "optimizer", "lr", "batch_size", "max_length", "scheduler"]


def rank_agreement(frame: pd.DataFrame) -> dict | None:
    """Does the low fidelity rank settings as the full one does? Each promoted setting's validation
    accuracy on the grid against its own at full fidelity (the same seed): Spearman's rho over all of
    them (pooled: mostly the differences between models), the same after centring each model
    (`within_model`), each model's own rho where it has 3 settings or more, and per model whether the
    grid's best promoted setting is also the best at full fidelity. None without promoted runs that
    have a grid counterpart."""
    if "stage" not in frame:
        return None
    done = frame[frame["status"] == "completed"]
    keys = [k for k in SETTING_AT_ANY_FIDELITY if k in done]
    low = done[done["stage"] == GRID].groupby(keys, dropna=False)["val_acc"].mean().rename("grid_val")
    high = done[done["stage"] == PROMOTED].groupby(keys, dropna=False)["val_acc"].mean().rename("full_val")
    paired = pd.concat([low, high], axis=1, join="inner").reset_index()
    if len(paired) < 3:
        return None
    rho = stats.spearmanr(paired["grid_val"], paired["full_val"])
    per_model, model_rho = {}, {}
    for model, rows in paired.groupby("model"):
        if len(rows) > 1:
            per_model[model] = bool(rows["grid_val"].idxmax() == rows["full_val"].idxmax())
        if len(rows) > 2 and rows["grid_val"].nunique() > 1 and rows["full_val"].nunique() > 1:
            model_rho[model] = float(stats.spearmanr(rows["grid_val"], rows["full_val"]).statistic)
    return {"rho": float(rho.statistic), "p_value": float(rho.pvalue), "settings": len(paired),
            "models": len(per_model), "top_agrees": sum(per_model.values()), "per_model": per_model,
            "pairs": paired, **within_model(paired), "model_rho": model_rho}


def within_model(paired: pd.DataFrame) -> dict:
    """The rank agreement left once the differences between models are taken out: both fidelities'
    validation accuracies centred on each model's mean, then Spearman's rho over all settings pooled.
    A pooled rho across models mostly says that a better model is better at both fidelities; whether
    the grid picks the right setting *within* a model is this one."""
    models = paired.groupby("model")
    centred = paired.assign(grid_val=paired["grid_val"] - models["grid_val"].transform("mean"),
                            full_val=paired["full_val"] - models["full_val"].transform("mean"))
    centred = centred[models["model"].transform("size") > 1]  # a lone setting has nothing to rank against
    if len(centred) < 3:
        return {"within_rho": None, "within_p": None}
    rho = stats.spearmanr(centred["grid_val"], centred["full_val"])
    return {"within_rho": float(rho.statistic), "within_p": float(rho.pvalue)}
