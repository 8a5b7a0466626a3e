"""How the study was run, told from its own records: the training policy every family shared, the
stages and their fidelities, how the learning rates were chosen, and the commands that rebuild it.

A reader who must reproduce a run (or write one as an exercise) needs the policy stated once, in
numbers; the records hold it (each run's resolved config), so this section cannot drift from what
ran. A policy key that differs between runs is listed with its values rather than hidden.
"""

from __future__ import annotations

import pandas as pd

from imdb_lm.report import fidelity

# (column, how one value reads)
POLICY = [("scheduler", "learning-rate schedule {}".format),
          ("warmup_ratio", lambda v: f"{float(v):.0%} of the steps warming up"),
          ("max_length", "{} tokens per review".format), ("truncation", "truncation {}".format),
          ("precision", "precision {}".format), ("gradient_clip_val", "gradient norm clipped to {}".format),
          ("min_steps", "at least {} optimizer steps per run (small subsets get more epochs)".format)]


def _values(series: pd.Series, say) -> str:
    values = sorted({v for v in series.dropna()}, key=str)
    return " / ".join(say(v) for v in values) if values else "-"


def policy(runs: pd.DataFrame) -> str | None:
    """The policy keys every family shared, or each family's values where they differ."""
    present = [(key, say) for key, say in POLICY if key in runs and runs[key].notna().any()]
    if not present:
        return None
    shared, differing = [], []
    for key, say in present:
        per_family = {family: _values(rows[key], say) for family, rows in runs.groupby("family")}
        if len(set(per_family.values())) == 1:
            shared.append(next(iter(per_family.values())))
        else:
            differing.append(", ".join(f"{f}: {v}" for f, v in sorted(per_family.items())))
    text = ("Training policy, read from the records" + (", the same for every family: " if not differing else ": ")
            + "; ".join(shared))
    return text + (". Differing between families: " + "; ".join(differing) if differing else "") + "."


def stages(runs: pd.DataFrame) -> list[str]:
    """One line per stage: its runs, what it trained on and what it was for."""
    if "stage" not in runs or runs["stage"].isna().all():
        return []
    purpose = {
        fidelity.GRID: "every model x optimizer x learning rate x batch size, at low fidelity, to rank settings "
                       "on validation (a best rate at the edge of x0.3..x3 was also tried at x0.1 or x10)",
        fidelity.PROMOTED: "the top settings of each model by grid validation, rerun at full fidelity",
        fidelity.SEED: "more seeds of each model's best promoted setting (by full-fidelity validation)",
        fidelity.CURVE: "each family's selected setting on fewer training reviews, hyperparameters not re-tuned",
        fidelity.ABLATION: "other presets at one step budget (what makes the difference); never selected",
    }
    out = []
    for stage in [s for s in purpose if s in set(runs["stage"])]:
        rows = runs[runs["stage"] == stage]
        val = _values(rows["val_reviews"], "{:,.0f}".format) if "val_reviews" in rows else "-"
        out.append(f"{stage} ({len(rows)} run{'s' if len(rows) != 1 else ''}; {fidelity.describe(rows)}; validated on {val} val reviews): "
                   f"{purpose[stage]}.")
    return out


def blocks(runs: pd.DataFrame) -> list[tuple[str, object]]:
    lines = stages(runs)
    text = policy(runs)
    if not lines and text is None:
        return []
    out: list[tuple[str, object]] = [("h2", "How the study was run")]
    if text:
        out.append(("p", text))
    if lines:
        out.append(("list", lines))
        out.append(("p", "Learning rates: each model preset carries a recipe rate per optimizer; the grid "
                         "tried it x0.3, x1 and x3 and selection on validation chose among them, so every "
                         "rate in the tables below was re-derived on validation, not taken from the recipe. "
                         "Selection reads validation only; each run reads its test split once, with its "
                         "best-validation checkpoint."))
        out.append(("code", "make study    # = python -m imdb_lm.train --multirun experiment=study, then "
                            "python -m imdb_lm.study.ood\n"
                            "python -m imdb_lm.report <run folders>    # this report, from the runs' records"))
    return out
