""""What makes the difference" on constructed ablation runs with known differences (issue: pretraining,
architecture and size, tested on the same split)."""

from __future__ import annotations

import json
from statistics import mean

import pytest

from imdb_lm.report import analyze, contrasts, rules, statistics, write_report
from tests.study_records import RECIPE_LR, correct_at, write_run
from tests.study_records import benched_figures as _benched

# model -> (family, test accuracy, seconds per epoch, training tokens per second, latency ms)
MODELS = {"transformer": ("transformer", 0.90, 200.0, 4000.0, 20.0),
          "transformer_scratch": ("transformer", 0.80, 200.0, 4000.0, 20.0),
          "bigru_large": ("recurrent", 0.80, 400.0, 2000.0, 10.0),
          "bigru": ("recurrent", 0.85, 40.0, 20000.0, 2.0),
          "bigru_wordpiece": ("recurrent", 0.82, 50.0, 16000.0, 2.0),
          "bow": ("bow", 0.86, 5.0, 400000.0, 0.5)}


def write_ablation(root):
    # every model's seeds spread by -1, 0, +1 point around its accuracy: the mean differences are exact, and
    # the seed-level test has a spread to test against
    for seed, offset, spread in ((1, 0, -0.01), (2, 11, 0.0), (3, 23, 0.01)):
        for model, (family, acc, epoch, tokens, latency) in MODELS.items():
            write_run(root, f"{model}-{seed}", model=model, family=family, seed=seed, val_acc=acc, stage="ablation",
                      correct=correct_at(acc + spread, offset), fit_seconds=epoch * 5, tokens_per_s=tokens,
                      latency=latency)
        # both embedding variants, as the ablation runs them: the frozen one is its own preset
        for model, frozen, acc in (("bigru_minilm_emb_frozen", True, 0.84), ("bigru_minilm_emb", False, 0.86)):
            write_run(root, f"emb-{frozen}-{seed}", model=model, family="recurrent", seed=seed,
                      val_acc=acc, stage="ablation", correct=correct_at(acc + spread, offset), fit_seconds=250,
                      hparams={"model.freeze_embeddings": frozen})
    # a seed-stage study run with a better validation score: not part of the ablation contrasts
    write_run(root, "study-bigru", model="bigru", family="recurrent", seed=1, val_acc=0.99, stage="seed",
              correct=correct_at(0.5))
    return root


@pytest.fixture(scope="module")
def ablation_runs(tmp_path_factory):
    return write_ablation(tmp_path_factory.mktemp("ablation"))


@pytest.fixture(scope="module")
def ablation(ablation_runs, tmp_path_factory):
    analysis = analyze([ablation_runs], resamples=2000)
    text = write_report(analysis, tmp_path_factory.mktemp("ablation_report"))["markdown"].read_text()
    return analysis, text


def test_each_contrast_present_is_a_row_with_its_known_difference(ablation):
    analysis, _ = ablation
    table = analysis.contrasts.set_index(["A", "B"])
    expected = {("transformer", "transformer_scratch"): 10.0, ("transformer_scratch", "bigru_large"): 0.0,
                ("bigru_minilm_emb_frozen", "bigru_wordpiece"): 2.0, ("bigru_minilm_emb", "bigru_wordpiece"): 4.0,
                ("bigru_large", "bigru"): -5.0, ("bigru_large", "bigru_wordpiece"): -2.0, ("transformer", "bow"): 4.0, ("bigru", "bow"): -1.0}
    for pair, diff in expected.items():
        assert table.loc[pair, "A - B (points)"] == pytest.approx(diff), pair
        assert (table.loc[pair, "seeds A"], table.loc[pair, "seeds B"], table.loc[pair, "test reviews"]) == (3, 3, 200)
    assert len(table) == 5 + 2 + 6  # named contrasts (the embedding one twice), and every other model vs bow
    row = table.loc[("transformer_scratch", "bigru_large")]
    assert row["low"] < 0 < row["high"] and not row["reliable"]
    assert table.loc[("transformer", "transformer_scratch"), "reliable"]
    assert row["time / epoch A/B"] == pytest.approx(0.5) and row["latency A/B"] == pytest.approx(2.0)
    assert row["time / token A/B"] == pytest.approx(0.5)  # 1/4000 s per token vs 1/2000
    # rules v3: Welch's p after Holm over all 13 rows, and TOST within 1 point
    adjusted = statistics.holm(table["p"])
    assert list(table["p (Holm)"]) == pytest.approx(list(adjusted))
    assert list(table["reliable"]) == [rules.outcome(p, q) in (rules.DIFFERENT, rules.SMALL)
                                       for p, q in zip(adjusted, table["p equivalent"], strict=True)]
    # +-1 point seeds: a difference of 0 is not shown to lie within 1 point (3 seeds), 10 points is certain
    assert row["verdict"] == rules.NOT_SETTLED
    assert row["p"] == pytest.approx(1.0) and row["p equivalent"] > 0.05
    assert table.loc[("transformer", "transformer_scratch"), "verdict"] == rules.DIFFERENT
    # the published rule v2 beside it: no bootstrap resample at or below zero gives p = 2/2001 at 2,000
    # resamples, times 13 for the smallest of 13
    assert table.loc[("transformer", "transformer_scratch"), "bootstrap p (Holm)"] == pytest.approx(13 * 2 / 2001)
    assert table.loc[("transformer", "transformer_scratch"), "verdict (rules v2)"] == "reliable"


def test_the_claims_contrasts_are_the_differences_of_the_seed_means_in_the_records(ablation, ablation_runs):
    """Recomputed without the report's code: each model's test accuracy per seed, as its record holds it,
    and the difference of the two seed means, for the contrasts the course claims rest on."""
    per_seed: dict[str, dict[int, float]] = {}
    for path in ablation_runs.rglob("metrics.json"):
        record = json.loads(path.read_text())
        if record.get("stage") == "ablation" and not record["hparams"].get(contrasts.FROZEN):
            per_seed.setdefault(record["model"]["name"], {})[record["seed"]] = record["metrics"]["test"]["acc"]
    table = ablation[0].contrasts.set_index(["A", "B"])
    for a, b in (("transformer_scratch", "bigru_large"), ("transformer", "transformer_scratch")):
        row = table.loc[(a, b)]
        assert sorted(per_seed[a]) == sorted(per_seed[b]) == [1, 2, 3]
        assert (row["seeds A"], row["seeds B"]) == (len(per_seed[a]), len(per_seed[b]))
        expected = 100 * (mean(per_seed[a].values()) - mean(per_seed[b].values()))
        assert row["A - B (points)"] == pytest.approx(expected, abs=1e-9)


def test_the_section_labels_its_intervals_and_states_both_claims(ablation):
    _, text = ablation
    assert "## What makes the difference" in text and "Holm's adjustment for all 13 contrasts" in text
    assert ("- What makes the difference: Pretraining: transformer minus transformer_scratch is +10.0 points of test "
            "accuracy over 3 vs 3 seeds (Welch p = 0.003 after Holm's adjustment for 13 contrasts, equivalence "
            "p = 1.000; two-level bootstrap interval") in text
    pretraining = next(line for line in text.splitlines() if "Pretraining: transformer minus" in line)
    assert pretraining.endswith("): reliably higher.")
    claim = next(line for line in text.splitlines() if "The claim that at equal parameter counts" in line)
    assert ("The claim that at equal parameter counts RNNs and transformers perform comparably is not settled on "
            "this data (transformer_scratch minus bigru_large: +0.0 points over 3 vs 3 seeds, Welch p = 1.000 after "
            "Holm, equivalence within 1.0 point p = 0.144; with these seeds a difference of 3.0 points would be "
            "found 80% of the time") in claim
    assert claim.endswith("; both from random weights, at 20,000 train reviews, 5 epochs).")
    # one throughput ratio from the records is no test: not settled, and the sentence says where it came from
    assert ("The claim that RNNs are slower to train is not settled (neither different nor equal within 10%) here: "
            "bigru_large takes 2x the time per training token of transformer_scratch (from the runs' own throughput "
            "records, not an interleaved bench).") in text


def test_only_models_present_get_a_row(tmp_path):
    for seed in (1, 2):
        write_run(tmp_path, f"bigru-{seed}", model="bigru", family="recurrent", seed=seed, val_acc=0.8,
                  stage="ablation", correct=correct_at(0.8))
        write_run(tmp_path, f"trf-{seed}", model="transformer", family="transformer", seed=seed, val_acc=0.9,
                  stage="ablation", correct=correct_at(0.9))
    analysis = analyze([tmp_path], resamples=500)
    assert analysis.contrasts.empty
    assert "What makes the difference" not in write_report(analysis, tmp_path / "r")["markdown"].read_text()


def test_speed_ratios_come_from_the_interleaved_bench_where_it_measured_both(tmp_path):
    root = write_ablation(tmp_path / "runs")
    # the bench disagrees with the records: bigru_large 3x the time per token of transformer_scratch
    speed = {"created_at": "2026-01-01T00:00:00+00:00", "command": "python -m imdb_lm.bench across_models=true",
             "env": {"device": "cpu: constructed"}, "models": {},
             "across_models": {"transformer_scratch": _benched(100.0, 8.0, rounds=[100.0, 100.0, 100.0]),
                               "bigru_large": _benched(300.0, 2.0, rounds=[300.0, 250.0, 350.0])}}
    (root / "speed.json").write_text(json.dumps(speed))
    analysis = analyze([root], resamples=500)
    table = analysis.contrasts.set_index(["A", "B"])
    matched = table.loc[("transformer_scratch", "bigru_large")]
    assert matched["speed from"] == "bench"
    assert matched["time / token A/B"] == pytest.approx(1 / 3) and matched["latency A/B"] == pytest.approx(4.0)
    unbenched = table.loc[("transformer", "transformer_scratch")]  # transformer was not benched: records
    assert unbenched["speed from"] == "records" and unbenched["time / token A/B"] == pytest.approx(1.0)
    text = write_report(analysis, tmp_path / "report")["markdown"].read_text()
    assert ("The claim that RNNs are slower to train holds here: bigru_large takes 3x the time per training "
            "token of transformer_scratch (from one interleaved bench at an equal token budget on cpu: constructed, "
            "128 tokens, batch 16, 32-true, 3 interleaved rounds: 2.5x to 3.5x, t test p = 0.008, equivalence within 10% p = 0.995).") in text
    assert "That was measured on a CPU, where a transformer's parallelism over positions has only a few cores" in text
    assert "one interleaved bench (" in text and "the same 256 training reviews for every model" in text


def test_a_verdict_the_published_rule_read_otherwise_is_said_so(ablation):
    analysis, text = ablation
    line = next(line for line in text.splitlines() if "Size: bigru_large minus bigru is" in line)
    assert line.endswith('): reliably lower; under the published rule v2 (bootstrap p after Holm) it read '
                         '"not distinguishable".')
    line = next(line for line in text.splitlines() if "transformer_scratch minus bigru_large is" in line)
    assert line.endswith("): not settled (neither a difference nor equivalence within 1.0 point).")
    assert "rules v2 (bootstrap p, Holm)" in text and "verdict (rules v3)" in text


@pytest.mark.parametrize("rounds, verdict", [
    # the RNN over the transformer per round (the bench's A/B rounds are their inverses)
    ([2.0, 1.25, 2.5], "is not settled (neither different nor equal within 10%) here: bigru_large takes 1.8x"),
    ([1.31, 1.28, 1.35, 1.30, 1.33, 1.29, 1.32], "holds here: bigru_large takes 1.3x"),
    # consistently 9% slower: slower, by less than the margin (v2 read this "does not hold")
    ([1.088, 1.092, 1.090, 1.089, 1.091, 1.090, 1.087], "holds, by less than the 10% margin here: bigru_large takes 1.1x"),
    ([0.80, 0.83, 0.77], "does not hold (the RNN is reliably faster) here: bigru_large takes 0.8x"),
    ([0.99, 1.01, 1.00, 1.02, 0.98, 1.00, 1.01], "does not hold (equal speed within 10%) here: bigru_large takes 1x"),
    ([1.5], "is not settled (neither different nor equal within 10%) here: bigru_large takes 1.5x")])
def test_slower_to_train_follows_the_written_rule(rounds, verdict):
    import pandas as pd

    from imdb_lm.report.contrasts import sentences
    row = {"contrast": "architecture at matched size", "A": "transformer_scratch", "B": "bigru_large",
           "A - B (points)": 0.0, "low": -1.0, "high": 1.0, "p (Holm)": 1.0, "p equivalent": 0.5, "detectable": 2.0,
           "verdict": rules.NOT_SETTLED, "interval excludes 0": False, "reliable": False, "seeds A": 3, "seeds B": 3,
           "time / token A/B": 1 / rounds[0], "time / token rounds": [1 / r for r in rounds] if len(rounds) > 1 else [],
           "speed from": "bench", "speed device": "gpu: constructed"}
    said = sentences(pd.DataFrame([row]))
    (claim,) = [s for s in said if s.startswith("The claim that RNNs are slower")]
    assert f"The claim that RNNs are slower to train {verdict} the time per training token" in claim
    if len(rounds) > 1:
        assert f"{len(rounds)} interleaved rounds: {contrasts.times(min(rounds))} to {contrasts.times(max(rounds))}" in claim
    assert not any("measured on a CPU" in s for s in said)  # the caveat is for CPU benches only


def test_an_ablation_at_a_step_budget_states_the_budget_not_epochs(tmp_path):
    from imdb_lm.report import contrasts, fidelity
    for model, acc in (("bow", 0.86), ("bigru", 0.85)):
        run = write_run(tmp_path, model, model=model, family="recurrent", val_acc=acc, correct=correct_at(acc),
                        stage="ablation", batch_size=32, max_epochs=100, epochs_run=1)
        record = json.loads((run / "metrics.json").read_text())
        record["config"]["trainer"] = {"max_steps": 600}
        (run / "metrics.json").write_text(json.dumps(record))
    runs = analyze([tmp_path], resamples=200).runs
    assert fidelity.describe(contrasts.pool(runs)) == ("20,000 train reviews, 600 optimizer steps of 32 reviews "
                                                       "(0.96 epoch)")


def test_a_partly_run_ablation_names_the_contrasts_it_cannot_draw_yet(tmp_path):
    # the small presets finish first: the lexical-pretraining contrast and the floor, nothing MiniLM-sized
    for seed, offset in ((1, 0), (2, 11)):
        for model, acc in (("bow", 0.86), ("bigru", 0.85), ("bigru_wordpiece", 0.82)):
            write_run(tmp_path, f"{model}-{seed}", model=model, family="recurrent", seed=seed, val_acc=acc,
                      stage="ablation", correct=correct_at(acc, offset))
        write_run(tmp_path, f"emb-{seed}", model="bigru_minilm_emb", family="recurrent", seed=seed, val_acc=0.86,
                  stage="ablation", correct=correct_at(0.86, offset), hparams={"model.freeze_embeddings": False})
    analysis = analyze([tmp_path], resamples=500)
    assert set(analysis.contrasts["contrast"]) == {"lexical pretraining", "the floor"}
    text = write_report(analysis, tmp_path / "report")["markdown"].read_text()
    assert ("Not in the table yet: pretraining (transformer, transformer_scratch not run); architecture at matched "
            "size (transformer_scratch, bigru_large not run); size (bigru_large not run); size at the same tokenizer "
            "(bigru_large not run).") in text
    assert "transformer_scratch vs bigru_large, which has no runs of both yet: neither claim is tested here." in text
    assert "The claim that at equal parameter counts" not in text


def test_frozen_embeddings_name_the_frozen_preset_however_the_run_asked_for_them():
    import pandas as pd

    from imdb_lm.report import contrasts

    by_override = pd.Series({"model": "bigru_minilm_emb", contrasts.FROZEN: "true"})
    by_preset = pd.Series({"model": "bigru_minilm_emb_frozen", contrasts.FROZEN: True})
    trained = pd.Series({"model": "bigru_minilm_emb", contrasts.FROZEN: False})
    assert contrasts.variant(by_override) == contrasts.variant(by_preset) == "bigru_minilm_emb_frozen"
    assert contrasts.variant(trained) == "bigru_minilm_emb"
    assert contrasts.base("bigru_minilm_emb_frozen") == "bigru_minilm_emb"


def test_each_model_is_shown_at_the_rate_chosen_on_validation_among_those_it_ran(tmp_path):
    # bigru_large's first seed at three rates: x3 best on validation, x1 best on test (never looked at),
    # x0.3 diverged; seeds 2 and 3 at x3, as the sweeper continues the choice
    rates = {0.3: (0.50, 0.50, "diverged"), 1: (0.80, 0.86, "completed"), 3: (0.84, 0.82, "completed")}
    for scale, (val, acc, status) in rates.items():
        write_run(tmp_path, f"large-x{scale}", model="bigru_large", family="recurrent", optimizer="adamw",
                  lr_scale=scale, seed=1, val_acc=val, stage="ablation", status=status, correct=correct_at(acc))
    for seed, acc in ((2, 0.80), (3, 0.78)):
        write_run(tmp_path, f"large-s{seed}", model="bigru_large", family="recurrent", optimizer="adamw",
                  lr_scale=3, seed=seed, val_acc=0.83, stage="ablation", correct=correct_at(acc, seed))
    for seed in (1, 2, 3):
        write_run(tmp_path, f"bow-{seed}", model="bow", family="bow", optimizer="adamw", seed=seed, val_acc=0.85,
                  stage="ablation", correct=correct_at(0.85, seed))
    analysis = analyze([tmp_path], resamples=500)
    table = contrasts.models_table(analysis.runs).set_index("model")
    lr = {scale: RECIPE_LR["recurrent"].get("adamw", 1e-3) * scale for scale in rates}  # as write_run sets it
    large = table.loc["bigru_large"]
    assert large["rate"] == f"{lr[3]:.1e}" and large["seeds"] == 3
    assert large["test % (mean ± std)"].startswith(f"{(0.82 + 0.80 + 0.78) / 3 * 100:.1f} ± ")
    assert large["rates tried (val %)"] == f"{lr[0.3]:.1e} (diverged), {lr[1]:.1e} (80.0), {lr[3]:.1e} (84.0)"
    assert list(table.index) == ["bow", "bigru_large"]  # by test accuracy of the chosen setting
    row = analysis.contrasts.set_index(["A", "B"]).loc[("bigru_large", "bow")]
    assert row["seeds A"] == 3 and row["A - B (points)"] == pytest.approx(-5.0)
    text = write_report(analysis, tmp_path / "r")["markdown"].read_text()
    assert f"| bigru_large | adamw | {lr[3]:.1e} | {large['rates tried (val %)']} | 3 |" in text
