"""Paired statistics for two classifiers scored on the same test reviews (matched by review hash).

McNemar's test looks only at the discordant reviews (one model right, the other wrong): with b and c
such reviews, under "equally accurate" each is a fair coin. Below 25 discordant pairs the exact
two-sided binomial test is used, above it the chi-squared statistic with continuity correction
(the usual textbook rule). The accuracy difference gets a paired bootstrap confidence interval:
resample reviews with replacement, keep each review's pair of outcomes together. Between two
settings run with several seeds each, `seed_bootstrap` adds the seed level: seeds are resampled
within each family (they are not paired across families), reviews jointly across them, so the
interval covers seed-to-seed variation as well as test sampling. The bench's parity verdict uses
`equivalence_tost`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

EXACT_BELOW = 25


@dataclass(frozen=True)
class McNemar:
    only_a: int       # reviews model A gets right and model B wrong
    only_b: int
    statistic: float  # chi-squared statistic, or the smaller discordant count for the exact test
    p_value: float
    method: str


@dataclass(frozen=True)
class PairedDifference:
    n: int
    acc_a: float
    acc_b: float
    diff: float       # acc_a - acc_b
    low: float
    high: float
    confidence: float
    resamples: int


def paired_outcomes(pred_a: dict[str, tuple[int, float]], pred_b: dict[str, tuple[int, float]],
                    threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Per-review correctness of A and B on the reviews both scored, in a fixed (hash) order."""
    common = sorted(set(pred_a) & set(pred_b))
    if not common:
        raise ValueError("the two runs share no test review; they were not tested on the same split")
    for h in common:
        if pred_a[h][0] != pred_b[h][0]:
            raise ValueError(f"review {h} has label {pred_a[h][0]} in one run and {pred_b[h][0]} in the other")
    # Same rule as torchmetrics' BinaryAccuracy: positive when the probability exceeds the threshold.
    correct_a = np.array([(pred_a[h][1] > threshold) == bool(pred_a[h][0]) for h in common])
    correct_b = np.array([(pred_b[h][1] > threshold) == bool(pred_b[h][0]) for h in common])
    return correct_a, correct_b


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemar:
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    discordant = only_a + only_b
    if discordant == 0:
        return McNemar(only_a, only_b, 0.0, 1.0, "no discordant reviews")
    if discordant < EXACT_BELOW:
        p = stats.binomtest(min(only_a, only_b), discordant, 0.5, alternative="two-sided").pvalue
        return McNemar(only_a, only_b, float(min(only_a, only_b)), float(min(1.0, p)), "exact binomial")
    statistic = (abs(only_a - only_b) - 1) ** 2 / discordant
    return McNemar(only_a, only_b, float(statistic), float(stats.chi2.sf(statistic, df=1)),
                   "chi-squared with continuity correction")


def bootstrap_difference(correct_a: np.ndarray, correct_b: np.ndarray, resamples: int = 10_000,
                         confidence: float = 0.95, seed: int = 0) -> PairedDifference:
    """Percentile bootstrap CI of acc(A) - acc(B), resampling reviews (pairs stay together)."""
    a, b = np.asarray(correct_a, float), np.asarray(correct_b, float)
    n = len(a)
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    per_review = a - b
    for start in range(0, resamples, 1000):  # chunks keep memory flat for large test sets
        stop = min(resamples, start + 1000)
        idx = rng.integers(0, n, size=(stop - start, n))
        diffs[start:stop] = per_review[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    return PairedDifference(n, float(a.mean()), float(b.mean()), float(per_review.mean()), float(low),
                            float(high), confidence, resamples)


@dataclass(frozen=True)
class SeedDifference:
    """acc(A) - acc(B) over every seed of two settings, with a two-level bootstrap interval."""
    n: int            # test reviews both families were scored on
    seeds_a: int
    seeds_b: int
    acc_a: float      # mean over A's seeds
    acc_b: float
    diff: float
    low: float
    high: float
    confidence: float
    resamples: int
    p_value: float = 1.0  # two-sided bootstrap p: how often the resampled difference falls on the other side of 0

    @property
    def reliable(self) -> bool:
        """The interval excludes zero: the only case the report may call the difference reliable."""
        return self.low > 0 or self.high < 0


def seed_bootstrap(correct_a: np.ndarray, correct_b: np.ndarray, resamples: int = 10_000,
                   confidence: float = 0.95, seed: int = 0) -> SeedDifference:
    """Two-level percentile bootstrap of mean acc(A) - mean acc(B) from per-seed outcomes.

    `correct_a` is seeds x reviews (one row per seed of A), `correct_b` likewise, both in the same review
    order. Each resample draws seeds with replacement within each family independently (seeds are not
    paired across families), and one draw of reviews shared by both families (a review's outcomes stay
    paired), so the interval covers seed-to-seed variation as well as test sampling.
    """
    a, b = np.atleast_2d(np.asarray(correct_a, float)), np.atleast_2d(np.asarray(correct_b, float))
    if a.shape[1] != b.shape[1] or a.shape[1] == 0:
        raise ValueError(f"the two families were scored on different reviews ({a.shape[1]} vs {b.shape[1]})")
    n = a.shape[1]
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    for start in range(0, resamples, 500):  # chunks keep memory flat for large test sets
        size = min(resamples, start + 500) - start
        # seed draws as multinomial weights: row r of weights_a @ a is resample r's seed-averaged outcome
        weights_a = rng.multinomial(len(a), np.full(len(a), 1 / len(a)), size=size) / len(a)
        weights_b = rng.multinomial(len(b), np.full(len(b), 1 / len(b)), size=size) / len(b)
        per_review = weights_a @ a - weights_b @ b
        reviews = rng.integers(0, n, size=(size, n))
        diffs[start:start + size] = np.take_along_axis(per_review, reviews, axis=1).mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    acc_a, acc_b = float(a.mean()), float(b.mean())
    # The +1s keep p above zero for a finite number of resamples (Davison & Hinkley, eq. 4.11).
    tail = min(np.sum(diffs <= 0), np.sum(diffs >= 0))
    p_value = min(1.0, 2 * (tail + 1) / (resamples + 1))
    return SeedDifference(n, len(a), len(b), acc_a, acc_b, acc_a - acc_b, float(low), float(high), confidence,
                          resamples, float(p_value))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment: family-wise error at most alpha when adjusted p < alpha.

    Written here because scipy has only Benjamini-Hochberg (`false_discovery_control`, which controls
    the false discovery rate, not the family-wise error) and statsmodels' `multipletests` would be a
    large dependency for six lines.
    """
    p = np.asarray(p_values, float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, stepped)
    return adjusted


@dataclass(frozen=True)
class Equivalence:
    n: int
    mean: float
    margin: float
    alpha: float
    p_value: float | None      # TOST: the larger of the two one-sided p-values (None below two values)
    p_lower: float | None      # H0: mean <= -margin
    p_upper: float | None      # H0: mean >= +margin
    low: float | None          # the (1 - 2 alpha) t interval, the one TOST's verdict corresponds to
    high: float | None
    verdict: str               # "equivalent" | "inconclusive" | "not equivalent"


EQUIVALENT, INCONCLUSIVE, NOT_EQUIVALENT = "equivalent", "inconclusive", "not equivalent"


def equivalence_tost(differences, margin: float, alpha: float = 0.05) -> Equivalence:
    """Two one-sided t tests (TOST) that the mean of paired `differences` lies within +-`margin`.

    Equivalent when both one-sided nulls (mean <= -margin, mean >= +margin) are rejected at `alpha`,
    i.e. when the (1 - 2 alpha) t interval lies inside the margin; not equivalent when that interval
    lies wholly outside it (a one-sided t test rejects |mean| <= margin at `alpha`); inconclusive
    otherwise, and always with fewer than two values (no spread to test against)."""
    d = np.asarray(differences, dtype=float)
    n, mean = len(d), float(d.mean()) if len(d) else float("nan")
    if n < 2:
        return Equivalence(n, mean, margin, alpha, None, None, None, None, None, INCONCLUSIVE)
    se = float(d.std(ddof=1)) / np.sqrt(n)
    df = n - 1
    if se == 0.0:  # no spread: the mean is known exactly
        inside, outside = abs(mean) < margin, abs(mean) > margin
        p_lower = 0.0 if mean > -margin else 1.0
        p_upper = 0.0 if mean < margin else 1.0
        verdict = EQUIVALENT if inside else NOT_EQUIVALENT if outside else INCONCLUSIVE
        return Equivalence(n, mean, margin, alpha, max(p_lower, p_upper), p_lower, p_upper, mean, mean, verdict)
    p_lower = float(stats.t.sf((mean + margin) / se, df))
    p_upper = float(stats.t.cdf((mean - margin) / se, df))
    half = float(stats.t.ppf(1 - alpha, df)) * se
    low, high = float(mean - half), float(mean + half)
    if max(p_lower, p_upper) < alpha:
        verdict = EQUIVALENT
    elif low > margin or high < -margin:
        verdict = NOT_EQUIVALENT
    else:
        verdict = INCONCLUSIVE
    return Equivalence(n, mean, margin, alpha, max(p_lower, p_upper), p_lower, p_upper, low, high, verdict)


@dataclass(frozen=True)
class SeedTest:
    """mean(A) - mean(B) over seed-level values (one accuracy per seed): the seeds are the units."""
    seeds_a: int
    seeds_b: int
    diff: float
    p_value: float            # Welch's two-sided t test of "no difference"
    p_equivalent: float       # two one-sided Welch tests (TOST) of "|difference| >= margin"
    margin: float
    detectable: float         # the smallest |difference| found at `alpha` with 80% power at this spread


def seed_welch(values_a, values_b, margin: float, alpha: float = 0.05, power: float = 0.8) -> SeedTest:
    """Welch's t test and its TOST on per-seed values (scipy's ttest_ind with equal_var=False).

    With a handful of seeds this is the honest level of inference: a bootstrap over 3 seeds has at most
    10 distinct seed draws, never leaves the seeds' range, and understates the spread. Fewer than two
    values on a side (or no spread at all) leave nothing to test: p = 1 for both tests, and no detectable
    difference (inf). `detectable` uses the normal approximation of the noncentral t at Welch's
    degrees of freedom: (t_{1-alpha/2} + t_{power}) x the standard error."""
    a, b = np.asarray(values_a, float), np.asarray(values_b, float)
    diff = float(a.mean() - b.mean()) if len(a) and len(b) else float("nan")
    if len(a) < 2 or len(b) < 2:
        return SeedTest(len(a), len(b), diff, 1.0, 1.0, margin, float("inf"))
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = float(np.sqrt(va + vb))
    if se == 0.0:
        return SeedTest(len(a), len(b), diff, 1.0 if diff == 0 else 0.0, 0.0 if abs(diff) < margin else 1.0,
                        margin, 0.0)
    df = float((va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)))
    p_value = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    p_lower = float(stats.t.sf((diff + margin) / se, df))   # H0: diff <= -margin
    p_upper = float(stats.t.cdf((diff - margin) / se, df))  # H0: diff >= +margin
    detectable = float((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * se)
    return SeedTest(len(a), len(b), diff, p_value, max(p_lower, p_upper), margin, detectable)


@dataclass(frozen=True)
class RatioTest:
    """A over B in time, from interleaved rounds (each round's ratio of the two): on the log scale."""
    rounds: int
    ratio: float              # exp(mean log ratio): the geometric mean over rounds
    p_value: float            # one-sample t test of "mean log ratio = 0"
    p_equivalent: float       # TOST of "|mean log ratio| >= log(1 + margin)"
    margin: float


def ratio_test(ratios, margin: float) -> RatioTest:
    """Whether A's time differs from B's, and whether it is equal within +-margin (on the log scale, so
    1.1x slower and 1.1x faster weigh the same), over the rounds of one interleaved bench."""
    logs = np.log(np.asarray([r for r in ratios if r and r > 0], float))
    ratio = float(np.exp(logs.mean())) if len(logs) else float("nan")
    if len(logs) < 2:
        return RatioTest(len(logs), ratio, 1.0, 1.0, margin)
    if float(logs.std(ddof=1)) == 0.0:
        mean = float(logs.mean())
        return RatioTest(len(logs), ratio, 1.0 if mean == 0 else 0.0,
                         0.0 if abs(mean) < np.log1p(margin) else 1.0, margin)
    p_value = float(stats.ttest_1samp(logs, 0.0).pvalue)
    equivalence = equivalence_tost(logs, float(np.log1p(margin)))
    return RatioTest(len(logs), ratio, p_value, float(equivalence.p_value), margin)
