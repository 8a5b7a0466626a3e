"""Faithfulness of token attributions: deletion curves and AOPC, against a random-token baseline.

For each review, remove its top-ranked tokens (the tokens the explanation says support the
predicted class most) and measure how much the predicted class's probability drops. Removing is
literal deletion from the sequence, the same operation for both families, and the amounts are
fractions of the review's text tokens (1, 5, 10, 20, 50%, as in ERASER's comprehensiveness), so
word-level and sub-word models are compared on equal terms. AOPC (area over the perturbation
curve) is the mean drop over those amounts; a faithful explanation has a clearly larger AOPC than
the same deletions in a random order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

FRACTIONS = (0.01, 0.05, 0.1, 0.2, 0.5)
ProbsFn = Callable[[list[list[int]]], list[float]]  # token ids of reviews -> P(positive) each


def content_positions(length: int, special: set[int]) -> list[int]:
    return [p for p in range(length) if p not in special]


def rank_by_scores(scores: Sequence[float], special: set[int], predicted: int) -> list[int]:
    """Text positions, most supportive of the predicted class first (scores are toward positive)."""
    sign = 1.0 if predicted == 1 else -1.0
    return sorted(content_positions(len(scores), special), key=lambda p: -sign * scores[p])


def rank_by_relevance(relevance: Sequence[float], special: set[int]) -> list[int]:
    """Text positions by an unsigned relevance (attention rollout), highest first."""
    return sorted(content_positions(len(relevance), special), key=lambda p: -relevance[p])


def random_ranking(length: int, special: set[int], seed: int) -> list[int]:
    order = content_positions(length, special)
    random.Random(seed).shuffle(order)
    return order


def delete(ids: Sequence[int], positions: Sequence[int], filler: int) -> list[int]:
    """`ids` without `positions`; a review left with no token becomes [filler] (models need one)."""
    gone = set(positions)
    kept = [t for p, t in enumerate(ids) if p not in gone]
    return kept or [filler]


def amounts(n_text: int, fractions: Sequence[float]) -> list[int]:
    """How many tokens each fraction removes: at least one, never all of a review's text."""
    return [min(max(1, round(f * n_text)), max(1, n_text - 1)) for f in fractions]


def deletion_drops(probs_fn: ProbsFn, reviews: Sequence[Sequence[int]], rankings: Sequence[Sequence[int]],
                   predicted: Sequence[int], filler: int, fractions: Sequence[float] = FRACTIONS,
                   counts: Sequence[int] | None = None) -> list[list[float]]:
    """drops[i][j] = P(predicted class | review i) - P(same class | review i minus its top-k_j tokens).
    `counts` (absolute k) replaces `fractions` when given."""
    perturbed, owners = [], []
    for ids, ranking in zip(reviews, rankings, strict=True):
        ks = list(counts) if counts is not None else amounts(len(ranking), fractions)
        perturbed += [delete(ids, ranking[:k], filler) for k in ks]
        owners.append(len(ks))
    base = probs_fn([list(r) for r in reviews])
    after = probs_fn(perturbed)
    drops, start = [], 0
    for i, steps in enumerate(owners):
        def cls(p, c=predicted[i]):
            return p if c == 1 else 1.0 - p
        drops.append([cls(base[i]) - cls(q) for q in after[start:start + steps]])
        start += steps
    return drops


def aopc(drops: Sequence[Sequence[float]]) -> float:
    """Mean over reviews of the mean drop over deletion amounts."""
    return sum(sum(d) / len(d) for d in drops) / len(drops)


def curve(drops: Sequence[Sequence[float]]) -> list[float]:
    """Mean drop at each deletion amount: the deletion curve."""
    return [sum(col) / len(col) for col in zip(*drops, strict=True)]


def summary(drops: Sequence[Sequence[float]], random_drops: Sequence[Sequence[float]]) -> dict:
    score, chance = aopc(drops), aopc(random_drops)
    return {"aopc": score, "random_aopc": chance, "aopc_gain": score - chance,
            "curve": curve(drops), "random_curve": curve(random_drops)}
