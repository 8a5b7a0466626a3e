"""McNemar and the paired bootstrap on constructed predictions whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imdb_lm.report import statistics


def outcomes(both: int, only_a: int, only_b: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    a = [True] * both + [True] * only_a + [False] * only_b + [False] * neither
    b = [True] * both + [False] * only_a + [True] * only_b + [False] * neither
    return np.array(a), np.array(b)


def test_mcnemar_exact_matches_the_binomial_by_hand():
    a, b = outcomes(50, 8, 2, 40)
    result = statistics.mcnemar(a, b)
    # Two-sided exact: 2 * P(X <= 2), X ~ Bin(10, 1/2) = 2 * (1 + 10 + 45) / 1024.
    assert (result.only_a, result.only_b) == (8, 2)
    assert result.method == "exact binomial"
    assert result.p_value == pytest.approx(112 / 1024, rel=1e-9)


def test_mcnemar_chi_squared_with_continuity_correction():
    a, b = outcomes(100, 30, 10, 60)
    result = statistics.mcnemar(a, b)
    statistic = (abs(30 - 10) - 1) ** 2 / 40
    assert result.statistic == pytest.approx(statistic)
    # chi2 with 1 dof: P(X > s) = erfc(sqrt(s / 2)).
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(statistic / 2)), rel=1e-9)
    assert result.method.startswith("chi-squared")


def test_mcnemar_is_symmetric_and_one_without_discordant_reviews():
    a, b = outcomes(70, 0, 0, 30)
    assert statistics.mcnemar(a, b).p_value == 1.0
    a, b = outcomes(10, 3, 9, 5)
    assert statistics.mcnemar(a, b).p_value == pytest.approx(statistics.mcnemar(b, a).p_value)


def test_bootstrap_interval_of_a_known_difference():
    # A right on all 400 reviews, B on half: difference 0.5, per-review sd 0.5 -> se = 0.5 / sqrt(400).
    a, b = outcomes(200, 200, 0, 0)
    result = statistics.bootstrap_difference(a, b, resamples=4000, seed=1)
    assert result.diff == pytest.approx(0.5)
    assert (result.acc_a, result.acc_b, result.n) == (1.0, 0.5, 400)
    se = 0.5 / math.sqrt(400)
    assert result.low == pytest.approx(0.5 - 1.96 * se, abs=0.012)
    assert result.high == pytest.approx(0.5 + 1.96 * se, abs=0.012)


def test_bootstrap_of_identical_models_is_exactly_zero():
    a, _ = outcomes(30, 10, 0, 5)
    result = statistics.bootstrap_difference(a, a.copy(), resamples=500)
    assert (result.diff, result.low, result.high) == (0.0, 0.0, 0.0)


def test_outcomes_are_matched_by_review_hash_not_order():
    pred_a = {"h1": (1, 0.9), "h2": (0, 0.2), "h3": (1, 0.4), "only_a": (1, 0.9)}
    pred_b = {"h3": (1, 0.7), "h1": (1, 0.3), "h2": (0, 0.6), "only_b": (0, 0.1)}
    a, b = statistics.paired_outcomes(pred_a, pred_b)
    # sorted hashes h1, h2, h3: A right, right, wrong; B wrong, wrong, right.
    assert a.tolist() == [True, True, False]
    assert b.tolist() == [False, False, True]


def test_outcomes_refuse_conflicting_labels_and_disjoint_sets():
    with pytest.raises(ValueError, match="label"):
        statistics.paired_outcomes({"h": (1, 0.9)}, {"h": (0, 0.9)})
    with pytest.raises(ValueError, match="share no test review"):
        statistics.paired_outcomes({"a": (1, 0.9)}, {"b": (1, 0.9)})


# ---- seed level: two-level bootstrap over seeds (within each family) and reviews (paired) ----------
def test_seed_bootstrap_with_identical_seeds_is_the_paired_review_interval():
    # Every seed of A right on all 400 reviews, every seed of B on half: resampling seeds changes nothing,
    # so the interval is the review-level one: 0.5 +- 1.96 * 0.5 / sqrt(400).
    a, b = outcomes(200, 200, 0, 0)
    result = statistics.seed_bootstrap(np.stack([a] * 3), np.stack([b] * 2), resamples=4000, seed=1)
    assert (result.seeds_a, result.seeds_b, result.n) == (3, 2, 400)
    assert (result.acc_a, result.acc_b, result.diff) == (1.0, 0.5, 0.5)
    se = 0.5 / math.sqrt(400)
    assert result.low == pytest.approx(0.5 - 1.96 * se, abs=0.012)
    assert result.high == pytest.approx(0.5 + 1.96 * se, abs=0.012)
    assert result.reliable


def test_seed_bootstrap_covers_the_spread_between_seeds():
    # A's two seeds score 90% and 60% on 1,000 reviews, B's two 75%: the mean difference is 0, and with
    # only two seeds a resample takes both of A's bad seed with probability 1/4, both good with 1/4:
    # the interval reaches about -15 and +15 points, far wider than test sampling alone (~ +-3).
    n = 1000
    good, bad, mid = (np.arange(n) < k for k in (900, 600, 750))
    result = statistics.seed_bootstrap(np.stack([good, bad]), np.stack([mid, mid]), resamples=4000, seed=0)
    assert result.diff == pytest.approx(0.0)
    assert result.low == pytest.approx(-0.15, abs=0.02) and result.high == pytest.approx(0.15, abs=0.02)
    assert not result.reliable
    # review resampling alone (one seed each, A's good seed vs B) is narrow and excludes zero
    single = statistics.seed_bootstrap(good[None], mid[None], resamples=2000, seed=0)
    assert single.low > 0.1 and single.high - single.low < 0.06


def test_seed_bootstrap_keeps_reviews_paired_across_families():
    # A and B are wrong on the same 190 hard reviews, B on 10 more: paired, only those 10 reviews vary the
    # difference (se = sqrt(0.01 * 0.99 / 1000), an interval ~1.2 points wide); resampling each family's
    # reviews independently would spread it like two independent accuracies (~7 points wide).
    n = 1000
    a, b = np.arange(n) >= 190, np.arange(n) >= 200
    result = statistics.seed_bootstrap(a[None], b[None], resamples=2000, seed=0)
    assert result.diff == pytest.approx(0.01)
    assert result.high - result.low < 0.015


def test_seed_bootstrap_refuses_different_review_sets():
    with pytest.raises(ValueError, match="different reviews"):
        statistics.seed_bootstrap(np.ones((2, 10), bool), np.ones((2, 11), bool))


def test_holm_steps_down_and_keeps_the_order_of_the_input():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; running maximum 0.02, 0.03, 0.06, 0.06
    assert statistics.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert statistics.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert statistics.holm([0.02]) == pytest.approx([0.02])  # one test: unchanged


def test_seed_bootstrap_p_value_agrees_with_its_interval():
    rng = np.random.default_rng(3)
    clear = statistics.seed_bootstrap(rng.random((3, 400)) < 0.9, rng.random((3, 400)) < 0.7, resamples=2000)
    assert clear.low > 0 and clear.p_value == pytest.approx(2 / 2001)  # no resample at or below zero
    same = statistics.seed_bootstrap(rng.random((3, 400)) < 0.8, rng.random((3, 400)) < 0.8, resamples=2000)
    assert same.low < 0 < same.high and same.p_value > 0.05
