"""How each learning rate was chosen, told from the records: which rates the grid tried for every
model, optimizer and batch size, which jobs the edge rule extended beyond them, which selected
settings sit at the edge of what was tried, and which ablation presets ran at one rate only.

"Every rate was re-derived on validation" is true only where several rates were tried; this module
says where that holds and where it does not, so a reader can weigh a setting chosen at an edge or a
preset never tuned.
"""

from __future__ import annotations

import pandas as pd

from imdb_lm.report import fidelity, tables

GROUP = ["model", "optimizer", "batch_size"]


def _scales(values) -> str:
    return ", ".join(f"x{v:g}" for v in sorted(values))


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _job(model: str, optimizer: str, batch) -> str:
    return f"{model} ({optimizer}, batch {int(batch)})"


def grid_scales(runs: pd.DataFrame) -> tuple[set[float], pd.DataFrame]:
    """The rate multipliers every grid group (model x optimizer x batch size) ran, and the grid runs
    beyond them (the edge rule's extensions)."""
    grid = runs[runs["stage"] == fidelity.GRID] if "stage" in runs else runs.iloc[:0]
    if grid.empty:
        return set(), grid
    per_group = [set(rows["lr_scale"]) for _, rows in grid.groupby(GROUP)]
    common = set.intersection(*per_group)
    return common, grid[~grid["lr_scale"].isin(common)]


def at_edge(runs: pd.DataFrame, board: pd.DataFrame, common: set[float]) -> list[str]:
    """Selected settings whose rate is the lowest or highest its grid group tried: the best rate may
    lie beyond it. The edge rule extends one job per model, so most groups were never extended."""
    grid = runs[runs["stage"] == fidelity.GRID] if "stage" in runs else runs.iloc[:0]
    out = []
    for _, row in board.iterrows():
        tried = set(grid[(grid["model"] == row["model"]) & (grid["optimizer"] == row["optimizer"])
                         & (grid["batch_size"] == row["batch_size"])]["lr_scale"])
        if len(tried) < 2:
            continue
        side = "top" if row["lr_scale"] == max(tried) else "bottom" if row["lr_scale"] == min(tried) else None
        if side:
            out.append(f"{_job(row['model'], row['optimizer'], row['batch_size'])} at x{row['lr_scale']:g}, the {side} "
                       f"of {_scales(tried)}" + (", never extended" if tried <= common else ""))
    return out


def ablation_rates(runs: pd.DataFrame, board: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Ablation presets that ran at one rate (and whether it is the study's selected one), and those
    chosen on validation among several (with the multipliers tried)."""
    ablation = runs[runs["stage"] == fidelity.ABLATION] if "stage" in runs else runs.iloc[:0]
    selected = dict(zip(board["model"], board["lr"], strict=True)) if not board.empty else {}
    one, several = [], []
    for model, rows in ablation.groupby("model"):
        scales = set(rows["lr_scale"].dropna())
        if len(scales) == 1:
            scale = next(iter(scales))
            same = model in selected and set(rows["lr"].dropna()) == {selected[model]}
            one.append(f"{model} (x{scale:g}{', the study' + chr(39) + 's selected rate' if same else ''})")
        else:
            several.append(f"{model} ({_scales(scales)})")
    return one, several


def sentences(runs: pd.DataFrame) -> list[str]:
    """The learning-rate paragraph of "How the study was run"; empty without a staged grid."""
    common, extended = grid_scales(runs)
    if not common:
        return []
    board = tables.leaderboard(runs)
    out = [f"Learning rates: each model preset carries a recipe rate per optimizer. The grid tried it "
           f"{_scales(common)} for every model, optimizer and batch size, and selection on validation chose "
           f"among them."]
    if not extended.empty:
        jobs = [f"{_job(r['model'], r['optimizer'], r['batch_size'])} to x{r['lr_scale']:g}"
                + (f" ({r['status']})" if r["status"] != "completed" else "")
                for _, r in extended.sort_values(["model", "lr_scale"]).iterrows()]
        out.append(f"The edge rule went beyond them only for each model's single best grid job, where its rate "
                   f"sat at an edge: {'; '.join(jobs)}. No other setting was tried beyond the grid's rates.")
    edges = at_edge(runs, board, common)
    if edges:
        out.append(f"Selected at an edge of the rates tried for their setting, so a better rate may lie beyond: "
                   f"{'; '.join(edges)}.")
    one, several = ablation_rates(runs, board)
    if one or several:
        text = "In the ablation, "
        if one:
            text += (f"{_and(one)} {'each ' if len(one) > 1 else ''}ran at one rate, not re-tuned at the "
                     "ablation's budget")
        if several:
            text += ("; the other presets" if one else "the presets") + (
                f" were chosen on validation among the multipliers they ran: {', '.join(several)}")
        out.append(text + ".")
    out.append("Selection reads validation only; each run reads its test split once, with its best-validation "
               "checkpoint.")
    return out
