"""BucketBatchSampler: every example once per epoch, a new order each epoch, repeatable per seed,
and little padding."""

from __future__ import annotations

import math
import random

import pytest
import torch

from imdb_lm.data.batching import BucketBatchSampler, PadCollate, TokenizedReviews


def review_lengths(n: int = 5000, seed: int = 0) -> list[int]:
    """Long-tailed like IMDB word counts (median ~170, some over 1,000), capped at 400 like the data."""
    rng = random.Random(seed)
    return [min(400, max(5, int(rng.lognormvariate(5.15, 0.6)))) for _ in range(n)]


def padding_fraction(batches: list[list[int]], lengths: list[int]) -> float:
    real = sum(lengths[i] for b in batches for i in b)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - real / padded


@pytest.mark.parametrize("drop_last", [False, True])
def test_every_example_exactly_once_per_epoch(drop_last):
    lengths = review_lengths(3001)
    sampler = BucketBatchSampler(lengths, 64, shuffle=True, seed=3, drop_last=drop_last)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        seen = [i for b in batches for i in b]
        assert len(batches) == len(sampler)
        if drop_last:
            assert all(len(b) == 64 for b in batches) and len(seen) == len(set(seen))
            assert len(seen) >= len(lengths) - 64 * (len(lengths) // sampler.chunk + 1)
        else:
            assert sorted(seen) == list(range(len(lengths)))


def test_order_changes_between_epochs_and_repeats_for_a_seed():
    lengths = review_lengths(2000)
    a = BucketBatchSampler(lengths, 32, shuffle=True, seed=7)
    b = BucketBatchSampler(lengths, 32, shuffle=True, seed=7)
    epoch0 = list(a)
    a.set_epoch(1)
    epoch1 = list(a)
    assert epoch0 != epoch1
    assert [sorted(x) for x in epoch0] != [sorted(x) for x in epoch1]  # different batches, not only order
    assert list(b) == epoch0  # same seed, same epoch: same batches in the same order
    b.set_epoch(1)
    assert list(b) == epoch1
    other = BucketBatchSampler(lengths, 32, shuffle=True, seed=8)
    assert list(other) != epoch0


def test_bucketing_keeps_padding_small_and_batches_random():
    lengths = review_lengths(5000)
    bucketed = list(BucketBatchSampler(lengths, 64, shuffle=True, seed=0))
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(lengths), generator=gen).tolist()
    random_batches = [order[i:i + 64] for i in range(0, len(order), 64)]
    assert padding_fraction(bucketed, lengths) < 0.05
    assert padding_fraction(random_batches, lengths) > 0.35  # what a shuffled DataLoader pads
    # batches still come in a random length order (not shortest first)
    first_lengths = [max(lengths[i] for i in b) for b in bucketed[:20]]
    assert first_lengths != sorted(first_lengths)
    evaluation = list(BucketBatchSampler(lengths, 128, shuffle=False))
    assert padding_fraction(evaluation, lengths) < 0.03


def test_replicas_split_batches_evenly():
    """Training: each of 2 ranks gets ceil(n/2) of the epoch's n batches (one repeated to even them
    out), together all n. Evaluation: the ranks' batches are disjoint and are every batch once."""
    lengths = review_lengths(1000)
    whole = list(BucketBatchSampler(lengths, 16, seed=1))
    n = len(whole)
    assert n % 2 == 1  # 800 + 200 reviews in two chunks: 50 + 13 batches, so one rank's share is padded
    samplers = [BucketBatchSampler(lengths, 16, seed=1, num_replicas=2, rank=r) for r in (0, 1)]
    parts = [list(s) for s in samplers]
    assert [len(p) for p in parts] == [len(s) for s in samplers] == [math.ceil(n / 2)] * 2
    assert {tuple(b) for p in parts for b in p} == {tuple(b) for b in whole}
    whole = list(BucketBatchSampler(lengths, 16, shuffle=False))
    samplers = [BucketBatchSampler(lengths, 16, shuffle=False, num_replicas=2, rank=r) for r in (0, 1)]
    parts = [list(s) for s in samplers]
    assert [len(p) for p in parts] == [len(s) for s in samplers]
    reviews = [{i for b in p for i in b} for p in parts]
    assert not reviews[0] & reviews[1]
    assert sorted(tuple(b) for p in parts for b in p) == sorted(tuple(b) for b in whole)


def test_pad_collate_masks_exactly_the_padding():
    data = TokenizedReviews([[5, 6, 7], [8], [9, 10]], [1, 0, 1], ["a", "b", "c"])
    batch = PadCollate(pad_id=0)([data[i] for i in range(3)])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert batch["attention_mask"].sum(1).tolist() == batch["lengths"].tolist() == [3, 1, 2]
    part = data.subset([2, 0])
    assert part.lengths == [2, 3] and part.labels == [1, 1] and part.hashes == ["c", "a"]
