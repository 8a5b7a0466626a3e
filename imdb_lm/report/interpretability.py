"""Interpretability in the report: the compared runs explained on the same test reviews.

`python -m imdb_lm.report <sweep> explain=N` runs `imdb_lm.explain` on the selected (best) run of
each family: Integrated Gradients for both, attention rollout for the transformer, each scored by
deletion faithfulness (AOPC: the mean drop of the predicted class's probability after deleting the
top 1-50% tokens) against deleting random tokens. The explain set is the first N test reviews in
review-hash order, so both models are scored on exactly the same reviews and the per-review gains
over random deletion can be compared pairwise, with the same bootstrap as accuracy.

Results stay in each run's `explain.json` (computed once; a later report with the same N reuses it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from imdb_lm.errors import UserError
from imdb_lm.report.statistics import PairedDifference, bootstrap_difference
from imdb_lm.runs.folders import CHECKPOINTS_DIR, EXPLAIN_PAGE
from imdb_lm.runs.records import EXPLAIN_FILE, read_artifact, read_metrics

METHOD_NAMES = {"integrated_gradients": "integrated gradients", "attention_rollout": "attention rollout"}


def _trained_folder(run_dir: str) -> Path:
    """The folder holding the run's checkpoint: a job reused by skip_completed points to its source."""
    folder = Path(run_dir)
    if not (folder / CHECKPOINTS_DIR).is_dir():
        try:
            source = read_metrics(folder).get("reused_from")
        except (OSError, ValueError):
            return folder
        if source and (Path(source) / CHECKPOINTS_DIR).is_dir():
            return Path(source)
    return folder


def selected_runs(analysis) -> dict[str, Path]:
    """family -> folder of the family's selected run (the one the leaderboard and the paired test use)."""
    return {family: _trained_folder(row["best_run"]) for family, row in sorted(analysis.best_family.items())}


def _explained(folder: Path, n: int) -> bool:
    try:
        return read_artifact(folder, EXPLAIN_FILE).get("n_reviews") == n
    except (OSError, ValueError):
        return False


def ensure_explained(analysis, n: int, out: Path, device: str = "auto") -> Path | None:
    """Explain the selected runs on the first `n` test reviews unless already done; the combined page
    goes to `out`. Returns the page (None when nothing could be explained, with a warning)."""
    from imdb_lm.explain.run import explain_runs

    runs = list(selected_runs(analysis).values())
    if not runs:
        return None
    if all(_explained(r, n) for r in runs) and (out.is_file() or len(runs) == 1):
        return out if out.is_file() else runs[0] / EXPLAIN_PAGE
    try:
        explain_runs([str(r) for r in runs], n=n, out=str(out), device=device)
    except UserError as err:  # e.g. a sweep saved no checkpoints: the rest of the report still stands
        print(f"warning: --explain skipped: {err}", file=sys.stderr)
        return None
    return out if len(runs) > 1 else runs[0] / EXPLAIN_PAGE


def _records(analysis) -> dict[str, tuple[pd.Series, dict]]:
    out = {}
    for family, folder in selected_runs(analysis).items():
        try:
            out[family] = (analysis.best_family[family], read_artifact(folder, EXPLAIN_FILE))
        except (OSError, ValueError):
            continue
    return out


def table(analysis) -> pd.DataFrame:
    """One row per (selected run, explanation method) with its faithfulness and IG completeness."""
    rows = []
    for family, (best, record) in _records(analysis).items():
        for method, f in (record.get("faithfulness") or {}).items():
            rows.append({"model": best["model"], "family": family, "explanation": METHOD_NAMES.get(method, method),
                         "reviews": record.get("n_reviews"), "AOPC": f["aopc"], "random AOPC": f["random_aopc"],
                         "gain": f["aopc_gain"], "IG completeness": record.get("completeness")})
    return pd.DataFrame(rows)


def paired_gain(analysis, resamples: int = 10_000, seed: int = 0) -> PairedDifference | None:
    """Integrated Gradients' AOPC gain over random deletion, best RNN minus best transformer, paired
    by review (only reviews both runs explained)."""
    records = _records(analysis)
    if "recurrent" not in records or "transformer" not in records:
        return None

    def gains(record: dict) -> dict[str, float]:
        return {r["hash"]: r["aopc_integrated_gradients"] - r["aopc_random"] for r in record.get("per_review", [])}

    rnn, trf = gains(records["recurrent"][1]), gains(records["transformer"][1])
    shared = sorted(set(rnn) & set(trf))
    if len(shared) < 2:
        return None
    return bootstrap_difference(np.array([rnn[h] for h in shared]), np.array([trf[h] for h in shared]),
                                resamples, seed=seed)


def attach(analysis, resamples: int = 10_000, seed: int = 0, page: Path | None = None) -> None:
    """Fill the analysis' interpretability fields from the selected runs' explain.json files."""
    analysis.interpretability = table(analysis)
    analysis.interpretability_difference = paired_gain(analysis, resamples, seed)
    if page is not None:
        analysis.explain_page = page
