"""The decision rules of every verdict the report prints, fixed before the data they judge.

docs/comparing.md ("Decision rules") states them for readers; this module is what applies them, and the
report prints RULES_VERSION with its date and reason. A rule changed after results exist gets a new
version here (never an edit of an old one): the report then recomputes the published verdicts under
the new rule and shows, beside each, the verdict of the rule it replaced.

Version 3, the one in force, classifies every comparison in four outcomes from two tests at ALPHA:
a test of "no difference" and a test of equivalence within a margin (TOST), as in Lakens (2017):
- different (the difference test rejects, equivalence does not): "reliably higher / slower";
- different, within the margin (both reject): a real but smaller-than-margin difference;
- equivalent (equivalence rejects, difference does not): equal within the margin;
- not settled (neither rejects): the data cannot tell.
Accuracy: Welch's t on per-seed test accuracies (seeds are the units), Holm's adjustment over the
contrasts of one table for the difference test, margin ACCURACY_MARGIN (1.0 point). Speed: the rounds of
one interleaved bench, a one-sample t on the log of each round's ratio, margin SPEED_MARGIN (10%).
"""

from __future__ import annotations

from dataclasses import dataclass

ALPHA = 0.05
ACCURACY_MARGIN = 0.010  # 1.0 point of test accuracy
SPEED_MARGIN = 0.10      # 10% in time per training token, symmetric on the log scale

DIFFERENT, SMALL, EQUIVALENT, NOT_SETTLED = "different", "different, within the margin", "equivalent", "not settled"


@dataclass(frozen=True)
class Rule:
    version: int
    date: str
    reason: str


# Every version, oldest first; the last is in force.
HISTORY = [
    Rule(1, "2026-12-03", "accuracy: the two-level bootstrap interval excludes zero and its p after Holm < 0.05 "
                          "(reliable), else not distinguishable; speed: settled only when every interleaved bench "
                          "round lies beyond the 10% margin on one side, else not settled"),
    Rule(2, "2026-12-03", "speed only: 'slower to train' also reads 'does not hold' when no round has the RNN more "
                          "than 10% slower. Changed in the commit that reran the bench, after its data, and never "
                          "versioned then; lopsided (an RNN consistently 1.09x slower 'is not slower')"),
    Rule(3, "2026-12-07", "a statistician's review: 3-seed bootstraps are overconfident and v2 was set after the "
                          "data. Seed-level Welch t (Holm over a table's contrasts) with TOST at +-1.0 point; speed "
                          "as a t test and TOST at +-10% on the log ratio of interleaved rounds; four outcomes"),
]
RULES_VERSION = HISTORY[-1].version
PUBLISHED = 2  # the version the verdicts published before this one were made under


def outcome(p_different: float, p_equivalent: float, alpha: float = ALPHA) -> str:
    different, equivalent = p_different < alpha, p_equivalent < alpha
    return (SMALL if different and equivalent else DIFFERENT if different else
            EQUIVALENT if equivalent else NOT_SETTLED)


def accuracy_words(result: str, diff: float, margin: float = ACCURACY_MARGIN) -> str:
    """How a sentence names an accuracy outcome of A minus B (`diff`, a fraction)."""
    direction = "higher" if diff > 0 else "lower"
    points = f"{margin * 100:.1f} point{'' if round(margin * 100, 6) == 1 else 's'}"
    return {DIFFERENT: f"reliably {direction}",
            SMALL: f"reliably {direction}, by less than the {points} margin",
            EQUIVALENT: f"equivalent within {points}",
            NOT_SETTLED: f"not settled (neither a difference nor equivalence within {points})"}[result]


def slower_claim(result: str, rnn_over_transformer: float) -> str:
    """Whether "RNNs are slower to train" holds, from the outcome of the RNN-over-transformer time test."""
    slower = rnn_over_transformer > 1
    if result == DIFFERENT:
        return "holds" if slower else "does not hold (the RNN is reliably faster)"
    if result == SMALL:
        return (f"holds, by less than the {SPEED_MARGIN:.0%} margin" if slower else
                f"does not hold (the RNN is faster, by less than the {SPEED_MARGIN:.0%} margin)")
    if result == EQUIVALENT:
        return f"does not hold (equal speed within {SPEED_MARGIN:.0%})"
    return f"is not settled (neither different nor equal within {SPEED_MARGIN:.0%})"


def comparable_claim(result: str) -> str:
    """Whether "at equal parameter counts RNNs and transformers perform comparably" holds."""
    return {DIFFERENT: "does not hold", SMALL: "holds (the difference is real but within the margin)",
            EQUIVALENT: "holds", NOT_SETTLED: "is not settled"}[result]


# ---- the rules replaced, to show where the published verdicts differ -------------------------------

def v2_accuracy(interval_excludes_zero: bool, bootstrap_p_holm: float) -> str:
    return "reliable" if interval_excludes_zero and bootstrap_p_holm < ALPHA else "not distinguishable"


def v2_slower_claim(rnn_over_transformer_rounds: list[float]) -> str:
    rounds = rnn_over_transformer_rounds
    if not rounds:
        return "not measured"
    if min(rounds) > 1 + SPEED_MARGIN:
        return "holds"
    if max(rounds) < 1 - SPEED_MARGIN or max(rounds) <= 1 + SPEED_MARGIN:
        return "does not hold"
    return "is not settled"
