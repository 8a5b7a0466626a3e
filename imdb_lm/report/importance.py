"""Hyperparameter importance per family, from the run records alone (a report rebuilt from
published records has it too): a functional-ANOVA variance decomposition of validation accuracy.

Each family's runs are reduced to settings (mean validation accuracy over seeds). The variance of
that accuracy over the settings is split into the share each hyperparameter explains on its own
(its main effect) and the rest: interactions between hyperparameters, and seed noise. This is
functional ANOVA (Hooker 2007; the fANOVA of Hutter et al. 2014) with equal weight on every level
of every axis, computed on the settings themselves instead of on a fitted random forest:

- the main effects are the additive model fitted to the settings by least squares, each effect
  centred over its axis's levels; the share of a hyperparameter is the variance of its effect over
  its levels, the interaction share is the mean squared residual; the shares sum to 1. On a
  complete grid this is exact: the effects are each level's mean minus the grand mean, and the
  three parts add up to the variance of the settings. An incomplete grid (a failed job, an axis
  narrowed for one model, an Optuna search) gets the additive model that fits the settings it has;
- a numeric axis with more than MAX_LEVELS values (Optuna's continuous lr_scale) is cut into
  BINS quantile bins;
- an axis that takes one value is listed as constant; the actual learning rate, when it is each
  model's recipe rate x lr_scale (the optimizer configs' rule), is not a separate axis: it is
  listed as following from model, optimizer and lr_scale; nor is an axis whose value changes only
  with an earlier one (weight_decay with optimizer, when adamw brings its own): the runs cannot
  tell their effects apart, and the earlier axis carries both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# Candidate axes, in the report's order; the model's own options (`model.hidden_size`, ...) follow.
AXES = ["model", "optimizer", "lr_scale", "lr", "batch_size", "weight_decay", "scheduler", "max_length",
        "truncation", "max_epochs", "train_limit"]
MAX_LEVELS = 6
BINS = 4
METHOD = ("functional ANOVA of validation accuracy over the settings (mean over seeds): each "
          "hyperparameter's main-effect share of the variance, the rest is interactions and noise")


@dataclass
class Importance:
    family: str
    runs: int
    settings: int                  # distinct settings of the varied axes
    grid: int                      # settings of the full grid over those axes' levels
    axes: list[str]                # the varied hyperparameters, in order
    levels: dict[str, list]        # each varied axis's levels (bins for a binned numeric axis)
    shares: dict[str, float]       # main-effect share per axis, and "interactions and noise"
    spread: float                  # max - min validation accuracy over the settings
    constant: dict[str, object] = field(default_factory=dict)
    derived: dict[str, list[str]] = field(default_factory=dict)
    note: str | None = None        # why there are no shares (too few settings, no variance)
    caution: str | None = None     # shares computed, but from few settings for the effects fitted

    @property
    def complete(self) -> bool:
        return self.settings == self.grid


def candidate_axes(frame: pd.DataFrame) -> list[str]:
    return [a for a in AXES if a in frame] + sorted(c for c in frame.columns if c.startswith("model."))


def _values(series: pd.Series) -> pd.Series:
    """Missing values as the level "None" (e.g. train_limit=null), so they group like any other."""
    return series.astype(object).where(series.notna(), "None")


def lr_follows_recipe(rows: pd.DataFrame) -> bool:
    """True when every run's lr is its model's recipe rate for its optimizer x lr_scale (the
    optimizer configs' rule), so lr carries nothing that model, optimizer and lr_scale do not;
    False when lr was set on its own (optimizer.lr=...)."""
    if not {"lr", "lr_scale", "model", "optimizer"} <= set(rows) or rows[["lr", "lr_scale"]].isna().any().any():
        return False
    recipe = (rows["lr"] / rows["lr_scale"]).round(12)
    return bool((rows.assign(recipe=recipe).groupby(["model", "optimizer"])["recipe"].nunique() <= 1).all())


def select_axes(rows: pd.DataFrame) -> tuple[list[str], dict[str, object], dict[str, list[str]]]:
    """(varied axes, constant axis -> value, derived axis -> the axes it follows from)."""
    axes, constant, derived = [], {}, {}
    recipe_lr = lr_follows_recipe(rows)
    for axis in candidate_axes(rows):
        values = _values(rows[axis])
        if values.nunique() <= 1:
            if rows[axis].notna().any():  # an option of the other family's models is not constant here
                constant[axis] = values.iloc[0]
        elif axis == "lr" and recipe_lr:
            derived[axis] = [a for a in ("model", "optimizer", "lr_scale") if a in axes]
        elif source := _set_with(rows, values, axes):
            derived[axis] = [source]
        else:
            axes.append(axis)
    return axes, constant, derived


def _set_with(rows: pd.DataFrame, values: pd.Series, axes: list[str]) -> str | None:
    """The earlier axis that fixes this one's value (weight_decay=0.01 comes with optimizer=adamw),
    if any: then the runs cannot tell their effects apart. Only an axis whose levels repeat counts
    (each run on its own level, as a continuous search axis, fixes everything trivially)."""
    for axis in axes:
        levels = _values(rows[axis])
        if levels.nunique() < len(rows) and values.groupby(levels).nunique().max() <= 1:
            return axis
    return None


def level_codes(series: pd.Series) -> tuple[pd.Series, list]:
    """Each run's level on an axis, and the axis's levels in order (numbers ascending)."""
    values = _values(series)
    numeric = pd.to_numeric(series, errors="coerce")
    if numeric.notna().all() and numeric.nunique() > MAX_LEVELS:
        bins = pd.qcut(numeric, BINS, labels=False, duplicates="drop")
        ranges = numeric.groupby(bins).agg(["min", "max"])  # each bin named by the values in it
        labels = [f"{low:.3g}-{high:.3g}" for low, high in ranges.itertuples(index=False)]
        return bins.map(dict(zip(ranges.index, labels, strict=True))), labels
    if numeric.notna().all():
        order = sorted(numeric.unique())
        return numeric, order
    return values.astype(str), sorted(values.astype(str).unique())


def decompose(cells: pd.DataFrame, axes: list[str], target: str = "val_acc") -> dict[str, float]:
    """Main-effect shares of `target`'s variance over the cells (one row per setting), and the rest."""
    y = cells[target].to_numpy(float)
    blocks = [pd.get_dummies(cells[a].astype(str)).to_numpy(float) for a in axes]
    design = np.hstack([np.ones((len(y), 1)), *blocks])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = float(np.mean((y - design @ coef) ** 2))
    effects, start = {}, 1
    for axis, block in zip(axes, blocks, strict=True):
        effect = coef[start:start + block.shape[1]]
        start += block.shape[1]
        effects[axis] = float(np.mean((effect - effect.mean()) ** 2))  # equal weight on every level
    total = sum(effects.values()) + residual
    if total < 1e-10:  # a spread below 0.001 points is rounding, not an effect
        return {}
    return {**{a: v / total for a, v in effects.items()}, "interactions and noise": residual / total}


def family_importance(frame: pd.DataFrame, family: str) -> Importance:
    rows = frame[(frame["family"] == family) & frame["val_acc"].notna()
                 & frame["status"].isin(["completed", "diverged"])]
    axes, constant, derived = select_axes(rows)
    coded, levels = rows.copy(), {}
    for axis in axes:
        coded[axis], levels[axis] = level_codes(rows[axis])
    cells = coded.groupby(axes, dropna=False)["val_acc"].mean().reset_index() if axes else coded[["val_acc"]]
    grid = int(np.prod([len(levels[a]) for a in axes])) if axes else 1
    spread = float(cells["val_acc"].max() - cells["val_acc"].min()) if len(cells) else float("nan")
    result = Importance(family=family, runs=len(rows), settings=len(cells) if axes else min(len(rows), 1),
                        grid=grid, axes=axes, levels=levels, shares={}, spread=spread,
                        constant=constant, derived=derived)
    if not axes:
        result.note = "no hyperparameter varies between these runs"
    elif len(cells) < 3:
        result.note = f"only {len(cells)} settings; importance needs at least 3"
    else:
        result.shares = decompose(cells, axes)
        if not result.shares:
            result.note = "every setting reached the same validation accuracy"
        effects = 1 + sum(len(levels[a]) - 1 for a in axes)
        if result.shares and len(cells) < 2 * effects:
            result.caution = (f"only {len(cells)} settings for {effects} fitted effects (grand mean and "
                              "levels): the shares are rough")
            if len(cells) <= effects:  # the additive model fits every setting: no residual left
                result.caution += ", and interactions and noise cannot be told from main effects"
    return result


def importance(frame: pd.DataFrame) -> dict[str, Importance]:
    """Per family (in sorted order): the importance of each varied hyperparameter."""
    families = sorted(frame.loc[frame["val_acc"].notna(), "family"].dropna().unique())
    return {family: family_importance(frame, family) for family in families}


def table(result: Importance) -> pd.DataFrame:
    """The report's table: one row per varied hyperparameter, then interactions and noise."""
    rows = [{"hyperparameter": axis, "levels": str(len(result.levels[axis])),
             "values": ", ".join(_label(v) for v in result.levels[axis]),
             "share of variance %": round(result.shares[axis] * 100, 1)} for axis in result.axes]
    rows.append({"hyperparameter": "interactions and noise", "levels": "", "values": "",
                 "share of variance %": round(result.shares["interactions and noise"] * 100, 1)})
    return pd.DataFrame(rows).sort_values("share of variance %", ascending=False, kind="stable")


def _label(value) -> str:
    return f"{value:g}" if isinstance(value, float | int | np.floating | np.integer) else str(value)


def summary(result: Importance) -> str:
    """One sentence on the settings behind the shares: the grid, constants and derived axes."""
    if result.axes:
        shape = " x ".join(str(len(result.levels[a])) for a in result.axes)
        done = ("a complete grid" if result.complete
                else f"{result.settings} of the {result.grid} settings of the full grid")
        text = (f"{result.runs} runs, {result.settings} settings over {', '.join(result.axes)} ({shape}: {done}); "
                f"validation accuracy spans {result.spread * 100:.1f} points between settings.")
    else:
        text = f"{result.runs} runs."
    constant = {k: v for k, v in result.constant.items() if k in AXES}  # the model's own options: its config
    if constant:
        text += " Constant: " + ", ".join(f"{k}={_label(v)}" for k, v in constant.items()) + "."
    if result.derived:
        text += " Not a separate axis: " + ", ".join(
            f"{k} (the recipe rate x lr_scale: follows from {', '.join(v)})" if k == "lr"
            else f"{k} (changes only with {v[0]})" for k, v in result.derived.items()) + "."
    return text
