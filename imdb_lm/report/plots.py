"""Report figures (matplotlib, Agg backend): each function saves one PNG and returns its path."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only: works without a display, in tests and on clusters
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from imdb_lm.report import tables  # noqa: E402

FAMILY_COLORS = {"recurrent": "tab:blue", "transformer": "tab:red"}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sensitivity_heatmaps(frame: pd.DataFrame, path: Path, fidelity: str = "") -> Path | None:
    """Per model: test accuracy over optimizer x learning rate (recipe rate x lr_scale), each cell the
    batch size chosen on validation."""
    models = [m for m in sorted(tables.finished(frame)["model"].unique()) if not tables.sensitivity(frame, m).empty]
    if not models:
        return None
    cols = min(3, len(models))
    rows = math.ceil(len(models) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False,
                             gridspec_kw={"wspace": 0.45, "hspace": 0.5})
    image = None
    for ax, model in zip(axes.flat, models, strict=False):
        acc, lrs = tables.sensitivity(frame, model), tables.lr_values(frame, model)
        failed = tables.failed_cells(frame, model)
        image = ax.imshow(acc.to_numpy(float) * 100, cmap="viridis", vmin=45, vmax=100, aspect="auto")
        ax.set_xticks(range(acc.shape[1]), [f"x{c:g}" for c in acc.columns])
        ax.set_yticks(range(acc.shape[0]), acc.index)
        ax.set_xlabel("lr (recipe rate x lr_scale)")
        ax.set_title(model)
        for i, opt in enumerate(acc.index):
            for j, scale in enumerate(acc.columns):
                value = acc.loc[opt, scale]
                if np.isnan(value) and (opt, scale) in failed:
                    ax.text(j, i, "failed", ha="center", va="center", fontsize=8, color="dimgray")
                elif not np.isnan(value):
                    lr = lrs.loc[opt, scale] if opt in lrs.index and scale in lrs.columns else float("nan")
                    ax.text(j, i, f"{value * 100:.1f}\nlr {lr:.0e}", ha="center", va="center", fontsize=8,
                            color="white" if value < 0.8 else "black")
    for ax in list(axes.flat)[len(models):]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), label="test accuracy (%)", shrink=0.8)
    fig.suptitle("Sensitivity to optimizer and learning rate (test accuracy %, batch size chosen on validation)"
                 + (f"\n{fidelity}" if fidelity else ""), y=1.05)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def batch_size_plot(frame: pd.DataFrame, path: Path, fidelity: str = "") -> Path | None:
    """Per model: the test accuracy of the setting chosen on validation at each batch size."""
    table = tables.batch_size_effect(frame)
    if table.empty:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for model, rows in table.groupby("model"):
        rows = rows.sort_values("batch_size")
        ax.plot(rows["batch_size"].astype(float), rows["test_acc"] * 100, marker="o", label=model)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(table["batch_size"].unique()), [str(b) for b in sorted(table["batch_size"].unique())])
    ax.set_xlabel("batch size")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Sensitivity to batch size (optimizer and lr chosen on validation)"
                 + (f"\n{fidelity}" if fidelity else ""), fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of points no other point beats on both lower x and higher y, sorted by x."""
    order = np.argsort(x)
    front, best = [], -np.inf
    for i in order:
        if y[i] > best:
            front.append(i)
            best = y[i]
    return np.array(front, int)


def pareto_plot(frame: pd.DataFrame, path: Path, fidelity: str = "") -> Path | None:
    """Test accuracy against training time and against single-review latency, every finished run."""
    done = tables.finished(frame)
    if done.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, column, label in ((axes[0], "fit_seconds", "training time (s)"),
                              (axes[1], "latency_ms_p50", "single-review latency, median (ms)")):
        for family, rows in done.groupby("family"):
            ax.scatter(rows[column], rows["test_acc"] * 100, s=22, alpha=0.7,
                       color=FAMILY_COLORS.get(family), label=tables.FAMILY_LABEL.get(family, family))
        x, y = done[column].to_numpy(float), done["test_acc"].to_numpy(float) * 100
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.any():
            front = _pareto_front(x[ok], y[ok])
            ax.plot(x[ok][front], y[ok][front], "k--", lw=1, label="Pareto front")
            best = done[ok].iloc[front]
            for (_, row), xv, yv in zip(best.iterrows(), x[ok][front], y[ok][front], strict=True):
                ax.annotate(row["model"], (xv, yv), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overlap on short ranges
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Accuracy against cost (each point is one run)" + (f"\n{fidelity}" if fidelity else ""), fontsize=10)
    return _save(fig, path)


def learning_curves(best_runs: dict[str, str], histories: dict[str, list[dict]], path: Path,
                    fidelity: str = "") -> Path | None:
    """Validation accuracy and training loss per epoch of the best run of each model."""
    if not best_runs:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for model, run_dir in sorted(best_runs.items()):
        history = histories.get(run_dir) or []
        epochs = [h["epoch"] + 1 for h in history if "val_acc" in h]
        axes[0].plot(epochs, [h["val_acc"] * 100 for h in history if "val_acc" in h], marker="o", label=model)
        train = [(h["epoch"] + 1, h["train_loss"]) for h in history if "train_loss" in h]
        if train:
            axes[1].plot(*zip(*train, strict=True), marker="o", label=model)
    axes[0].set_ylabel("validation accuracy (%)")
    axes[1].set_ylabel("training loss")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle("Learning curves of the best run per model" + (f"\n{fidelity}" if fidelity else ""), fontsize=10)
    return _save(fig, path)


def stability_plot(by_optimizer_lr: pd.DataFrame, path: Path, fidelity: str = "") -> Path | None:
    """Share of failed runs per family, optimizer and lr_scale."""
    if by_optimizer_lr.empty:
        return None
    families = sorted(by_optimizer_lr["family"].unique())
    fig, axes = plt.subplots(1, len(families), figsize=(5.5 * len(families), 3.8), squeeze=False)
    for ax, family in zip(axes.flat, families, strict=True):
        rows = by_optimizer_lr[by_optimizer_lr["family"] == family]
        pivot = rows.pivot_table(index="optimizer", columns="lr_scale", values="failed_share")
        counts = rows.pivot_table(index="optimizer", columns="lr_scale", values=["failed", "runs"], aggfunc="sum")
        width = 0.8 / max(1, pivot.shape[1])
        for k, scale in enumerate(pivot.columns):
            bars = ax.bar(np.arange(len(pivot)) + k * width, pivot[scale] * 100, width, label=f"lr x{scale:g}")
            # the counts under the share: 0% of 1 run and 0% of 12 are different evidence
            ax.bar_label(bars, labels=[f"{v * 100:.0f}%\n{int(counts[('failed', scale)][opt])}/"
                                       f"{int(counts[('runs', scale)][opt])}" if not np.isnan(v) else ""
                                       for opt, v in pivot[scale].items()], fontsize=7)
        ax.set_xticks(np.arange(len(pivot)) + width * (pivot.shape[1] - 1) / 2, pivot.index)
        ax.set_ylim(0, 105)
        ax.set_ylabel("failed runs (%)")
        ax.set_title(tables.FAMILY_LABEL.get(family, family))
        ax.legend(fontsize=8)
    fig.suptitle("Stability: runs that failed or ended at or below the majority class (share, failed/runs)"
                 + (f"\n{fidelity}" if fidelity else ""), fontsize=10)
    return _save(fig, path)


def efficiency_plot(table: pd.DataFrame, path: Path) -> Path | None:
    """Test accuracy against training reviews and against training time (log x), a 95% band over seeds,
    one line per family (report/efficiency.py)."""
    if table.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, column, label in ((axes[0], "train_reviews", "training reviews (N)"),
                              (axes[1], "fit_seconds", "training time, mean over seeds (s)")):
        for family, rows in table.groupby("family"):
            rows = rows.sort_values(column)
            name = f"{tables.FAMILY_LABEL.get(family, family)} ({', '.join(sorted(set(rows['model'])))})"
            ax.plot(rows[column], rows["test_acc"] * 100, marker="o", color=FAMILY_COLORS.get(family), label=name)
            ax.fill_between(rows[column], rows["low"] * 100, rows["high"] * 100, alpha=0.2,
                            color=FAMILY_COLORS.get(family), linewidth=0)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    seeds = f"{table['seeds'].min()}-{table['seeds'].max()}" if table["seeds"].nunique() > 1 else str(table["seeds"].iloc[0])
    fig.suptitle(f"Data efficiency: the selected setting of each family on N training reviews "
                 f"({', '.join(sorted(set(table['epochs'])))}; band: 95% interval over {seeds} seeds)", fontsize=10)
    return _save(fig, path)
