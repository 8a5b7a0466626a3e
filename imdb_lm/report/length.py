"""How much of each review the length limit kept: the share of reviews longer than `max_length`, per
family, tokenizer and split, from each record's `data.truncated_share`.

Equal token counts are not equal text (words for the RNNs, wordpieces for MiniLM), and a limit that
cuts most reviews may decide a verdict; the report states the shares rather than leaving them in the
records.
"""

from __future__ import annotations

import pandas as pd

from imdb_lm.report import tables
from imdb_lm.report.fidelity import ABLATION

SPLITS = ("train", "val", "test")
KEYS = ["family", "tokens", "max_length"]


def _share(rows: pd.DataFrame, split: str, size: str | None) -> float | None:
    """The split's share on its largest subset (the whole split where a run used it): a grid's
    1,000-review subset is cut a little differently from the whole train split."""
    values = rows[rows[f"truncated_{split}"].notna()]
    if size and size in values and values[size].notna().any():
        values = values[values[size] == values[size].max()]
    return float(values[f"truncated_{split}"].median()) if not values.empty else None


def truncation_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per family, tokenizer and length: the share of train, val and test reviews cut."""
    if "truncated_train" not in runs or runs[[f"truncated_{s}" for s in SPLITS]].isna().all().all():
        return pd.DataFrame()
    rows = []
    known = runs.dropna(subset=["tokens", "max_length"])
    for (family, tokens, length), group in known.groupby(KEYS):
        shares = {s: _share(group, s, {"train": "train_reviews", "val": "val_reviews"}.get(s)) for s in SPLITS}
        if all(v is None for v in shares.values()):
            continue
        rows.append({"max length": int(length), "family": tables.FAMILY_LABEL.get(family, family), "tokens": tokens,
                     "models": ", ".join(sorted(group["model"].unique())),
                     **{f"{s} cut %": "-" if v is None else f"{v * 100:.0f}" for s, v in shares.items()},
                     "_train": shares["train"],
                     "_order": (-int((group["stage"] != ABLATION).sum()) if "stage" in group else 0, -len(group))})
    # the study's tokenizations first (most study-stage runs), the ablation's variants after
    table = pd.DataFrame(rows)
    return table.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True) \
        if not table.empty else table


def sentence(table: pd.DataFrame) -> str | None:
    """"128 tokens cut 85% of train reviews as word tokens (RNN), 88% as MiniLM wordpieces (transformer)"."""
    if table.empty:
        return None
    parts = []
    for length, rows in table.groupby("max length", sort=False):
        cuts = [f"{row['_train'] * 100:.0f}%" + (" of train reviews" if not i else "")
                + f" as {row['tokens']} ({row['family']}: {row['models']})"
                for i, (_, row) in enumerate(rows[rows["_train"].notna()].iterrows())]
        if cuts:
            parts.append(f"at {length} tokens, the limit cut " + ", ".join(cuts))
    if not parts:
        return None
    return ("Length: " + "; ".join(parts) + " (the share of reviews longer than the limit, on the largest train "
            "set each ran; val and test in the table). A verdict measured at this length may not hold at "
            "another.")


def display(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns="_train") if not table.empty else table
