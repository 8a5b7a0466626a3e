"""What makes the difference: pretraining, architecture at matched size, lexical pretraining, size (against
bigru, and against bigru_wordpiece: the same tokenizer and width) and the bag-of-n-grams floor, each a
contrast between two models on the same test reviews.

Runs come from the ablation (`stage: ablation`: the new presets plus bigru and transformer references
at the same budget); without ablation runs, from every selectable run. Per model the setting is chosen
on validation; a contrast compares every seed of both and gives the ratios of training time per epoch, of
time per training token and of single-review latency.

The verdicts follow the decision rules in force (rules.py, docs/comparing.md): Welch's t on the per-seed
test accuracies with Holm's adjustment over the contrasts of the table, and TOST within 1.0 point. The
two-level bootstrap interval (statistics.py) stays beside them, unadjusted; the verdict of the rule it
replaced (v2: the bootstrap p after Holm) is shown where it differs.
"""

from __future__ import annotations

import pandas as pd

from imdb_lm.report import fidelity, rules, speed, statistics, tables

# (what the contrast isolates, model A, model B): the difference is A - B
NAMED = [("pretraining", "transformer", "transformer_scratch"),
         ("architecture at matched size", "transformer_scratch", "bigru_large"),
         ("lexical pretraining", "bigru_minilm_emb", "bigru_wordpiece"),
         ("size", "bigru_large", "bigru"),
         # the cleaner size contrast: the same tokenizer, embedding width and cell, only the recurrent layers grow
         ("size at the same tokenizer", "bigru_large", "bigru_wordpiece")]
FLOOR = "bow"
FROZEN = "model.freeze_embeddings"
FROZEN_SUFFIX = "_frozen"  # the preset bigru_minilm_emb_frozen is bigru_minilm_emb with frozen embeddings


def variant(row: pd.Series) -> str:
    """The model as the contrasts name it: frozen pretrained embeddings make bigru_minilm_emb the preset
    bigru_minilm_emb_frozen, whether the run used that preset or `model.freeze_embeddings=true`."""
    model, frozen = str(row["model"]), row.get(FROZEN)
    frozen = frozen is True or str(frozen).lower() == "true"
    return f"{model}{FROZEN_SUFFIX}" if frozen and not model.endswith(FROZEN_SUFFIX) else model


def base(model: str) -> str:
    """The preset whose contrasts a variant takes part in: "bigru_minilm_emb_frozen" -> "bigru_minilm_emb"."""
    return model.removesuffix(FROZEN_SUFFIX)


def pool(frame: pd.DataFrame) -> pd.DataFrame:
    ablation = frame[frame["stage"] == fidelity.ABLATION] if "stage" in frame else frame.iloc[:0]
    runs = ablation if not ablation.empty else fidelity.full(frame)
    return runs.assign(model=[variant(r) for _, r in runs.iterrows()]) if not runs.empty else runs


def selected(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """model (variant) -> its setting chosen on validation, with every seed's run folder."""
    table = tables.settings(pool(frame))
    if table.empty:
        return {}
    return {row["model"]: row for _, row in tables.select(table, ["model"]).iterrows()}


def models_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Each contrasted model's setting chosen on validation, the rates it was chosen among (each with its
    validation accuracy on the seeds every rate has), and its test accuracy over the chosen setting's
    seeds: the absolute numbers behind the differences, and the evidence that every model was tuned."""
    runs = pool(frame)
    table = tables.settings(runs)
    if table.empty:
        return pd.DataFrame()
    rows = []
    for _, chosen in tables.select(table, ["model"]).sort_values("test_acc", ascending=False).iterrows():
        finished = table[table["model"] == chosen["model"]].set_index("lr")["selection_val"]
        tried = sorted(set(runs.loc[runs["model"] == chosen["model"], "lr"].dropna()))
        rows.append({
            "model": chosen["model"], "optimizer": chosen["optimizer"], "rate": f"{chosen['lr']:.1e}",
            # a rate none of whose runs finished (diverged, failed) was tried too: the choice did not skip it
            "rates tried (val %)": ", ".join(f"{lr:.1e} ({finished[lr] * 100:.1f})" if lr in finished.index
                                             else f"{lr:.1e} ({_status(runs, chosen['model'], lr)})" for lr in tried),
            "seeds": int(chosen["seeds"]),
            "test % (mean ± std)": f"{chosen['test_acc'] * 100:.1f}"
                                   + (f" ± {chosen['test_acc_std'] * 100:.1f}" if chosen["seeds"] > 1 else ""),
            "params (M)": f"{chosen['params'] / 1e6:.2f}" if pd.notna(chosen["params"]) else "-"})
    return pd.DataFrame(rows)


def _status(runs: pd.DataFrame, model: str, lr: float) -> str:
    statuses = runs.loc[(runs["model"] == model) & (runs["lr"] == lr), "status"].dropna()
    return str(statuses.iloc[0]) if not statuses.empty else "did not finish"


def pairs(models: dict[str, pd.Series]) -> list[tuple[str, str, str]]:
    """The contrasts whose two models are present, the floor last (every model vs bow)."""
    def present(name: str) -> list[str]:  # a model and its frozen variant both stand for it
        return [m for m in models if base(m) == name]

    out = [(label, a, b) for label, name_a, name_b in NAMED for a in present(name_a) for b in present(name_b)]
    floor = present(FLOOR)
    out += [("the floor", model, bow) for bow in floor for model in sorted(models) if model not in floor]
    return out


def missing(frame: pd.DataFrame) -> list[str]:
    """The named contrasts (and the floor) that cannot be drawn yet, each with the models it lacks, so that
    a partly run ablation says what it does not answer instead of leaving a row out silently."""
    models = selected(frame)
    have = {base(m) for m in models}
    out = [f"{label} ({', '.join(m for m in (a, b) if m not in have)} not run)"
           for label, a, b in NAMED if a not in have or b not in have]
    return out + ([f"the floor ({FLOOR} not run)"] if FLOOR not in have else [])


def times(value: float) -> str:
    """A ratio to two significant digits, never in exponent form: 0.93x, 14x, 420x."""
    return "-" if pd.isna(value) else f"{float(f'{value:.2g}'):g}x"


def _ratio(a, b) -> float:
    return float(a) / float(b) if b and not pd.isna(a) and not pd.isna(b) else float("nan")


def contrast_table(frame: pd.DataFrame, resamples: int = 10_000, seed: int = 0,
                   bench: dict | None = None) -> pd.DataFrame:
    """One row per contrast; the time-per-token and latency ratios from `bench` (report/speed.py) where it
    measured both models, else from the runs' records (the `speed from` column says which)."""
    models = selected(frame)
    rows = []
    for label, a, b in pairs(models):
        comp = tables.seed_comparison(frame, list(models[a]["run_dirs"]), list(models[b]["run_dirs"]), resamples, seed)
        if comp is None:
            continue
        d = comp["difference"]
        welch = comp["welch"]
        rows.append({"contrast": label, "A": a, "B": b, "seeds A": d.seeds_a, "seeds B": d.seeds_b,
                     "test reviews": d.n, "A - B (points)": welch.diff * 100, "low": d.low * 100, "high": d.high * 100,
                     "p": welch.p_value, "p equivalent": welch.p_equivalent, "detectable": welch.detectable * 100,
                     "bootstrap p": d.p_value, "bootstrap p floor": 2 / (d.resamples + 1),
                     "interval excludes 0": d.reliable,
                     "time / epoch A/B": _ratio(models[a]["epoch_seconds"], models[b]["epoch_seconds"]),
                     "time / token A/B": _ratio(models[b]["train_tokens_per_s"], models[a]["train_tokens_per_s"]),
                     "latency A/B": _ratio(models[a]["latency_ms_p50"], models[b]["latency_ms_p50"]),
                     "time / token rounds": [], "speed from": "records", "speed device": None,
                     "speed scope": None})
        benched = speed.ratios(bench, a, b)
        if benched:
            rows[-1].update({"time / token A/B": benched["time / token"], "latency A/B": benched["latency"],
                             "time / token rounds": benched["time / token rounds"], "speed from": "bench",
                             "speed device": bench.get("device"), "speed scope": speed.scope(bench)})
    table = pd.DataFrame(rows)
    if not table.empty:
        table["p (Holm)"] = statistics.holm(table["p"])
        table["verdict"] = [rules.outcome(p, q) for p, q in zip(table["p (Holm)"], table["p equivalent"], strict=True)]
        table["reliable"] = table["verdict"].isin([rules.DIFFERENT, rules.SMALL])
        # the published rule (v2): the bootstrap's p after Holm, with its interval excluding zero
        table["bootstrap p (Holm)"] = statistics.holm(table["bootstrap p"])
        table[f"verdict (rules v{rules.PUBLISHED})"] = [
            rules.v2_accuracy(x, p) for x, p in zip(table["interval excludes 0"], table["bootstrap p (Holm)"], strict=True)]
    return table


def budget(frame: pd.DataFrame) -> str:
    """The contrasted runs' training budget (fidelity.describe), which the accuracy claim is conditional on."""
    return fidelity.describe(pool(frame))


def sentences(table: pd.DataFrame, budget: str | None = None) -> list[str]:
    """One sentence per named contrast, then the two course claims (`claims`)."""
    if table.empty:
        return []
    out = []
    for _, row in table[table["contrast"] != "the floor"].iterrows():
        verdict = rules.accuracy_words(row["verdict"], row["A - B (points)"])
        out.append(f"{row['contrast'].capitalize()}: {row['A']} minus {row['B']} is {row['A - B (points)']:+.1f} "
                   f"points of test accuracy over {row['seeds A']} vs {row['seeds B']} seeds (Welch p {_p(row['p (Holm)'])} "
                   f"after Holm's adjustment for {len(table)} contrasts, equivalence p {_p(row['p equivalent'])}; "
                   f"two-level bootstrap interval {row['low']:+.1f} to {row['high']:+.1f}): {verdict}"
                   + _changed(row) + ".")
    return out + claims(table, budget)


def claims(table: pd.DataFrame, budget: str | None = None) -> list[str]:
    """Whether the two course claims hold, where the architecture-at-matched-size contrast exists (else why
    they are not tested); `budget`: the runs' training budget (`budget`)."""
    if table.empty:
        return []
    out = []
    matched = table[table["contrast"] == "architecture at matched size"]
    if matched.empty:
        out.append("The two course claims (comparable accuracy at equal parameter counts; RNNs slower to train) "
                   "rest on the architecture-at-matched-size contrast, transformer_scratch vs bigru_large, which "
                   "has no runs of both yet: neither claim is tested here.")
    else:
        row = matched.iloc[0]
        trained = f"; both from random weights, at {budget}" if budget else ""
        out.append(f"The claim that at equal parameter counts RNNs and transformers perform comparably "
                   f"{rules.comparable_claim(row['verdict'])} on this data ({row['A']} minus {row['B']}: "
                   f"{row['A - B (points)']:+.1f} points over {row['seeds A']} vs {row['seeds B']} seeds, Welch p "
                   f"{_p(row['p (Holm)'])} after Holm, equivalence within {rules.ACCURACY_MARGIN * 100:.1f} point "
                   f"p {_p(row['p equivalent'])}; with these seeds a difference of {row['detectable']:.1f} points "
                   f"would be found 80% of the time{trained}).")
        if not pd.isna(row["time / token A/B"]):
            out += _slower_to_train(row)
    return out


def _slower_to_train(row: pd.Series) -> list[str]:
    """The second claim, from B (the RNN) over A (the transformer) in time per training token: the rules'
    t test and TOST on the log ratio of the bench's interleaved rounds (records alone give one ratio: not
    settled)."""
    rounds = [1 / r for r in row["time / token rounds"]] or [1 / row["time / token A/B"]]
    test = statistics.ratio_test(rounds, rules.SPEED_MARGIN)
    holds = rules.slower_claim(rules.outcome(test.p_value, test.p_equivalent), test.ratio)
    old = rules.v2_slower_claim(rounds if row["speed from"] == "bench" else [])
    spread = (f", {len(rounds)} interleaved rounds: {times(min(rounds))} to {times(max(rounds))}, t test p "
              f"{_p(test.p_value)}, equivalence within {rules.SPEED_MARGIN:.0%} p {_p(test.p_equivalent)}"
              if len(rounds) > 1 else "")
    scope = f", {row['speed scope']}" if row.get("speed scope") else ""
    source = (f"from one interleaved bench at an equal token budget on {row['speed device'] or 'one machine'}{scope}"
              f"{spread}"
              if row["speed from"] == "bench" else "from the runs' own throughput records, not an interleaved bench")
    gist = next(g for g in ("holds", "does not hold", "is not settled") if holds.startswith(g))
    changed = f"; under the published rule v{rules.PUBLISHED} it read \"{old}\"" if old not in (gist, "not measured") else ""
    out = [f"The claim that RNNs are slower to train {holds} here: {row['B']} takes {times(test.ratio)} the "
           f"time per training token of {row['A']} ({source}{changed})."]
    if str(row["speed device"] or "").startswith("cpu"):
        out.append("That was measured on a CPU, where a transformer's parallelism over positions has only a few cores "
                   "to use; the claim's reason (an RNN's steps run one after another) weighs most on a GPU, which "
                   "this measurement does not cover.")
    return out


def _changed(row: pd.Series) -> str:
    """Where the verdict of the published rule differs from the one in force, say so."""
    old = row.get(f"verdict (rules v{rules.PUBLISHED})")
    now_reliable = row["verdict"] in (rules.DIFFERENT, rules.SMALL)
    if old is None or (old == "reliable") == now_reliable:
        return ""
    return f"; under the published rule v{rules.PUBLISHED} (bootstrap p after Holm) it read \"{old}\""


def _p(value: float, floor: float = 0.0) -> str:
    """A p-value as a sentence gives it; at a method's resolution floor (a bootstrap's smallest p) it is a bound."""
    if floor and value <= floor * (1 + 1e-9):
        return f"<= {value:.3g}"
    return "< 0.001" if value < 0.001 else f"= {value:.3f}"


def display(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty:
        return table
    return pd.DataFrame({
        "contrast": table["contrast"], "A": table["A"], "B": table["B"],
        "seeds A / B": [f"{a} / {b}" for a, b in zip(table["seeds A"], table["seeds B"], strict=True)],
        "A - B (points)": [f"{v:+.1f}" for v in table["A - B (points)"]],
        "bootstrap 95% CI": [f"{lo:+.1f} to {hi:+.1f}" for lo, hi in zip(table["low"], table["high"], strict=True)],
        "Welch p (Holm)": [_p(v).lstrip("= ") for v in table["p (Holm)"]],
        "TOST p (±1 pt)": [_p(v).lstrip("= ") for v in table["p equivalent"]],
        "detectable (points)": [f"{v:.1f}" for v in table["detectable"]],
        f"verdict (rules v{rules.RULES_VERSION})": table["verdict"],
        f"rules v{rules.PUBLISHED} (bootstrap p, Holm)": [
            f"{v} ({_p(p, f * len(table)).lstrip('= ')})" for v, p, f in
            zip(table[f"verdict (rules v{rules.PUBLISHED})"], table["bootstrap p (Holm)"], table["bootstrap p floor"],
                strict=True)],
        "time / epoch A/B": [times(v) for v in table["time / epoch A/B"]],
        "time / token A/B": [times(v) + (f" ({times(min(r))}-{times(max(r))})" if len(r) > 1 else "")
                             for v, r in zip(table["time / token A/B"], table["time / token rounds"], strict=True)],
        "latency A/B": [times(v) for v in table["latency A/B"]], "speed from": table["speed from"]})
