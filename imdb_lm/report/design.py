"""How the study was run, told from its own records: the training policy every family shared, the
budget each stage and family trained for, the ablation's step budget apart, how the learning rates
were chosen, how much of each review the length kept, and the commands that rebuild it.

A reader who must reproduce a run (or write one as an exercise) needs the policy stated once, in
numbers; the records hold it (each run's resolved config), so this section cannot drift from what
ran. A policy key that differs between families is listed with each family's values rather than
hidden. The ablation trains to a step budget of its own: its runs are stated apart, never mixed into
the study stages' policy.
"""

from __future__ import annotations

import pandas as pd

from imdb_lm.report import budgets, fidelity, length, rates

# (column, how one value reads)
POLICY = [("scheduler", "learning-rate schedule {}".format),
          ("warmup_ratio", lambda v: f"{float(v):.0%} of the steps warming up"),
          ("max_length", "{} tokens per review".format), ("truncation", "truncation {}".format),
          ("precision", "precision {}".format), ("gradient_clip_val", "gradient norm clipped to {}".format),
          ("max_epochs", lambda v: f"at most {v} epoch{'s' if v != 1 else ''} (trainer.max_epochs)"),
          ("min_steps", "at least {} optimizer steps per run (small subsets get more epochs)".format)]


def _plain(value):
    """1.0 -> 1 where a column of whole numbers became floats (a missing value elsewhere in it)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _values(series: pd.Series, say) -> str | None:
    values = sorted({_plain(v) for v in series.dropna()}, key=str)
    return " / ".join(say(v) for v in values) if values else None


def study_stages(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the study's policy governs: every stage but the ablation (its own step budget)."""
    return runs[runs["stage"] != fidelity.ABLATION] if "stage" in runs else runs


def policy(runs: pd.DataFrame) -> str | None:
    """The policy keys every family of the study's stages shared, or each family's values where they
    differ; a family whose runs do not set a key is named, not counted as a different value."""
    runs = study_stages(runs)
    present = [(key, say) for key, say in POLICY if key in runs and runs[key].notna().any()]
    if not present:
        return None
    shared, differing = [], []
    for key, say in present:
        per_family = {family: _values(rows[key], say) for family, rows in runs.groupby("family")}
        unset = sorted(f for f, v in per_family.items() if v is None)
        per_family = {f: v for f, v in per_family.items() if v is not None}
        note = f" (not set for {', '.join(unset)})" if unset else ""
        if len(set(per_family.values())) == 1:
            shared.append(next(iter(per_family.values())) + note)
        else:
            differing.append(", ".join(f"{f}: {v}" for f, v in sorted(per_family.items())) + note)
    staged = "stage" in runs and runs["stage"].notna().any()
    whose = (f"Training policy of the study's stages ({', '.join(s for s in budgets.STAGE_ORDER if s in set(runs['stage']))}), "
             "read from the records" if staged else "Training policy, read from the records")
    text = whose + (", the same for every family: " if not differing else ": ") + "; ".join(shared)
    return text + (". Differing between families: " + "; ".join(differing) if differing else "") + "."


def stages(runs: pd.DataFrame) -> list[str]:
    """One line per stage: its runs, what it trained on and what it was for."""
    if "stage" not in runs or runs["stage"].isna().all():
        return []
    purpose = {
        fidelity.GRID: "every model x optimizer x learning rate x batch size, at low fidelity, to rank settings "
                       "on validation (each model's single best job, where its rate sat at an edge of the grid, "
                       "also one rate beyond it)",
        fidelity.PROMOTED: "the top settings of each model by grid validation, rerun at full fidelity",
        fidelity.SEED: "more seeds of each model's best promoted setting (by full-fidelity validation)",
        fidelity.CURVE: "each family's selected setting on fewer training reviews, hyperparameters not re-tuned",
        fidelity.ABLATION: "other presets at one step budget of their own (what makes the difference); never "
                           "selected",
    }
    out = []
    for stage in [s for s in purpose if s in set(runs["stage"])]:
        rows = runs[runs["stage"] == stage]
        val = (_values(rows["val_reviews"], "{:,.0f}".format) if "val_reviews" in rows else None) or "-"
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
        table = budgets.budget_table(runs)
        if not table.empty:
            out += [("table", table),
                    ("note", "Per stage and family, over the completed runs: epochs given (callbacks.min_steps adds "
                             "epochs on small subsets; a step budget's epochs are its steps x batch / train reviews), "
                             "optimizer steps taken (the step of each run's last validation) and validations, the "
                             "checkpoints the best-validation one was chosen among.")]
        for sentence in (budgets.ablation_budget(runs), budgets.undertraining_sentence(runs)):
            if sentence:
                out.append(("p", sentence))
        out += [("p", " ".join(rates.sentences(runs)) or
                 "Selection reads validation only; each run reads its test split once, with its best-validation "
                 "checkpoint.")]
    truncation = length.truncation_table(runs)
    if not truncation.empty:
        out += [("p", length.sentence(truncation)), ("table", length.display(truncation))]
    if lines:
        out.append(("code", "make study    # = python -m imdb_lm.train --multirun experiment=study, then "
                            "python -m imdb_lm.study.ood\n"
                            "python -m imdb_lm.report <run folders>    # this report, from the runs' records"))
    return out
