"""Everything the report shows, computed once from the run folders (no rendering here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from imdb_lm.report import collect, contrasts, efficiency, fidelity, interpretability, speed, tables
from imdb_lm.report.importance import Importance, importance
from imdb_lm.report.statistics import PairedDifference
from imdb_lm.report.timing import describe_devices, machines


@dataclass
class Analysis:
    runs: pd.DataFrame                 # one row per job; `failed` marks failures
    majority: float | None             # majority-class share of the shared test split
    leaderboard: pd.DataFrame          # best setting per model, mean ± std over seeds
    best_family: dict[str, pd.Series]  # best leaderboard row per family (mean val over shared seeds)
    comparison: dict | None            # every seed of the selected transformer (A) vs RNN (B): two-level
                                       # bootstrap ("difference") and per-seed McNemar ("mcnemar")
    sensitivity: dict[str, pd.DataFrame]
    batch_size: pd.DataFrame
    optimizer: pd.DataFrame
    stability_family: pd.DataFrame
    stability_optimizer: pd.DataFrame
    stability_optimizer_lr: pd.DataFrame
    # grid runs that diverged, per family and per family x optimizer (tables.grid_divergence)
    grid_divergence_family: pd.DataFrame
    grid_divergence_optimizer: pd.DataFrame
    seed_variance: pd.DataFrame
    histories: dict[str, list[dict]]
    device: str
    device_count: int = 1              # machine kinds the runs were made on
    sources: list[str] = field(default_factory=list)
    # Faithfulness of the selected runs' explanations (report/interpretability.py; empty until explained)
    interpretability: pd.DataFrame = field(default_factory=pd.DataFrame)
    interpretability_difference: PairedDifference | None = None  # IG gain over random: RNN - transformer
    explain_page: Path | None = None
    importance: dict[str, Importance] = field(default_factory=dict)  # per family (report/importance.py)
    # fidelity in words of each pool of runs (report/fidelity.py): "full" (leaderboard, stability), "grid"
    fidelity: dict[str, str] = field(default_factory=dict)
    efficiency: pd.DataFrame = field(default_factory=pd.DataFrame)  # report/efficiency.py
    contrasts: pd.DataFrame = field(default_factory=pd.DataFrame)  # report/contrasts.py: what makes the difference
    rank_agreement: dict | None = None  # grid vs full-fidelity validation of the promoted settings (fidelity.py)
    speed: dict | None = None  # one interleaved across-models bench, where a results folder has speed.json
    # the same pairing as `comparison`, on the out-of-domain reviews both selected settings were evaluated on
    ood_comparison: dict | None = None


def analyze(dirs: list[str | Path], resamples: int = 10_000, seed: int = 0) -> Analysis:
    runs = collect.load_runs(dirs)
    bench = speed.load(dirs)
    majority = collect.majority_share(runs)
    runs = tables.mark_failures(runs, majority)
    board = tables.leaderboard(runs)
    best = tables.best_per_family(board, fidelity.full(runs)) if not board.empty else {}
    comparison = ood_comparison = None
    if "recurrent" in best and "transformer" in best:
        selected = best["transformer"]["run_dirs"], best["recurrent"]["run_dirs"]
        comparison = tables.seed_comparison(runs, *selected, resamples, seed)
        source = runs.loc[runs["run_dir"].isin([*selected[0], *selected[1]]), "ood_source"].dropna()
        if not source.empty:
            ood_comparison = tables.seed_comparison(runs, *selected, resamples, seed, evaluation=source.mode().iloc[0])
    models = sorted(tables.finished(runs)["model"].unique())
    devices = machines(runs)
    analysis = Analysis(
        runs=runs, majority=majority, leaderboard=board, best_family=best, comparison=comparison,
        ood_comparison=ood_comparison,
        sensitivity={m: tables.sensitivity(runs, m) for m in models},
        batch_size=tables.batch_size_effect(runs), optimizer=tables.optimizer_effect(runs),
        stability_family=tables.stability(runs, ["family"]),
        stability_optimizer=tables.stability(runs, ["family", "optimizer"]),
        stability_optimizer_lr=tables.stability(runs, ["family", "optimizer", "lr_scale"]),
        grid_divergence_family=tables.grid_divergence(runs, ["family"]),
        grid_divergence_optimizer=tables.grid_divergence(runs, ["family", "optimizer"]),
        seed_variance=tables.seed_variance(runs, board),
        histories=collect.histories(list(board["best_run"])) if not board.empty else {},
        device=describe_devices(devices), device_count=max(1, devices.nunique()),
        sources=[str(d) for d in dirs], importance=importance(fidelity.grid(runs)),
        fidelity={"full": fidelity.describe_full(runs), "grid": fidelity.describe(fidelity.grid(runs))},
        efficiency=efficiency.curve_table(runs, best), contrasts=contrasts.contrast_table(runs, resamples, seed, bench),
        rank_agreement=fidelity.rank_agreement(runs), speed=bench)
    interpretability.attach(analysis, resamples, seed)
    return analysis
