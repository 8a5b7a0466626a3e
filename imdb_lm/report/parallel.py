"""Parallel-coordinates figure per family: each run is one line through its hyperparameters to its
validation and test accuracy, coloured by validation accuracy.

Axes are the hyperparameters the family's runs vary (report/importance.py picks them; the actual
learning rate is shown too when it follows from model, optimizer and lr_scale). Categorical axes
and numeric axes with few values space their levels evenly (a small fixed jitter separates runs
that share a level); numeric axes with many values (Optuna's continuous lr_scale) are drawn on a
log scale when they span a factor of 10 or more. Validation and test accuracy share one scale, so
a line that falls between them lost accuracy on the test split.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from imdb_lm.report.importance import MAX_LEVELS, Importance, select_axes  # noqa: E402
from imdb_lm.report.tables import FAMILY_LABEL  # noqa: E402

METRICS = {"val_acc": "val acc %", "test_acc": "test acc %"}
JITTER = 0.018


def _label(value) -> str:
    return f"{value:.3g}" if isinstance(value, float | np.floating) else str(value)


def _nice_ticks(low: float, high: float, log: bool) -> np.ndarray:
    """Round tick values inside [low, high] (1-2-5 on a log scale), the ends when none fit."""
    locator = (matplotlib.ticker.LogLocator(base=10, subs=(1, 2, 5)) if log
               else matplotlib.ticker.MaxNLocator(5))
    ticks = [t for t in locator.tick_values(low, high) if low - 1e-12 <= t <= high + 1e-12]
    return np.array(ticks if len(ticks) >= 2 else [low, high], float)


def _axis(values: pd.Series, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Positions in [0, 1] of each run on one axis, and the axis's (position, label) ticks."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all() and numeric.nunique() > MAX_LEVELS:  # continuous: linear or log scale
        low, high = float(numeric.min()), float(numeric.max())
        log = low > 0 and high / low >= 10
        scale = np.log10 if log else (lambda v: v)
        span = (scale(high) - scale(low)) or 1.0
        ticks = _nice_ticks(low, high, log)
        return ((scale(numeric.to_numpy(float)) - scale(low)) / span,
                [((scale(t) - scale(low)) / span, _label(float(t))) for t in ticks])
    # map(str), not astype(str): pandas' string dtype keeps a missing value missing (an axis only some
    # runs have, e.g. model.freeze_embeddings), and sorting it among the labels would fail
    keys = numeric if numeric.notna().all() else values.map(str)
    levels = sorted(keys.unique())
    step = 1 / (len(levels) - 1) if len(levels) > 1 else 0.0
    index = {level: (i * step if len(levels) > 1 else 0.5) for i, level in enumerate(levels)}
    jitter = rng.uniform(-JITTER, JITTER, len(values)) if len(levels) > 1 else 0.0
    return (keys.map(index).to_numpy(float) + jitter,
            [(index[level], _label(level)) for level in levels])


def plot_axes(rows: pd.DataFrame, result: Importance) -> list[str]:
    """The varied hyperparameters, with the actual lr beside lr_scale when it follows from it."""
    axes = list(result.axes) if result.axes else select_axes(rows)[0]
    if "lr" in result.derived and "lr" not in axes:
        after = axes.index("lr_scale") + 1 if "lr_scale" in axes else len(axes)
        axes.insert(after, "lr")
    return axes


def parallel_coordinates(frame: pd.DataFrame, result: Importance, path: Path) -> Path | None:
    rows = frame[(frame["family"] == result.family) & frame["val_acc"].notna()
                 & frame["status"].isin(["completed", "diverged"])].sort_values("val_acc")
    axes = plot_axes(rows, result)
    if rows.empty or not axes:
        return None
    rng = np.random.default_rng(0)
    positions, ticks = [], []
    for axis in axes:
        pos, tick = _axis(rows[axis], rng)
        positions.append(pos)
        ticks.append(tick)
    accuracy = rows[list(METRICS)].to_numpy(float) * 100
    low, high = np.nanmin(accuracy), np.nanmax(accuracy)
    pad = max((high - low) * 0.05, 0.5)
    low, high = low - pad, high + pad
    for k in range(len(METRICS)):
        positions.append((accuracy[:, k] - low) / (high - low))
        ticks.append([((v - low) / (high - low), f"{v:g}") for v in _nice_ticks(low, high, log=False)])
    names = axes + list(METRICS.values())
    ys = np.column_stack(positions)

    fig, ax = plt.subplots(figsize=(max(7.5, 1.75 * len(names)), 4.8))
    cmap, norm = plt.get_cmap("viridis"), plt.Normalize(low + pad, high - pad)
    xs = np.arange(len(names))
    for y, val in zip(ys, rows["val_acc"].to_numpy(float) * 100, strict=True):
        ax.plot(xs, y, color=cmap(norm(val)), alpha=0.65, lw=1.2)
    best = rows.iloc[-1]  # highest validation accuracy, drawn on top
    ax.plot(xs, ys[-1], color="crimson", lw=2.6, label=f"best val acc: {best['val_acc'] * 100:.1f}% "
            f"({', '.join(f'{a} {_label(best[a])}' for a in axes)})")
    for x, axis_ticks in zip(xs, ticks, strict=True):
        ax.axvline(x, color="0.35", lw=0.9, zorder=0)
        for pos, text in axis_ticks:
            ax.text(x - 0.04, pos, text, ha="right", va="center", fontsize=7.5,
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.75})
    ax.set_xticks(xs, names, fontsize=9)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    ax.set_xlim(-0.6, len(names) - 0.8)
    ax.set_ylim(-0.06, 1.06)
    for side in ("left", "right", "bottom", "top"):
        ax.spines[side].set_visible(False)
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, pad=0.01, label="validation accuracy (%)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), fontsize=8, frameon=False)
    label = FAMILY_LABEL.get(result.family, result.family)
    ax.set_title(f"{label}: each line is one run ({len(rows)} runs), hyperparameters to accuracy", pad=24)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
