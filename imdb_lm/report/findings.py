"""Findings: sentences whose every number is filled in from the analysis, never written by hand.

Each function returns a list of sentences (possibly empty when the runs lack what it needs, e.g. a
sweep with only one family has no RNN-vs-transformer comparison).
"""

from __future__ import annotations

import math

import pandas as pd

from imdb_lm.report import budgets, contrasts, fidelity, rules, speed, tables, timing
from imdb_lm.report.analysis import describe_devices, machines
from imdb_lm.report.efficiency import gap_sentence


def _setting(row: pd.Series) -> str:
    return f"{row['model']}, {row['optimizer']}, lr {row['lr']:.2g}, batch {int(row['batch_size'])}"


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _mcnemar_summary(tests: list) -> str:
    """Per-seed McNemar in one clause: how many seed pairs differ significantly, and in which direction."""
    favour_a = sum(1 for _, _, t in tests if t.p_value < 0.05 and t.only_a > t.only_b)
    favour_b = sum(1 for _, _, t in tests if t.p_value < 0.05 and t.only_b > t.only_a)
    return (f"per-seed McNemar at the 5% level: {favour_a} of {len(tests)} seed pairs favour the transformer, "
            f"{favour_b} the RNN")


def comparison(analysis) -> list[str]:
    best, comp = analysis.best_family, analysis.comparison
    if comp is None or "recurrent" not in best or "transformer" not in best:
        return []
    rnn, trf = best["recurrent"], best["transformer"]
    diff = comp["difference"]
    points = diff.diff * 100
    more = "more" if points >= 0 else "less"
    sentences = [
        f"On the same {diff.n:,} test reviews (distinct by review hash), the transformer setting selected on validation ({_setting(trf)}, "
        f"{_seeds(diff.seeds_a)}) is {abs(points):.1f} points {more} accurate than the selected RNN setting "
        f"({_setting(rnn)}, {_seeds(diff.seeds_b)}): {diff.acc_a * 100:.1f}% vs {diff.acc_b * 100:.1f}% (mean over "
        f"seeds; {diff.confidence:.0%} two-level bootstrap interval of the difference, seeds resampled within each "
        f"family and reviews paired across them: {diff.low * 100:+.1f} to {diff.high * 100:+.1f} points; "
        f"{_mcnemar_summary(comp['mcnemar'])})."]
    chance = analysis.majority if analysis.majority is not None else 0.5
    for label, row in (("RNN", rnn), ("transformer", trf)):
        if row["test_acc"] <= chance + 1e-9:
            sentences.append(f"Caution: the {label} setting selected on validation accuracy ({row['model']}) "
                             f"scores at or below the majority-class share on test ({row['test_acc'] * 100:.1f}% "
                             f"vs {chance * 100:.1f}%): it did not learn the task, so this comparison says little.")
    latency = _ratio(trf["latency_ms_p50"], rnn["latency_ms_p50"])
    throughput = _ratio(rnn["test_samples_per_s"], trf["test_samples_per_s"])
    train = _ratio(trf["fit_seconds"], rnn["fit_seconds"])
    # the machines of the compared runs (a study resumed elsewhere made its other runs on others)
    compared = analysis.runs[analysis.runs["run_dir"].isin([*trf["run_dirs"], *rnn["run_dirs"]])]
    kinds = machines(compared)
    mixed = " (timings mix machines)" if kinds.nunique() > 1 else ""
    left_out = int(compared["timing_outlier"].notna().sum()) if "timing_outlier" in compared else 0
    where = (f"From the runs' own records ({timing.AGGREGATION}"
             + (f"; {left_out} timing outlier{'s' if left_out != 1 else ''} left out" if left_out else "")
             + f"), made on {describe_devices(kinds)}{mixed}:")
    sentences.append(
        f"{where} the transformer is {timing.ratio(latency)}x slower per review "
        f"({trf['latency_ms_p50']:.1f} ms vs {rnn['latency_ms_p50']:.1f} ms single-review latency), "
        f"{timing.ratio(throughput)}x slower in batched test throughput ({trf['test_samples_per_s']:.0f} vs "
        f"{rnn['test_samples_per_s']:.0f} reviews/s), and took {timing.ratio(train)}x the training time "
        f"({trf['fit_seconds']:.0f} s vs {rnn['fit_seconds']:.0f} s); it has "
        f"{timing.ratio(_ratio(trf['params'], rnn['params']))}x the parameters ({trf['params'] / 1e6:.1f}M vs "
        f"{rnn['params'] / 1e6:.1f}M).")
    benched = speed.ratios(analysis.speed, trf["model"], rnn["model"])
    if benched:
        sentences.append(
            f"Measured in {speed.describe(analysis.speed)}: the transformer ({trf['model']}) takes "
            f"{timing.ratio(benched['time / token'])}x the training time per token and "
            f"{timing.ratio(benched['latency'])}x the single-review latency of {rnn['model']}.")
    return sentences


def stability(analysis) -> list[str]:
    by_family, by_optimizer = analysis.stability_family, analysis.stability_optimizer
    pruned = int(by_family["pruned"].sum()) if not by_family.empty else 0
    note = ([f"Optuna's pruner stopped {pruned} run{'s' if pruned != 1 else ''} early on validation accuracy; "
             f"they are counted apart, not as failures."] if pruned else [])
    by_family, by_optimizer = by_family[by_family["runs"] > 0], by_optimizer[by_optimizer["runs"] > 0]
    if by_family.empty:
        return note
    parts = [f"{row['failed_share'] * 100:.0f}% of {row['family']} runs ({int(row['failed'])}/{int(row['runs'])})"
             for _, row in by_family.iterrows()]
    majority = f"{analysis.majority * 100:.1f}%" if analysis.majority is not None else "50%"
    full = analysis.fidelity.get("full", "")
    pool = "At the grid's fidelity" if fidelity.grid_only(full) else "At full fidelity"
    sentence = (f"{pool} ({full}): {' and '.join(parts)} failed: they did not finish, diverged, or "
                f"ended at or below the majority-class share of {majority}.")
    worst = by_optimizer.sort_values(["failed_share", "runs"], ascending=[False, False]).iloc[0]
    if worst["failed_share"] > 0:
        sentence += (f" The least stable optimizer was {worst['optimizer']} for {worst['family']} models "
                     f"({worst['failed_share'] * 100:.0f}% of its {int(worst['runs'])} runs failed).")
    grid = grid_divergence(analysis)
    return [sentence, *([grid] if grid and not fidelity.grid_only(full) else []), *note]


def grid_divergence(analysis) -> str | None:
    """Divergence on the grid, per family and optimizer: the promoted settings are the ones that trained
    well there, so their 0% says nothing of how often a family's runs diverge across the grid."""
    by_family, by_optimizer = analysis.grid_divergence_family, analysis.grid_divergence_optimizer
    by_family = by_family[by_family["runs"] > 0]
    if by_family.empty:
        return None
    parts = []
    for _, row in by_family.iterrows():
        label = tables.FAMILY_LABEL.get(row["family"], row["family"])
        part = f"{int(row['diverged'])} of {int(row['runs'])} {label} grid runs diverged ({row['diverged_share'] * 100:.0f}%"
        optimizers = by_optimizer[by_optimizer["family"] == row["family"]].sort_values(
            ["diverged_share", "optimizer"], ascending=[False, True])
        if row["diverged"] > 0:
            part += "; " + ", ".join(f"{o['optimizer']} {int(o['diverged'])} of {int(o['runs'])}"
                                     for _, o in optimizers.iterrows())
        part += ")"
        if row["unfinished"] > 0:
            part += f" and {int(row['unfinished'])} did not finish"
        parts.append(part)
    return (f"On the grid ({analysis.fidelity.get('grid', '')}), where every setting ran and not only those that "
            f"trained well: {' and '.join(parts)}.")


def sensitivity(analysis) -> list[str]:
    spans = []
    for model, table in analysis.sensitivity.items():
        values = table.to_numpy(float).ravel()
        values = values[~pd.isna(values)]
        if len(values) > 1:
            spans.append((values.max() - values.min(), model, values.min(), values.max(), len(values)))
    if not spans:
        return rank_agreement(analysis)
    spans.sort()
    widest, narrowest = spans[-1], spans[0]
    sentence = (f"On the grid ({analysis.fidelity.get('grid', '')}), across optimizer x learning rate (batch size "
                f"chosen on validation), test accuracy of {widest[1]} spans "
                f"{widest[2] * 100:.1f}-{widest[3] * 100:.1f}% ({widest[4]} cells, the widest range)")
    if narrowest[1] != widest[1]:
        sentence += (f" and of {narrowest[1]} {narrowest[2] * 100:.1f}-{narrowest[3] * 100:.1f}% "
                     f"({narrowest[4]} cells, the narrowest)")
    return [sentence + "."] + twin_optimizers(analysis) + rank_agreement(analysis)


TWIN_POINTS = 0.001  # optimizers this close in every cell look like one run counted twice: say they are not


def twin_optimizers(analysis) -> list[str]:
    """Two optimizers of one model whose grid cells all agree within TWIN_POINTS: stated, with the
    evidence that they are distinct runs (their test losses differ), before a reader suspects a bug."""
    out = []
    grid = fidelity.grid(analysis.runs)
    for model, table in analysis.sensitivity.items():
        names = list(table.index)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                both = table.loc[[a, b]].dropna(axis=1)
                if both.shape[1] < 3 or (both.loc[a] - both.loc[b]).abs().max() > TWIN_POINTS:
                    continue
                runs = grid[(grid["model"] == model) & grid["optimizer"].isin([a, b])]
                losses = runs.groupby("optimizer")["test_loss"].apply(lambda v: tuple(sorted(v.round(7))))
                distinct = len(losses) == 2 and losses.iloc[0] != losses.iloc[1]
                decay = runs.groupby("optimizer")["weight_decay"].first()
                out.append(f"For {model}, {a} and {b} give the same test accuracy within "
                           f"{TWIN_POINTS * 100:.1f} points (a few of the test reviews) in all {both.shape[1]} learning-rate cells"
                           + (" (distinct runs: their test losses differ)" if distinct else "")
                           + (f"; weight decay {decay[a]:g} vs {decay[b]:g}" if a in decay and b in decay else "")
                           + ": at these rates the two updates barely differ.")
    return out


def rank_agreement(analysis) -> list[str]:
    agreement = analysis.rank_agreement
    if not agreement:
        return []
    sentence = (f"How well the grid's low fidelity ({analysis.fidelity.get('grid', '')}) ranks settings: over the "
                f"{agreement['settings']} promoted settings, Spearman's rho between grid and full-fidelity validation "
                f"accuracy is {agreement['rho']:+.2f} (p = {agreement['p_value']:.3g})")
    if agreement.get("within_rho") is not None:
        negative = sum(1 for v in agreement["model_rho"].values() if v < 0)
        sentence += (f"; that pooled rho mostly reflects the differences between models: within a model (each "
                     f"model's accuracies centred on its mean, then pooled) it is {agreement['within_rho']:+.2f} "
                     f"(p = {agreement['within_p']:.2g})")
        if agreement["model_rho"]:
            sentence += (f", and negative for {negative} of the {len(agreement['model_rho'])} models with 3 or more "
                         f"promoted settings")
    if agreement["models"]:
        sentence += (f"; the grid's best promoted setting is also the best at full fidelity for "
                     f"{agreement['top_agrees']} of {agreement['models']} models")
    return [sentence + "."]


def seeds(analysis) -> list[str]:
    table = analysis.seed_variance
    table = table[table["seeds"] > 1]
    if table.empty:
        return []
    parts = [f"{row['model']} {row['test_acc'] * 100:.1f} ± {row['test_acc_std'] * 100:.1f} "
             f"over {int(row['seeds'])} seeds" for _, row in table.iterrows()]
    return [f"Seed variance of the selected settings (test accuracy, mean ± std): {'; '.join(parts)}."]


def verdict(analysis) -> list[str]:
    best, comp = analysis.best_family, analysis.comparison
    if comp is None or "recurrent" not in best or "transformer" not in best:
        return []
    rnn, trf, diff, welch = best["recurrent"], best["transformer"], comp["difference"], comp["welch"]
    latency, trf_ms = _verdict_latency(analysis, rnn, trf)
    result = rules.outcome(welch.p_value, welch.p_equivalent)
    support = (f"{_seeds(welch.seeds_a)} of the transformer and {_seeds(welch.seeds_b)} of the RNN on {diff.n:,} "
               f"test reviews; Welch p {_p(welch.p_value)}, equivalence within {rules.ACCURACY_MARGIN * 100:.1f} point "
               f"p {_p(welch.p_equivalent)}, decision rules v{rules.RULES_VERSION}; two-level bootstrap "
               f"{diff.confidence:.0%} interval {diff.low * 100:+.1f} to {diff.high * 100:+.1f}")
    points = welch.diff * 100
    if result in (rules.DIFFERENT, rules.SMALL) and points > 0:
        text = (f"Accuracy separates the families reliably here: the transformer is {points:+.1f} points "
                f"({support}). Inference time is the price: {contrasts.times(latency)} per review. Where {trf_ms:.2g} ms per "
                f"review fits the budget, accuracy decides for the transformer; where latency or CPU cost dominates, "
                f"{rnn['model']} gives up {points:.1f} points for a {contrasts.times(latency)} faster answer.")
    elif result in (rules.DIFFERENT, rules.SMALL):
        text = (f"The selected RNN is reliably more accurate ({-points:.1f} points; {support}) and {contrasts.times(latency)} "
                f"faster per review than the selected transformer: on these runs nothing favours the transformer.")
    else:
        faster = rnn["model"] if latency >= 1 else trf["model"]
        settled = ("equivalent within the margin" if result == rules.EQUIVALENT else
                   "not settled: neither a difference nor equivalence")
        text = (f"The accuracy difference ({points:+.1f} points, transformer minus RNN) is {settled} ({support}), "
                f"so inference time decides: {faster} is {contrasts.times(max(latency, 1 / latency))} faster per review.")
    return [text, _interpretability_verdict(analysis, rnn, trf)]


def _verdict_latency(analysis, rnn: pd.Series, trf: pd.Series) -> tuple[float, float]:
    """Transformer over RNN single-review latency and the transformer's ms: from the interleaved bench
    where one measured both (one machine, one process), else from the runs' records."""
    benched = speed.ratios(analysis.speed, trf["model"], rnn["model"])
    if benched:
        return benched["latency"], speed.figures(analysis.speed, trf["model"])["inference"]["latency_ms_p50"]
    return _ratio(trf["latency_ms_p50"], rnn["latency_ms_p50"]), trf["latency_ms_p50"]


def _interpretability_verdict(analysis, rnn: pd.Series, trf: pd.Series) -> str:
    gain = analysis.interpretability_difference
    if gain is None:
        return ("Interpretability was not measured for these runs, so it cannot tip this verdict; "
                "run the report with --explain N to score both models' explanations on the same reviews.")
    span = f"{gain.diff:+.3f}, 95% CI {gain.low:+.3f} to {gain.high:+.3f} over {gain.n} reviews"
    if gain.low > 0 or gain.high < 0:
        better, worse = (rnn, trf) if gain.low > 0 else (trf, rnn)
        return (f"Interpretability favours {better['model']}: its Integrated Gradients explanations are more "
                f"faithful than {worse['model']}'s (AOPC gain over random deletion, RNN minus transformer "
                f"{span}); weigh that against the accuracy and latency above.")
    return (f"Interpretability does not separate them: the faithfulness of their Integrated Gradients "
            f"explanations (AOPC gain over random deletion, RNN minus transformer {span}) is "
            f"indistinguishable, so it does not tip this verdict.")


def interpretability(analysis) -> list[str]:
    frame = analysis.interpretability
    if frame.empty:
        return []
    parts = [f"{row['model']} {row['explanation']} AOPC {row['AOPC']:.3f} vs {row['random AOPC']:.3f} "
             f"for random tokens (gain {row['gain']:+.3f})" for _, row in frame.iterrows()]
    sentences = [f"Deleting the top-attributed 1-50% tokens of the same {int(frame['reviews'].max())} test "
                 f"reviews lowers the predicted class's probability by (AOPC): {'; '.join(parts)}."]
    gain = analysis.interpretability_difference
    if gain is not None:
        sentences.append(f"Integrated Gradients' gain over random deletion, best RNN minus best transformer: "
                         f"{gain.diff:+.3f} (95% paired bootstrap CI {gain.low:+.3f} to {gain.high:+.3f}, "
                         f"{gain.n} reviews).")
    return sentences


def out_of_domain(analysis) -> list[str]:
    best = analysis.best_family
    rows = [(label, best[f]) for f, label in (("transformer", "transformer"), ("recurrent", "RNN"))
            if f in best and best[f].get("ood_seeds", 0) > 0]
    if not rows:
        return []
    runs = analysis.runs
    source = runs["ood_source"].dropna().mode()
    reviews = runs["ood_reviews"].dropna().mode()
    where = (f"{int(reviews.iloc[0]):,} " if not reviews.empty else "") + (
        f"out-of-domain reviews ({source.iloc[0]})" if not source.empty else "out-of-domain reviews")
    parts = [f"the selected {label} ({row['model']}) scores {row['ood_acc'] * 100:.1f}% over "
             f"{_seeds(int(row['ood_seeds']))}, {abs(row['test_acc'] - row['ood_acc']) * 100:.1f} points "
             f"{'below' if row['ood_acc'] <= row['test_acc'] else 'above'} its IMDB test accuracy"
             for label, row in rows]
    comp = analysis.ood_comparison
    if comp is None:
        return [f"On {where}, {'; '.join(parts)} (mean over seeds, not paired per review)."]
    diff = comp["difference"]
    points, excludes_zero = diff.diff * 100, diff.low > 0 or diff.high < 0
    better = "the transformer" if points >= 0 else "the RNN"
    judged = (f"{better} is reliably more accurate out of domain" if excludes_zero else
              "the families are not distinguishable out of domain")
    return [f"On {where}, {'; '.join(parts)} (mean over seeds).",
            f"Paired on the same {diff.n:,} out-of-domain reviews ({_seeds(diff.seeds_a)} of the transformer, "
            f"{_seeds(diff.seeds_b)} of the RNN), transformer minus RNN is {points:+.1f} points ({diff.confidence:.0%} "
            f"two-level bootstrap interval {diff.low * 100:+.1f} to {diff.high * 100:+.1f}; "
            f"{_mcnemar_summary(comp['mcnemar'])}): {judged}."]


def undertraining(analysis) -> list[str]:
    """The ablation's budget against the study's full fidelity, after the claims that rest on it."""
    sentence = budgets.undertraining_sentence(analysis.runs) if not analysis.contrasts.empty else None
    return [sentence] if sentence else []


def data_efficiency(analysis) -> list[str]:
    sentence = gap_sentence(analysis.efficiency)
    return [sentence] if sentence else []


def all_findings(analysis) -> dict[str, list[str]]:
    return {"Comparison": comparison(analysis), "Verdict": verdict(analysis),
            "Data efficiency": data_efficiency(analysis), "Out of domain": out_of_domain(analysis),
            "What makes the difference": contrasts.sentences(
                analysis.contrasts, contrasts.budget(analysis.runs) if not analysis.contrasts.empty else None)
            + undertraining(analysis),
            "Interpretability": interpretability(analysis), "Stability": stability(analysis),
            "Sensitivity": sensitivity(analysis), "Seeds": seeds(analysis)}


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"= {value:.3f}"
