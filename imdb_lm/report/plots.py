"""Report figures (matplotlib, Agg backend): each function saves one PNG and returns its path."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import matplotlib.text
import matplotlib.ticker

matplotlib.use("Agg")  # files only: works without a display, in tests and on clusters
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from imdb_lm.report import tables, timing  # noqa: E402

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


MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
# candidate label offsets (points), nearest first: 8 directions at growing distances
LABEL_OFFSETS = [(round(r * math.cos(math.radians(a))), round(r * math.sin(math.radians(a))))
                 for r in (8, 18, 30, 44, 60) for a in (45, -45, 135, -135, 90, -90, 0, 180)]


def _place_labels(fig, ax, points: list[tuple[float, float, str]], obstacles: np.ndarray, color: str = "black",
                  placed: list | None = None) -> list:
    """Annotate points, each at the first offset whose text covers no label placed before it, no
    plotted point (`obstacles`: data coordinates, one row per point) and stays inside the axes: the
    front's labels sit a few pixels from one another on a log axis."""
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    marks = ax.transData.transform(obstacles) if len(obstacles) else np.empty((0, 2))
    placed = [] if placed is None else placed  # labels of an earlier call on the same axes
    for x, y, text in points:
        for dx, dy in LABEL_OFFSETS:
            label = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=7, color=color,
                                ha="left" if dx > 0 else "right" if dx < 0 else "center",
                                va="bottom" if dy > 0 else "top" if dy < 0 else "center",
                                arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.4", "shrinkA": 0,
                                            "shrinkB": 3})
            label.update_positions(renderer)  # where the offset puts the text (else computed at draw)
            box = matplotlib.text.Text.get_window_extent(label, renderer)  # the text alone, not its leader line
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            padded = box.padded(4)
            covers = any(padded.contains(px, py) for px, py in marks)
            if inside and not covers and not any(box.overlaps(other) for other in placed):
                placed.append(box)
                break
            label.remove()
    return placed


def _write(fig, path: Path) -> Path:
    """Save a figure whose labels were placed on its final layout (no tight_layout: it would move the
    axes under them)."""
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pareto_plot(frame: pd.DataFrame, path: Path, fidelity: str = "") -> Path | None:
    fig = pareto_figure(frame, fidelity)
    return _write(fig, path) if fig is not None else None


def pareto_figure(frame: pd.DataFrame, fidelity: str = ""):
    """Test accuracy against training time and against single-review latency, every finished run but
    the timing outliers (report/timing.py): one marker per model, its family's colour, and the models
    on the Pareto front named beside it."""
    done = tables.finished(frame)
    flagged = done["timing_outlier"].notna() if "timing_outlier" in done else pd.Series(False, index=done.index)
    left_out, done = int(flagged.sum()), done[~flagged]
    if done.empty:
        return None
    models = sorted(done["model"].unique())
    marker = {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(models)}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    fig.subplots_adjust(left=0.07, right=0.84, bottom=0.13, top=0.85, wspace=0.25)
    for ax, column, label in ((axes[0], "fit_seconds", "training time of the fit (s)"),
                              (axes[1], "latency_ms_p50", "single-review latency, median over reviews (ms)")):
        for model in models:
            rows = done[done["model"] == model]
            family = rows["family"].iloc[0]
            ax.scatter(rows[column], rows["test_acc"] * 100, s=28, alpha=0.75, marker=marker[model],
                       color=FAMILY_COLORS.get(family), edgecolors="white", linewidths=0.4,
                       label=f"{model} ({tables.FAMILY_LABEL.get(family, family)})")
        x, y = done[column].to_numpy(float), done["test_acc"].to_numpy(float) * 100
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.any():
            front = _pareto_front(x[ok], y[ok])
            ax.plot(x[ok][front], y[ok][front], "k--", lw=1, label="Pareto front")
            best = done[ok].iloc[front]
            named, points = set(), []
            for (_, row), xv, yv in zip(best.iterrows(), x[ok][front], y[ok][front], strict=True):
                if row["model"] not in named:  # one label per model: its seeds sit side by side
                    named.add(row["model"])
                    points.append((xv, yv, row["model"]))
            ax.set_xscale("log")
            _place_labels(fig, ax, points, np.column_stack([x[ok], y[ok]]))
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overlap on short ranges
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    machines = timing.describe_devices(timing.machines(done))
    fig.suptitle("Accuracy against cost (each point is one run)" + (f"\n{fidelity}" if fidelity else "")
                 + f"\ntimes from the runs' records on {machines}"
                 + (f"; {left_out} timing outlier{'s' if left_out != 1 else ''} left out" if left_out else ""),
                 fontsize=9)
    return fig


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


def _number(text: str) -> float:
    """The leading number of "20 epochs" / "1-5 epochs", for a numeric sort of such labels."""
    head = str(text).split(" ")[0].split("-")[0].replace(",", "")
    try:
        return float(head)
    except ValueError:
        return math.inf


def _short(n: float) -> str:
    """A training-set size as a point label: 500, 2k, 20k."""
    return f"{n / 1000:.0f}k" if n >= 1000 and round(n / 1000) * 1000 == round(n, -3) else f"{n:,.0f}"


def efficiency_plot(table: pd.DataFrame, path: Path) -> Path | None:
    fig = efficiency_figure(table)
    return _write(fig, path) if fig is not None else None


def efficiency_figure(table: pd.DataFrame):
    """Test accuracy against training reviews (a 95% band over seeds) and against training time (the
    same points, joined in order of N and labelled with it: time does not grow with N when small
    subsets train more epochs, and a line joined in time order would zig-zag), one line per family
    (report/efficiency.py)."""
    if table.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.86, wspace=0.22)
    for family, rows in table.groupby("family"):
        rows = rows.sort_values("train_reviews")
        color = FAMILY_COLORS.get(family)
        name = f"{tables.FAMILY_LABEL.get(family, family)} ({', '.join(sorted(set(rows['model'])))})"
        acc, low, high = rows["test_acc"] * 100, rows["low"] * 100, rows["high"] * 100
        axes[0].plot(rows["train_reviews"], acc, marker="o", color=color, label=name)
        axes[0].fill_between(rows["train_reviews"], low, high, alpha=0.2, color=color, linewidth=0)
        timed = rows[rows["fit_seconds"].notna()]
        axes[1].errorbar(timed["fit_seconds"], timed["test_acc"] * 100,
                         yerr=[(timed["test_acc"] - timed["low"]) * 100, (timed["high"] - timed["test_acc"]) * 100],
                         marker="o", color=color, label=name, capsize=3, linewidth=1.2)
    for ax, label in ((axes[0], "training reviews (N)"),
                      (axes[1], "training time of the fit, median over seeds (s)")):
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%), mean over seeds")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    timed = table[table["fit_seconds"].notna()]
    obstacles, placed = np.column_stack([timed["fit_seconds"], timed["test_acc"] * 100]), []
    for family, rows in timed.groupby("family"):  # each point named by its N, no label on a point or a label
        placed = _place_labels(fig, axes[1], [(r["fit_seconds"], r["test_acc"] * 100, f"N={_short(r['train_reviews'])}")
                                              for _, r in rows.iterrows()], obstacles, FAMILY_COLORS.get(family, "black"),
                               placed)
    seeds = f"{table['seeds'].min()}-{table['seeds'].max()}" if table["seeds"].nunique() > 1 else str(table["seeds"].iloc[0])
    epochs = sorted(set(table["epochs"]), key=_number)
    numbers = ", ".join(e.split(" ")[0] for e in epochs)
    machines = sorted(set(table["machine"].dropna())) if "machine" in table else []
    source = f"times from the runs' records on {'; '.join(machines)}" if machines else "times from the runs' records"
    fig.suptitle(f"Data efficiency: the selected setting of each family on N training reviews "
                 f"(epochs {numbers}: small N trains more epochs)\n"
                 f"95% interval over {seeds} seeds; {source}, timing outliers left out", fontsize=9)
    return fig
