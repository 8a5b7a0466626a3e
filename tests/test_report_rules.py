"""The decision rules (imdb_lm/report/rules.py, docs/comparing.md "Decision rules"): constructed data of
known answer through each rule, and the tests against scipy computed independently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from imdb_lm.report import contrasts, rules, statistics


def seeds(mean: float, spread: float, n: int) -> np.ndarray:
    """n per-seed accuracies with exactly this mean and sample standard deviation."""
    base = np.linspace(-1, 1, n)
    return mean + spread * base / base.std(ddof=1)


@pytest.mark.parametrize(("a", "b", "expected"), [
    (seeds(0.90, 0.002, 5), seeds(0.88, 0.002, 5), rules.DIFFERENT),      # 2 points, tight seeds
    (seeds(0.885, 0.0005, 5), seeds(0.880, 0.0005, 5), rules.SMALL),      # 0.5 point, very tight
    (seeds(0.881, 0.002, 5), seeds(0.880, 0.002, 5), rules.EQUIVALENT),   # 0.1 point
    (seeds(0.89, 0.015, 3), seeds(0.88, 0.015, 3), rules.NOT_SETTLED),    # 1 point, wide 3-seed spread
    (seeds(0.95, 0.0, 1), seeds(0.80, 0.0, 1), rules.NOT_SETTLED),        # one seed a side: nothing to test
])
def test_each_accuracy_outcome_follows_the_written_rule(a, b, expected):
    test = statistics.seed_welch(a, b, rules.ACCURACY_MARGIN)
    assert rules.outcome(test.p_value, test.p_equivalent) == expected


def test_the_seed_level_test_is_scipys_welch_and_its_tost():
    a, b = np.array([0.901, 0.894, 0.906, 0.899, 0.903]), np.array([0.884, 0.879, 0.889, 0.881])
    test = statistics.seed_welch(a, b, 0.01)
    assert test.p_value == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)
    # TOST: the larger of the two one-sided Welch tests against the shifted means
    lower = stats.ttest_ind(a - 0.01 * -1, b, equal_var=False, alternative="greater").pvalue  # H0: diff <= -m
    upper = stats.ttest_ind(a - 0.01, b, equal_var=False, alternative="less").pvalue         # H0: diff >= +m
    assert test.p_equivalent == pytest.approx(max(lower, upper), rel=1e-9)
    assert test.diff == pytest.approx(a.mean() - b.mean())
    # the detectable difference: at it, a two-sided Welch test has ~80% power (normal approximation)
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert 2 * se < test.detectable < 4 * se


def slower(rnn_over_transformer: list[float]) -> str:
    test = statistics.ratio_test(rnn_over_transformer, rules.SPEED_MARGIN)
    return rules.slower_claim(rules.outcome(test.p_value, test.p_equivalent), test.ratio)


def test_a_consistently_9_percent_slower_rnn_is_slower_not_equal():
    # The rule v2 read "does not hold" here (no round beyond the 10% margin); v3 must not.
    rounds = [1.088, 1.092, 1.090, 1.089, 1.091, 1.090, 1.087]
    verdict = slower(rounds)
    assert not verdict.startswith("does not hold")
    assert verdict == "holds, by less than the 10% margin"
    assert rules.v2_slower_claim(rounds) == "does not hold"  # the published rule, recomputed


@pytest.mark.parametrize(("rounds", "expected"), [
    ([1.31, 1.28, 1.35, 1.30, 1.33, 1.29, 1.32], "holds"),
    ([0.99, 1.01, 1.00, 1.02, 0.98, 1.00, 1.01], "does not hold (equal speed within 10%)"),
    ([0.70, 0.72, 0.69, 0.71, 0.70, 0.73, 0.71], "does not hold (the RNN is reliably faster)"),
    ([0.80, 1.40, 0.85, 1.30, 0.90, 1.45, 0.95], "is not settled (neither different nor equal within 10%)"),
    ([1.5], "is not settled (neither different nor equal within 10%)"),  # one value: records, not a bench
])
def test_each_speed_outcome_follows_the_written_rule(rounds, expected):
    assert slower(rounds) == expected


def test_the_speed_test_is_a_t_test_on_log_ratios():
    rounds = [1.12, 1.05, 1.18, 1.09, 1.15, 1.11, 1.07]
    test = statistics.ratio_test(rounds, 0.10)
    logs = np.log(rounds)
    assert test.p_value == pytest.approx(stats.ttest_1samp(logs, 0.0).pvalue, rel=1e-12)
    m = np.log(1.10)
    tost = max(stats.ttest_1samp(logs, -m, alternative="greater").pvalue,
               stats.ttest_1samp(logs, m, alternative="less").pvalue)
    assert test.p_equivalent == pytest.approx(tost, rel=1e-9)
    assert test.ratio == pytest.approx(float(np.exp(logs.mean())))


def test_the_claim_sentence_carries_the_new_verdict_and_the_published_one():
    row = pd.Series({"A": "transformer_scratch", "B": "bigru_large", "time / token A/B": 1 / 1.09,
                     "time / token rounds": [1 / r for r in [1.088, 1.092, 1.090, 1.089, 1.091, 1.090, 1.087]],
                     "speed from": "bench", "speed device": "cpu: test x2 threads"})
    (sentence, caveat) = contrasts._slower_to_train(row)
    assert "RNNs are slower to train holds, by less than the 10% margin here" in sentence
    assert 'under the published rule v2 it read "does not hold"' in sentence
    assert "1.1x the time" in sentence and "7 interleaved rounds" in sentence
    assert "GPU" in caveat


def test_every_rule_version_is_kept_with_its_date_and_reason():
    versions = [r.version for r in rules.HISTORY]
    assert versions == sorted(set(versions)) and versions[-1] == rules.RULES_VERSION
    assert rules.PUBLISHED in versions and rules.PUBLISHED < rules.RULES_VERSION
    assert all(r.date and r.reason for r in rules.HISTORY)
