"""What each stage's runs trained for, per family: optimizer steps, validations to choose the best
checkpoint among, and epochs, read from every record (its history's validation steps, its epochs
run, the ablation's step budget); and what the ablation's step budget costs in accuracy, against the
same model trained at full fidelity.

A family trained 5 epochs with 5 validations and a family trained 1 epoch with one validation were
given different budgets even under one policy; the reader needs those numbers beside the verdict.
"""

from __future__ import annotations

import pandas as pd

from imdb_lm.report import fidelity, tables

STAGE_ORDER = [fidelity.GRID, fidelity.PROMOTED, fidelity.SEED, fidelity.CURVE, fidelity.ABLATION]
UNDERTRAINED_POINTS = 1.0  # a model this much less accurate at the step budget than at full fidelity


def _span(values: pd.Series, fmt=lambda v: f"{int(v):,}") -> str:
    values = sorted(set(values.dropna()))
    if not values:
        return "-"
    return fmt(values[0]) if len(values) == 1 else f"{fmt(values[0])}-{fmt(values[-1])}"


def _epochs(rows: pd.DataFrame) -> str:
    """Epochs as a step budget makes them (0.96) or as the runs were given them (min_steps included)."""
    if "max_steps" in rows and rows["max_steps"].notna().all():
        return fidelity.budget_epochs(rows).split(" ")[0]
    return _span(rows["epochs_given"] if "epochs_given" in rows else rows["max_epochs"])


def budget_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per stage and family: runs, training reviews, batch, epochs, optimizer steps taken and
    validations, over its completed runs (an early stop is no budget)."""
    if "stage" not in runs or runs["stage"].isna().all():
        return pd.DataFrame()
    completed = runs[runs["status"] == "completed"]
    rank = {s: i for i, s in enumerate(STAGE_ORDER)}
    rows = []
    for (stage, family), group in completed.groupby(["stage", "family"]):
        rows.append({"stage": stage, "family": tables.FAMILY_LABEL.get(family, family),
                     "models": ", ".join(sorted(group["model"].unique())), "runs": len(group),
                     "train reviews": _span(group["train_reviews"]), "batch": ", ".join(f"{int(b)}" for b in sorted(group["batch_size"].dropna().unique())) or "-",
                     "epochs": _epochs(group), "optimizer steps": _span(group["steps_run"]),
                     "validations": _span(group["validations"]), "_order": (rank.get(stage, len(rank)), family)})
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).sort_values("_order").drop(columns="_order").reset_index(drop=True)


def ablation_budget(runs: pd.DataFrame) -> str | None:
    """The ablation's step budget in one sentence, apart from the study's stages' epochs."""
    if "stage" not in runs:
        return None
    ablation = runs[(runs["stage"] == fidelity.ABLATION) & (runs["status"] == "completed")]
    if ablation.empty or ablation["max_steps"].isna().any():
        return None
    interval = ablation["val_check_interval"].dropna() if "val_check_interval" in ablation else pd.Series([])
    every = f", validated every {_span(interval)} steps ({_span(ablation['validations'])} validations)" \
        if not interval.empty else ""
    return (f"The ablation's budget is not the study's: every ablation run trained "
            f"{fidelity.step_budget(ablation)} of {_span(ablation['train_reviews'])} train reviews{every}, "
            f"whatever its family; no minimum-steps rule and no epoch limit it could reach.")


def undertraining(runs: pd.DataFrame) -> list[dict]:
    """Each model that ran both in the ablation and at the study's full fidelity: its test accuracy
    at each (the setting chosen on validation in each pool, mean over that setting's seeds)."""
    if "stage" not in runs:
        return []
    ablation = tables.settings(runs[runs["stage"] == fidelity.ABLATION])
    board = tables.leaderboard(runs)
    if ablation.empty or board.empty:
        return []
    chosen = tables.select(ablation, ["model"]).set_index("model")
    out = []
    for _, full in board.iterrows():
        if full["model"] not in chosen.index:
            continue
        short = chosen.loc[full["model"]]
        out.append({"model": full["model"], "budget_acc": float(short["test_acc"]), "budget_seeds": int(short["seeds"]),
                    "full_acc": float(full["test_acc"]), "full_seeds": int(full["seeds"]),
                    "full_epochs": full["epochs_given"]})
    return out


def undertraining_sentence(runs: pd.DataFrame) -> str | None:
    """Whether the ablation's budget under-trains: a model ahead by UNDERTRAINED_POINTS or more at full
    fidelity was compared at the budget before it converged, and so was every result it takes part in."""
    pairs = undertraining(runs)
    if not pairs:
        return None
    ablation = runs[runs["stage"] == fidelity.ABLATION]
    budget = fidelity.step_budget(ablation[ablation["status"] == "completed"]) or "the ablation's budget"

    def said(p: dict, first: bool) -> str:
        epochs = f"{int(p['full_epochs'])} epoch{'s' if p['full_epochs'] != 1 else ''}" \
            if pd.notna(p["full_epochs"]) else "full fidelity"
        if first:
            return (f"{p['model']} reaches {p['budget_acc'] * 100:.1f}% test accuracy ({p['budget_seeds']} seeds) "
                    f"against {p['full_acc'] * 100:.1f}% after {epochs} in the study ({p['full_seeds']} seeds)")
        return (f"{p['model']} {p['budget_acc'] * 100:.1f}% ({p['budget_seeds']} seeds) against "
                f"{p['full_acc'] * 100:.1f}% after {epochs} ({p['full_seeds']} seeds)")

    behind = [p for p in pairs if (p["full_acc"] - p["budget_acc"]) * 100 >= UNDERTRAINED_POINTS]
    level = [p for p in pairs if p not in behind]
    ordered = behind + level
    text = f"At the ablation's budget, {budget}, " + "; ".join(said(p, i == 0) for i, p in enumerate(ordered)) + "."
    if behind:
        text += (f" The budget under-trains {', '.join(p['model'] for p in behind)}: the ablation's results "
                 "(the contrasts and claims that involve them) hold for under-trained models, not converged ones.")
    else:
        text += " No model compared at both gains a point or more from the longer training."
    return text
