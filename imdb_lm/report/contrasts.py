"""What makes the difference: pretraining, architecture at matched size, lexical pretraining, size (against
bigru, and against bigru_wordpiece: the same tokenizer and width) and the bag-of-n-grams floor, each a
contrast between two models on the same test reviews.

Runs come from the ablation (`stage: ablation`: the new presets plus bigru and transformer references
at the same budget); without ablation runs, from every selectable run. Per model the setting is chosen
on validation; a contrast pairs every seed of both (the two-level bootstrap of statistics.py) and
gives the ratios of training time per epoch, of time per training token and of single-review latency.
The intervals are 95% and unadjusted; whether a difference is called reliable is decided on the
bootstrap p-values after Holm's adjustment for the number of contrasts in the table (the table gives both).
"""

from __future__ import annotations

import pandas as pd

from imdb_lm.report import fidelity, speed, statistics, tables

ALPHA = 0.05
SAME_SPEED = 0.10  # time-per-token ratios within 10% of 1 are not called slower or faster

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
        rows.append({"contrast": label, "A": a, "B": b, "seeds A": d.seeds_a, "seeds B": d.seeds_b,
                     "test reviews": d.n, "A - B (points)": d.diff * 100, "low": d.low * 100, "high": d.high * 100,
                     "p": d.p_value, "interval excludes 0": d.reliable,
                     "time / epoch A/B": _ratio(models[a]["epoch_seconds"], models[b]["epoch_seconds"]),
                     "time / token A/B": _ratio(models[b]["train_tokens_per_s"], models[a]["train_tokens_per_s"]),
                     "latency A/B": _ratio(models[a]["latency_ms_p50"], models[b]["latency_ms_p50"]),
                     "time / token rounds": [], "speed from": "records", "speed device": None})
        benched = speed.ratios(bench, a, b)
        if benched:
            rows[-1].update({"time / token A/B": benched["time / token"], "latency A/B": benched["latency"],
                             "time / token rounds": benched["time / token rounds"], "speed from": "bench",
                             "speed device": bench.get("device")})
    table = pd.DataFrame(rows)
    if not table.empty:
        table["p (Holm)"] = statistics.holm(table["p"])
        table["reliable"] = table["interval excludes 0"] & (table["p (Holm)"] < ALPHA)
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
        verdict = ("reliably " + ("higher" if row["low"] > 0 else "lower") if row["reliable"]
                   else "not distinguishable from zero after the adjustment (the unadjusted interval alone "
                        "excludes zero)" if row["interval excludes 0"]
                   else "not distinguishable from zero")
        out.append(f"{row['contrast'].capitalize()}: {row['A']} minus {row['B']} is {row['A - B (points)']:+.1f} "
                   f"points of test accuracy (95% unadjusted interval {row['low']:+.1f} to {row['high']:+.1f}, "
                   f"p {_p(row['p (Holm)'])} after Holm's adjustment for {len(table)} contrasts, "
                   f"{row['seeds A']} vs {row['seeds B']} seeds): {verdict}.")
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
        # "not distinguishable" is not "equal": the interval says how large a gap the data still allow
        bound = max(abs(row["low"]), abs(row["high"]))
        holds = (f"is not contradicted on this data: the difference is not distinguishable from zero, and the "
                 f"interval still allows a gap as large as {bound:.1f} points" if not row["reliable"] else
                 f"does not hold on this data: {row['A'] if row['low'] > 0 else row['B']} is reliably more accurate")
        trained = f"; both from random weights, at {budget}" if budget else ""
        out.append(f"The claim that at equal parameter counts RNNs and transformers perform comparably {holds} "
                   f"({row['A']} minus {row['B']}: {row['A - B (points)']:+.1f} points, interval {row['low']:+.1f} "
                   f"to {row['high']:+.1f}, Holm-adjusted p {_p(row['p (Holm)'])}{trained}).")
        if not pd.isna(row["time / token A/B"]):
            out += _slower_to_train(row)
    return out


def _slower_to_train(row: pd.Series) -> list[str]:
    """The second claim, from B (the RNN) over A (the transformer) in time per training token. Where the bench
    timed them in interleaved rounds, it is settled only when every round is beyond the 10% margin on one
    side, or none beyond it on the slower side (not slower): a median alone can sit on the margin by the noise of one
    shared machine."""
    rnn_over_transformer = 1 / row["time / token A/B"]
    rounds = [1 / r for r in row["time / token rounds"]] or [rnn_over_transformer]
    spread = f", {len(rounds)} interleaved rounds: {min(rounds):.2f}x to {max(rounds):.2f}x" if len(rounds) > 1 else ""
    holds = ("holds" if min(rounds) > 1 + SAME_SPEED else "does not hold" if max(rounds) < 1 - SAME_SPEED else
             # no measurement beyond the noise margin on the slower side: not slower
             f"does not hold (no measurement has the RNN more than {SAME_SPEED:.0%} slower)"
             if max(rounds) <= 1 + SAME_SPEED else
             f"is not settled (the measurements straddle the {SAME_SPEED:.0%} margin of equal speed, "
             "the noise of timings on shared machines)")
    source = (f"from one interleaved bench at an equal token budget on {row['speed device'] or 'one machine'}{spread}"
              if row["speed from"] == "bench" else "from the runs' own throughput records, not an interleaved bench")
    out = [f"The claim that RNNs are slower to train {holds} here: {row['B']} takes {rnn_over_transformer:.2f}x the "
           f"time per training token of {row['A']} ({source})."]
    if str(row["speed device"] or "").startswith("cpu"):
        out.append("That was measured on a CPU, where a transformer's parallelism over positions has only a few cores "
                   "to use; the claim's reason (an RNN's steps run one after another) weighs most on a GPU, which "
                   "this measurement does not cover.")
    return out


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"= {value:.3f}"


def display(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty:
        return table
    return pd.DataFrame({
        "contrast": table["contrast"], "A": table["A"], "B": table["B"],
        "seeds A / B": [f"{a} / {b}" for a, b in zip(table["seeds A"], table["seeds B"], strict=True)],
        "A - B (points)": [f"{v:+.1f}" for v in table["A - B (points)"]],
        "95% CI (unadjusted)": [f"{lo:+.1f} to {hi:+.1f}" for lo, hi in zip(table["low"], table["high"], strict=True)],
        "p (Holm)": [_p(v).lstrip("= ") for v in table["p (Holm)"]],
        "reliable (Holm)": ["yes" if r else "no" for r in table["reliable"]],
        "time / epoch A/B": [f"{v:.2f}x" for v in table["time / epoch A/B"]],
        "time / token A/B": [f"{v:.2f}x" + (f" ({min(r):.2f}-{max(r):.2f})" if len(r) > 1 else "")
                             for v, r in zip(table["time / token A/B"], table["time / token rounds"], strict=True)],
        "latency A/B": [f"{v:.2f}x" for v in table["latency A/B"]], "speed from": table["speed from"]})
