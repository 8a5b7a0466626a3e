"""Write the report folder: results.csv, figures, report.md and a self-contained report.html.

Both documents are built from the same list of blocks (headings, sentences, tables, figures), so
they always say the same thing; the HTML embeds figures as base64 PNG and needs no other file.
"""

from __future__ import annotations

import base64
import html
import math
import os
from pathlib import Path

import pandas as pd

from imdb_lm.atomic import write_text
from imdb_lm.errors import UserError
from imdb_lm.report import (
    contrasts,
    cost,
    design,
    fidelity,
    findings,
    headline,
    importance,
    parallel,
    plots,
    rules,
    speed,
    tables,
    timing,
)
from imdb_lm.report.analysis import Analysis

CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
.note{color:#555;font-size:.92em}li{margin:.3em 0}"""


def _pm(mean: float, std: float, scale: float = 100, digits: int = 1) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def _num(value, fmt: str = "{:.1f}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(value)


def _count(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{int(value):,}"


def leaderboard_table(analysis: Analysis) -> pd.DataFrame:
    rows = []
    with_ood = not analysis.leaderboard.empty and analysis.leaderboard["ood_seeds"].gt(0).any()
    for _, r in analysis.leaderboard.iterrows():
        ood = {"ood acc %": _pm(r["ood_acc"], r["ood_acc_std"]) + (f" ({int(r['ood_seeds'])})" if r["ood_seeds"] else "")
               } if with_ood else {}
        rows.append({
            "model": r["model"], "family": r["family"], "optimizer": r["optimizer"], "lr": f"{r['lr']:.2g}",
            "batch": int(r["batch_size"]), "train reviews": _count(r["train_reviews"]),
            "epochs": _count(r["epochs_given"]), "seeds": int(r["seeds"]),
            "val acc %": _pm(r["val_acc"], None), "test acc %": _pm(r["test_acc"], r["test_acc_std"]),
            "test F1 %": _pm(r["test_f1"], r["test_f1_std"]), "test AUROC %": _pm(r["test_auroc"], r["test_auroc_std"]),
            **ood,
            "params (M)": _num(r["params"] / 1e6, "{:.2f}"), "train time (s)": _num(r["fit_seconds"], "{:.0f}"),
            "s / epoch": _num(r["epoch_seconds"], "{:.1f}"),
            "test reviews/s": _num(r["test_samples_per_s"], "{:.0f}"),
            "latency ms (p50)": _num(r["latency_ms_p50"], "{:.1f}")})
    return pd.DataFrame(rows)


def comparison_table(analysis: Analysis) -> pd.DataFrame:
    comp = analysis.comparison
    if comp is None:
        return pd.DataFrame()
    d, welch = comp["difference"], comp["welch"]
    trf, rnn = analysis.best_family["transformer"], analysis.best_family["recurrent"]
    return pd.DataFrame([{
        "A (transformer)": trf["model"], "B (RNN)": rnn["model"], "seeds A": d.seeds_a, "seeds B": d.seeds_b,
        "test reviews": d.n, "acc A %": f"{d.acc_a * 100:.1f}", "acc B %": f"{d.acc_b * 100:.1f}",
        "A - B (points)": f"{d.diff * 100:+.1f}",
        f"{d.confidence:.0%} two-level bootstrap CI": f"{d.low * 100:+.1f} to {d.high * 100:+.1f}",
        "Welch p": f"{welch.p_value:.2g}", f"TOST p (±{rules.ACCURACY_MARGIN * 100:.1f} pt)": f"{welch.p_equivalent:.2g}",
        "detectable (points)": f"{welch.detectable * 100:.1f}",
        f"verdict (rules v{rules.RULES_VERSION})": rules.outcome(welch.p_value, welch.p_equivalent)}])


def mcnemar_table(analysis: Analysis) -> pd.DataFrame:
    """McNemar per pair of seeds, beside the seed-level interval."""
    if analysis.comparison is None:
        return pd.DataFrame()
    return pd.DataFrame([{"seed A": seed_a, "seed B": seed_b, "only A right": m.only_a, "only B right": m.only_b,
                          "McNemar p": f"{m.p_value:.3g}", "test": m.method}
                         for seed_a, seed_b, m in analysis.comparison["mcnemar"]])


def _percent_frame(table: pd.DataFrame, failed: set[tuple[str, float]] = frozenset()) -> pd.DataFrame:
    """A sensitivity table in percent; a cell that ran but where every run failed reads "failed"."""
    out = (table * 100).round(1).astype(object)
    for opt, scale in failed:
        if opt in out.index and scale in out.columns and pd.isna(out.loc[opt, scale]):
            out.loc[opt, scale] = "failed"
    out.columns = [f"lr x{c:g}" for c in out.columns]
    return out.reset_index()


def selected_table(frame: pd.DataFrame, axis: str, label: str) -> pd.DataFrame:
    """Per model and value of `axis`: the setting chosen on validation and its test accuracy."""
    if frame.empty:
        return pd.DataFrame()
    return pd.DataFrame({"model": frame["model"], label: frame[axis],
                         "selected setting": [f"{r['optimizer']}, lr {r['lr']:.2g}, batch {int(r['batch_size'])}"
                                              for _, r in frame.iterrows()],
                         "val acc %": (frame["selection_val"] * 100).round(1),
                         "test acc %": (frame["test_acc"] * 100).round(1), "seeds": frame["seeds"],
                         "s / epoch": frame["epoch_seconds"].round(1)})


def efficiency_table(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"family": [tables.FAMILY_LABEL.get(f, f) for f in frame["family"]],
                         "model": frame["model"], "train reviews": [f"{n:,}" for n in frame["train_reviews"]],
                         "epochs": frame["epochs"], "seeds": frame["seeds"],
                         "test acc %": (frame["test_acc"] * 100).round(1),
                         "95% CI over seeds": [f"{lo * 100:.1f} to {hi * 100:.1f}"
                                               for lo, hi in zip(frame["low"], frame["high"], strict=True)],
                         "train time (s, median)": [_num(v, "{:.0f}") for v in frame["fit_seconds"]]})


def seed_table(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"model": frame["model"], "seeds": frame["seeds"],
                         "test acc % (mean)": (frame["test_acc"] * 100).round(1),
                         "std (points)": (frame["test_acc_std"] * 100).round(2),
                         "range (points)": (frame["test_acc_range"] * 100).round(2),
                         "95% prediction interval, one more seed (%)": [
                             f"{lo * 100:.1f} to {hi * 100:.1f}" if pd.notna(lo) else ""
                             for lo, hi in zip(frame["predict_low"], frame["predict_high"], strict=True)]})


def rerun_blocks(frame: pd.DataFrame) -> list[tuple[str, object]]:
    """How a reader reproduces one seed of a selected setting, and where its test accuracy should fall."""
    rows = frame[frame["rerun"].notna() & frame["predict_low"].notna()] if "rerun" in frame else frame.iloc[:0]
    if rows.empty:
        return []
    out = [("h3", "Rerunning a seed"),
           ("note", "One more seed of a selected setting, trained at the study's precision (32-true) on the "
                    "whole train split, should reach a test accuracy inside the 95% prediction interval above "
                    "(mean ± t(n-1) · sd · sqrt(1 + 1/n) over the n published seeds; it assumes seeds vary "
                    "normally, and with 3 seeds it is wide by design). The command of each setting, with a seed "
                    "it has not used:")]
    out += [("code", f"{row['rerun']}   # {row['model']}: expect {row['predict_low'] * 100:.1f} to "
                     f"{row['predict_high'] * 100:.1f}% test accuracy") for _, row in rows.iterrows()]
    return out


def stability_table(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["failed %"] = (out.pop("failed_share") * 100).round(0)
    if "pruned" in out and not out["pruned"].any():  # no Optuna pruning in these runs
        out = out.drop(columns="pruned")
    if "lr_scale" in out:
        out["lr_scale"] = [f"x{v:g}" for v in out["lr_scale"]]
    return out


def interpretability_table(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in ("AOPC", "random AOPC", "gain"):
        out[col] = out[col].round(3)
    out["IG completeness"] = [f"{v:.1e}" for v in out["IG completeness"]]
    return out


def interpretability_blocks(analysis: Analysis) -> list[tuple[str, object]]:
    if analysis.interpretability.empty:
        return [("h2", "Interpretability"),
                ("note", "Not measured: run the report with --explain N to explain the selected RNN and "
                         "transformer on the same N test reviews and score their explanations.")]
    out = [("h2", "Interpretability: faithfulness of the selected runs' explanations"),
           ("table", interpretability_table(analysis.interpretability)),
           ("note", "AOPC: mean drop of the predicted class's probability after deleting the top 1-50% of "
                    "tokens ranked by the explanation, over the same test reviews (the first in review-hash "
                    "order); random AOPC deletes random tokens; gain = AOPC - random AOPC (higher: the "
                    "explanation finds tokens the prediction depends on). IG completeness: |sum of "
                    "attributions - (f(x) - f(baseline))| relative to the gap (0 is exact).")]
    if analysis.explain_page is not None:
        out.append(("link", (analysis.explain_page, "Highlighted reviews, attention maps and deletion curves")))
    return out


def hyperparameter_blocks(analysis: Analysis, figures: dict[str, Path | None]) -> list[tuple[str, object]]:
    """Per family: the parallel-coordinates figure and the importance of each varied hyperparameter."""
    if not analysis.importance:
        return []
    out: list[tuple[str, object]] = [
        ("h2", "Hyperparameters: parallel coordinates and importance per family"),
        ("note", f"Fidelity: {analysis.fidelity.get('grid', '')} (the grid). "
                 f"Importance: {importance.METHOD}. Computed from the run records alone (report/importance.py); "
                 "on a complete grid the shares are exact, an incomplete one is fitted by least squares.")]
    for family, result in analysis.importance.items():
        out += [("h3", tables.FAMILY_LABEL.get(family, family)), ("figure", figures.get(f"parallel_{family}")),
                ("p", importance.summary(result))]
        out.append(("table", importance.table(result)) if result.shares else ("note", f"No importance: {result.note}."))
        if result.caution:
            out.append(("note", f"Caution: {result.caution}."))
    return out


def rank_agreement_blocks(analysis: Analysis) -> list[tuple[str, object]]:
    """Grid vs full-fidelity validation accuracy of each promoted setting: does the grid rank usefully?"""
    agreement = analysis.rank_agreement
    if not agreement:
        return []
    pairs = agreement["pairs"].sort_values(["model", "full_val"], ascending=[True, False])
    table = pd.DataFrame({
        "model": pairs["model"], "optimizer": pairs["optimizer"], "lr": [f"{v:.2g}" for v in pairs["lr"]],
        "batch size": pairs["batch_size"], "grid val %": [f"{v * 100:.1f}" for v in pairs["grid_val"]],
        "full-fidelity val %": [f"{v * 100:.1f}" for v in pairs["full_val"]]})
    return [("h3", "Does the low fidelity rank settings usefully?"),
            ("note", f"Each promoted setting's validation accuracy on the grid ({analysis.fidelity.get('grid', '')}) "
                     f"and at full fidelity ({analysis.fidelity.get('full', '')}), the same seed. Spearman's rho "
                     f"over the {agreement['settings']} settings: {agreement['rho']:+.2f} "
                     f"(p = {agreement['p_value']:.3g}; pooled over models, so mostly the differences between them)"
                     + (f"; within a model (each model's accuracies centred on its mean, then pooled): "
                        f"{agreement['within_rho']:+.2f} (p = {agreement['within_p']:.2g})"
                        if agreement.get("within_rho") is not None else "")
                     + (f"; per model: {', '.join(f'{m} {v:+.2f}' for m, v in agreement['model_rho'].items())}"
                        if agreement.get("model_rho") else "")
                     + f"; the grid's best is the full-fidelity best for {agreement['top_agrees']} of "
                     f"{agreement['models']} models."),
            ("table", table)]


def _runs_of(analysis: Analysis, table: pd.DataFrame) -> pd.DataFrame:
    """The runs behind a table of settings (their `run_dirs`)."""
    dirs = [d for dirs in table["run_dirs"] for d in dirs] if "run_dirs" in table else []
    return analysis.runs[analysis.runs["run_dir"].isin(dirs)]


def efficiency_runs(analysis: Analysis) -> pd.DataFrame:
    from imdb_lm.report.efficiency import curve_runs

    return curve_runs(analysis.runs, analysis.best_family) if analysis.best_family else analysis.runs.iloc[:0]


def _timings_source(analysis: Analysis, runs: pd.DataFrame) -> str:
    """Where a table's timings come from and how they are aggregated, for its caption."""
    kinds = timing.machines(runs)
    mixed = "; they mix machines, so compare timings within one machine only" if kinds.nunique() > 1 else ""
    return (f"from the runs' own records, {timing.AGGREGATION}, made on {timing.describe_devices(kinds)}{mixed}; "
            + timing.outlier_note(runs))


def timing_outlier_blocks(analysis: Analysis) -> list[tuple[str, object]]:
    """The runs whose timings were left out, with why: a reader can check that nothing else was."""
    table = timing.outliers(analysis.runs)
    if table.empty:
        return []
    return [("h3", "Timing outliers"), ("table", table),
            ("note", f"Runs whose fit time or latency exceeds {timing.OUTLIER_FACTOR:g}x the median of the other runs "
                     "of their setting (other seeds): their accuracy counts everywhere, their timings nowhere "
                     "(leaderboard, data efficiency, Pareto figure, ratios from the records). A shared machine's "
                     "load, not the model, is the likely cause.")]


def grid_divergence_table(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["diverged %"] = (out.pop("diverged_share") * 100).round(0)
    if "unfinished" in out and not out["unfinished"].any():
        out = out.drop(columns="unfinished")
    if "family" in out:
        out["family"] = [tables.FAMILY_LABEL.get(f, f) for f in out["family"]]
    return out


def grid_divergence_blocks(analysis: Analysis) -> list[tuple[str, object]]:
    """Divergence on the grid beside the full-fidelity failure rates: promotion kept the settings that
    trained well, so a 0% above says nothing of how often a family's runs diverge across settings."""
    by_family = analysis.grid_divergence_family
    if by_family.empty or by_family["runs"].sum() == 0 or fidelity.grid_only(analysis.fidelity.get("full", "")):
        return []
    return [("h3", "Divergence on the grid"),
            ("note", f"Fidelity: {analysis.fidelity.get('grid', '')} (the grid: every setting, not only the promoted "
                     "ones). Diverged: the stability callback stopped the run (a non-finite training loss, or "
                     "validation accuracy at the majority-class rate for several validations in a row)."),
            ("table", grid_divergence_table(by_family)),
            ("table", grid_divergence_table(analysis.grid_divergence_optimizer))]


def cost_blocks(runs: pd.DataFrame, benched: bool) -> list[tuple[str, object]]:
    """The measured wall time per machine kind and stage, with the code revisions that ran there."""
    table = cost.cost_table(runs)
    if table.empty:
        return []
    return [("h2", "What it cost: wall time per machine and stage"), ("p", cost.summary(runs)), ("table", table),
            ("note", "From the runs' own records, per machine kind (device, CPU capability, native bf16). A "
                     "run's wall time runs from its start to its record (start-up, tokenization, fit, test, "
                     "latency sample); a run resumed after an interruption counts its last attempt; reused runs "
                     "count once; out-of-domain evaluations and the gaps between jobs are not counted. The study ran "
                     "at low priority beside other work on shared machines: these are what it took there, not "
                     "idle timings" + (" (the speed ratios come from the interleaved bench)." if benched else
                                       "; compare speeds with one interleaved bench (`make study-speed`)."))]


def blocks(analysis: Analysis, figures: dict[str, Path | None]) -> list[tuple[str, object]]:
    runs = analysis.runs
    statuses = ", ".join(f"{n} {s}" for s, n in runs["status"].value_counts().items())
    majority = f"{analysis.majority * 100:.1f}%" if analysis.majority is not None else "unknown"
    out: list[tuple[str, object]] = [
        ("h1", "RNNs vs transformers on IMDB: comparison report"),
        ("p", f"{len(runs)} runs ({statuses}) from {', '.join(map(_shown, analysis.sources))}; all share one frozen split "
              f"(test majority-class share {majority}). Device: {analysis.device}. Settings are selected on "
              f"validation accuracy; test numbers are for the selected setting."),
        ("h2", "Findings"),
    ]
    for title, sentences in findings.all_findings(analysis).items():
        if sentences:
            out.append(("list", [f"{title}: {s}" for s in sentences]))
    out += design.blocks(runs)
    full, grid = analysis.fidelity.get("full", ""), analysis.fidelity.get("grid", "")
    out += [("h2", "Leaderboard: best setting per model (mean ± std over seeds)"),
            ("table", leaderboard_table(analysis)),
            ("note", f"Fidelity: {full}. Every seed of each selected setting counts; ablation runs and curve points "
                     "are never selected. Accuracies: mean ± std over seeds. Timings: "
                     f"{_timings_source(analysis, _runs_of(analysis, analysis.leaderboard))}. Latency: one review at a "
                     "time, median over a fixed sample of test reviews; throughput: batched test-set inference; "
                     "train time: the whole fit including validation"
                     + ("; ood acc: out-of-domain accuracy, mean ± std over the seeds evaluated (their number in "
                        "brackets)." if "ood acc %" in leaderboard_table(analysis) else "."))]
    out += timing_outlier_blocks(analysis)
    if analysis.comparison is not None:
        out += [("h2", "Seed-level comparison: selected transformer vs selected RNN on the same test reviews"),
                ("table", comparison_table(analysis)),
                ("note", f"Fidelity: {full}. Two-level bootstrap: each resample draws seeds with replacement within "
                         "each family independently and one set of test reviews shared by both (paired by review "
                         "hash), shown beside the verdict but not deciding it: over a few seeds it cannot leave their "
                         "range and understates the spread. The verdict follows the decision rules "
                         f"v{rules.RULES_VERSION} ({rules.HISTORY[-1].date}; docs/comparing.md): Welch's t on the "
                         "per-seed test accuracies, and two one-sided Welch tests of equivalence within "
                         f"{rules.ACCURACY_MARGIN * 100:.1f} point; detectable: the difference found 80% of the time "
                         "at 5% with these seeds' spread. Beside it, McNemar's test per "
                         "pair of seeds on the discordant reviews (exact binomial below 25 of them)."),
                ("table", mcnemar_table(analysis))]
    if not analysis.efficiency.empty:
        out += [("h2", "Data efficiency: test accuracy against training reviews and training time"),
                ("figure", figures.get("efficiency")), ("table", efficiency_table(analysis.efficiency)),
                ("note", "Each family's selected setting, hyperparameters not re-tuned per size; the same val and "
                         "test reviews at every size; accuracy: mean over seeds, interval: t-based 95% over seeds; "
                         f"train time: {_timings_source(analysis, efficiency_runs(analysis))}. Training time "
                         "depends on the minimum-steps rule (small subsets train more epochs) as much as on N.")]
    if not analysis.contrasts.empty:
        absent = contrasts.missing(analysis.runs)
        out += [("h2", "What makes the difference: pretraining, architecture, size, the floor"),
                ("table", contrasts.models_table(analysis.runs)),
                ("note", "Each model's setting chosen on validation among the rates it ran at (in brackets: mean "
                         "validation accuracy over the seeds every rate of the model ran: seed 1 where it ran "
                         "at several rates), and its test accuracy over the chosen setting's seeds. The "
                         "contrasts below pair these settings."),
                ("table", contrasts.display(analysis.contrasts)),
                ("note", f"{len(analysis.contrasts)} contrasts, each A minus B in test accuracy over every seed of "
                         "both models' settings chosen on validation. The verdict follows the decision rules "
                         f"v{rules.RULES_VERSION}: Welch's t on per-seed accuracies with Holm's adjustment for all "
                         f"{len(analysis.contrasts)} contrasts, and TOST within {rules.ACCURACY_MARGIN * 100:.1f} point "
                         f"(unadjusted); 'different, within the margin' is a real difference smaller than the margin. "
                         "The two-level bootstrap interval is unadjusted; the last verdict column is the published "
                         f"rule v{rules.PUBLISHED} (bootstrap p after Holm, '<=' at its resolution floor). Ratios "
                         "(two significant digits): median training time per "
                         "epoch (from the runs' records), time per training token (in brackets, the range over "
                         "the bench's interleaved rounds) and median single-review "
                         "latency, " + (f"from {speed.describe(analysis.speed)} where the row says bench, else from "
                                        "the runs' records" if analysis.speed else
                                        "from the runs' records (no interleaved bench in these folders: "
                                        "`make study-speed` writes one)")
                         + ". Runs: the ablation stage where it exists, at "
                         f"{fidelity.describe(contrasts.pool(analysis.runs))}."
                         + (f" Not in the table yet: {'; '.join(absent)}." if absent else ""))]
    out += interpretability_blocks(analysis)
    out += [("h2", "Sensitivity to optimizer and learning rate"),
            ("note", f"Fidelity: {grid}. Each cell: test accuracy (mean over seeds) of the batch size chosen on "
                     "validation for that optimizer and learning rate; \"failed\": every run of the cell diverged "
                     "or failed (the list at the end); blank: not run."),
            ("figure", figures.get("sensitivity"))]
    for model, table in analysis.sensitivity.items():
        if not table.empty:
            out += [("h3", f"{model}: test accuracy %"),
                    ("table", _percent_frame(table, tables.failed_cells(analysis.runs, model)))]
    out += rank_agreement_blocks(analysis)
    out += [("h3", "By optimizer: the setting chosen on validation"),
            ("table", selected_table(analysis.optimizer, "optimizer", "optimizer")),
            ("note", f"Fidelity: {grid}. Per optimizer, the learning rate and batch size chosen on validation; s / "
                     f"epoch: {_timings_source(analysis, fidelity.grid(runs))}.")]
    out += hyperparameter_blocks(analysis, figures)
    out += [("h2", "Sensitivity to batch size"),
            ("note", f"Fidelity: {grid}. Per batch size, the optimizer and learning rate chosen on validation; "
                     "its test accuracy, never a maximum over test; s / epoch: "
                     f"{_timings_source(analysis, fidelity.grid(runs))}."),
            ("figure", figures.get("batch_size")),
            ("table", selected_table(analysis.batch_size, "batch_size", "batch size")),
            ("h2", "Accuracy against training time and inference latency"),
            ("note", f"Fidelity: {full}; each point one run of that pool, labelled with its model; times: "
                     f"{_timings_source(analysis, fidelity.full(runs))}."),
            ("figure", figures.get("pareto")),
            ("h2", "Learning curves of the best runs"),
            ("note", f"Fidelity: {full}; the best-validation seed of each selected setting."),
            ("figure", figures.get("learning_curves")),
            ("h2", "Stability"),
            ("note", f"Fidelity: {full} ("
                     + ("the grid's runs until a setting is promoted; then " if fidelity.grid_only(full)
                        else "") + "full-fidelity runs only: a low-fidelity grid mixes under-training with "
                     "instability). A run failed when it did not finish, diverged, or its test accuracy is at or "
                     "below the majority-class share."),
            ("figure", figures.get("stability")),
            ("table", stability_table(analysis.stability_family)),
            ("table", stability_table(analysis.stability_optimizer)),
            *grid_divergence_blocks(analysis),
            ("h3", "Seed variance of the selected settings"),
            ("table", seed_table(analysis.seed_variance)),
            *rerun_blocks(analysis.seed_variance)]
    out += cost_blocks(runs, bool(analysis.speed))
    broken = runs[runs["status"] != "completed"]
    if not broken.empty:
        out += [("h3", "Runs that did not complete"),
                ("table", broken[["run_dir", "model", "optimizer", "lr", "batch_size", "status", "error"]]
                 .assign(run_dir=[_shown(d) for d in broken["run_dir"]]))]
    out.append(("note", "Every run, one row each: results.csv."))
    return out


def _md_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(no rows)_"
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join("" if pd.isna(v) else str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def to_markdown(items: list[tuple[str, object]], out_dir: Path) -> str:
    parts = []
    for kind, value in items:
        if kind in ("h1", "h2", "h3"):
            parts.append("#" * int(kind[1]) + " " + value)
        elif kind in ("p", "note"):
            parts.append(value if kind == "p" else f"_{value}_")
        elif kind == "list":
            parts.append("\n".join(f"- {s}" for s in value))
        elif kind == "table":
            parts.append(_md_table(value))
        elif kind == "code":
            parts.append(f"```bash\n{value}\n```")
        elif kind == "figure" and value is not None:
            parts.append(f"![{value.stem}]({_relative(value, out_dir)})")
        elif kind == "link":
            target, text = value
            parts.append(f"[{text}]({_relative(target, out_dir)})")
    return "\n\n".join(parts) + "\n"


def _shown(path: str) -> str:
    """A folder as the reader should see it: relative to where the report ran when it lies below it
    (a published report names no machine's paths)."""
    relative = os.path.relpath(Path(path).resolve(), Path.cwd())
    return Path(relative).as_posix() if not relative.startswith("..") else str(path)


def _relative(target: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), Path(out_dir).resolve())).as_posix()


def to_html(items: list[tuple[str, object]], out_dir: Path) -> str:
    body = []
    for kind, value in items:
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{html.escape(value)}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{html.escape(value)}</p>")
        elif kind == "note":
            body.append(f'<p class="note">{html.escape(value)}</p>')
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in value) + "</ul>")
        elif kind == "code":
            body.append(f"<pre><code>{html.escape(value)}</code></pre>")
        elif kind == "table":
            body.append(value.to_html(index=False, na_rep="-", border=0) if not value.empty else "<p>(no rows)</p>")
        elif kind == "figure" and value is not None:
            data = base64.b64encode(value.read_bytes()).decode()
            body.append(f'<p><img alt="{html.escape(value.stem)}" src="data:image/png;base64,{data}"></p>')
        elif kind == "link":
            target, text = value
            body.append(f'<p><a href="{html.escape(_relative(target, out_dir))}">{html.escape(text)}</a></p>')
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>imdb_lm comparison report</title>'
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")


def _write(path: Path, text: str) -> None:
    write_text(path, text)


def make_figures(analysis: Analysis, fig_dir: Path) -> dict[str, Path | None]:
    fig_dir.mkdir(parents=True, exist_ok=True)
    best_runs = dict(zip(analysis.leaderboard["model"], analysis.leaderboard["best_run"], strict=True)) \
        if not analysis.leaderboard.empty else {}
    full = f"Fidelity: {analysis.fidelity.get('full', '')}"
    return {
        "sensitivity": plots.sensitivity_heatmaps(analysis.runs, fig_dir / "sensitivity.png",
                                                  f"Fidelity: {analysis.fidelity.get('grid', '')}"),
        "batch_size": plots.batch_size_plot(analysis.runs, fig_dir / "batch_size.png",
                                            f"Fidelity: {analysis.fidelity.get('grid', '')}"),
        "efficiency": plots.efficiency_plot(analysis.efficiency, fig_dir / "efficiency.png"),
        "pareto": plots.pareto_plot(fidelity.full(analysis.runs), fig_dir / "pareto.png", full),
        "learning_curves": plots.learning_curves(best_runs, analysis.histories, fig_dir / "learning_curves.png", full),
        "stability": plots.stability_plot(analysis.stability_optimizer_lr, fig_dir / "stability.png", full),
        **{f"parallel_{family}": parallel.parallel_coordinates(fidelity.grid(analysis.runs), result, fig_dir / f"parallel_{family}.png")
           for family, result in analysis.importance.items()},
    }


def write_report(analysis: Analysis, out_dir: str | Path, markdown: str | Path | None = None,
                 headline_page: str | Path | None = None) -> dict[str, Path]:
    """Write results.csv, figures/*.png, report.md and report.html into `out_dir` (and the markdown to
    `markdown`, its links relative to that file, e.g. docs/study.md; and the headline block into
    `headline_page`, e.g. README.md); return their paths."""
    out_dir = Path(out_dir)
    block = None
    if headline_page is not None:  # checked before anything is written
        block = headline.markdown(analysis, analysis.fidelity.get("full", ""),
                                  headline.relative_link(Path(markdown or out_dir / "report.md"), Path(headline_page)))
        if block is None:
            raise UserError(f"headline={headline_page}: no headline yet: it needs a selected setting of both "
                            "families (an RNN and a transformer) among the runs")
        headline.check_page(headline_page)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = make_figures(analysis, out_dir / "figures")
    items = blocks(analysis, figures)
    paths = {"results": out_dir / "results.csv", "markdown": out_dir / "report.md", "html": out_dir / "report.html"}
    _write(paths["results"], analysis.runs.to_csv(index=False))
    _write(paths["markdown"], to_markdown(items, out_dir))
    _write(paths["html"], to_html(items, out_dir))
    if markdown is not None:
        _write(Path(markdown), to_markdown(items, Path(markdown).parent))
    if block is not None:
        headline.write_into(headline_page, block)
    return {**paths, **{f"figure_{k}": v for k, v in figures.items() if v is not None}}
