"""Length-bucketed batches and a padding collate.

Training batches group reviews of similar length so padding stays small without packing (packing
was ~10x slower than padded calls on CPU here). Randomness is kept: the order is shuffled, sorted by
length only inside large chunks, and the resulting batches are shuffled again, all from a
generator seeded by (seed, epoch), so every epoch differs and every run with a seed repeats.

Resuming inside an epoch: the training loader is stateful (Lightning saves its `state_dict()` in
the checkpoint and calls `load_state_dict()` before iterating again), so the resumed epoch uses the
same order and skips the batches already trained.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class TokenizedReviews(Dataset):
    """Token ids, labels and review hashes held in memory (faster than per-row Arrow reads)."""

    def __init__(self, input_ids: list[list[int]], labels: list[int], hashes: list[str],
                 texts: list[str] | None = None):
        self.input_ids = [torch.tensor(ids, dtype=torch.long) for ids in input_ids]
        self.labels = labels
        self.hashes = hashes
        self.texts = texts
        self.lengths = [len(ids) for ids in input_ids]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: list[int]) -> TokenizedReviews:
        """The given rows, sharing their tensors (benchmarks and studies on a slice)."""
        part = TokenizedReviews([], [], [])
        part.input_ids = [self.input_ids[i] for i in indices]
        part.labels = [self.labels[i] for i in indices]
        part.hashes = [self.hashes[i] for i in indices]
        part.texts = [self.texts[i] for i in indices] if self.texts is not None else None
        part.lengths = [self.lengths[i] for i in indices]
        return part

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        return self.input_ids[index], self.labels[index], index


class BucketBatchSampler(Sampler[list[int]]):
    def __init__(self, lengths: list[int], batch_size: int, shuffle: bool = True, seed: int = 0,
                 chunk_batches: int = 50, drop_last: bool = False, num_replicas: int = 1, rank: int = 0):
        self.lengths, self.batch_size, self.shuffle, self.seed = lengths, batch_size, shuffle, seed
        self.chunk = batch_size * chunk_batches
        self.drop_last, self.num_replicas, self.rank = drop_last, num_replicas, rank
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def sampler(self) -> _EpochSetter:
        """Lightning calls `set_epoch` on `batch_sampler.sampler` (the DistributedSampler convention),
        not on the batch sampler itself; without this every epoch would repeat epoch 0's order."""
        return _EpochSetter(self)

    def _all_batches(self) -> list[list[int]]:
        n = len(self.lengths)
        if not self.shuffle:  # evaluation: one global sort gives the least padding
            order = sorted(range(n), key=self.lengths.__getitem__)
            return [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(n, generator=gen).tolist()
        batches = []
        for start in range(0, n, self.chunk):
            chunk = sorted(order[start:start + self.chunk], key=self.lengths.__getitem__)
            batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        perm = torch.randperm(len(batches), generator=gen).tolist()
        return [batches[i] for i in perm]

    def __iter__(self):
        # A generator: the order is drawn at the first batch, after Lightning has called set_epoch
        # (when resuming, Lightning creates the iterator before it sets the epoch).
        batches = self._all_batches()
        if self.num_replicas > 1:
            if self.shuffle:  # training: every rank gets the same number of batches
                per_rank = math.ceil(len(batches) / self.num_replicas)
                batches = (batches * 2)[: per_rank * self.num_replicas]
            # evaluation is not padded: every review is evaluated exactly once across ranks
            batches = batches[self.rank::self.num_replicas]
        resume, self._resume = self._resume, None
        if resume is not None and resume[0] == self.epoch:
            batches = batches[resume[1]:]
        yield from batches

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """Make the next iteration of `epoch` start after its first `batches_done` batches."""
        self._resume = (epoch, batches_done)

    def __len__(self) -> int:
        n = len(self.lengths)
        if not self.shuffle:
            count = math.ceil(n / self.batch_size)
        else:  # chunked batching leaves one short batch per chunk, kept unless drop_last
            sizes = [min(self.chunk, n - s) for s in range(0, n, self.chunk)]
            count = sum(c // self.batch_size + (0 if self.drop_last or c % self.batch_size == 0 else 1)
                        for c in sizes)
        if not self.shuffle and self.num_replicas > 1:  # unpadded evaluation shards
            return len(range(self.rank, count, self.num_replicas))
        return math.ceil(count / self.num_replicas)


class ResumableDataLoader(DataLoader):
    """A DataLoader over a BucketBatchSampler that Lightning can checkpoint inside an epoch.

    The position saved is the number of batches the trainer has *trained* this epoch, read from
    `batches_done()` (the trainer's own progress counter): counting batches drawn from the iterator
    would be off by whatever was prefetched.
    """

    def __init__(self, *args, batches_done: Callable[[], int], **kwargs):
        super().__init__(*args, **kwargs)
        self.batches_done = batches_done

    def state_dict(self) -> dict:
        return {"epoch": int(self.batch_sampler.epoch), "batches_done": int(self.batches_done())}

    def load_state_dict(self, state: dict) -> None:
        self.batch_sampler.set_epoch(state["epoch"])
        self.batch_sampler.resume_at(state["epoch"], state["batches_done"])


class _EpochSetter:
    def __init__(self, target: BucketBatchSampler):
        self.target = target

    def set_epoch(self, epoch: int) -> None:
        self.target.set_epoch(epoch)


class PadCollate:
    """Pads a batch to its longest review; `lengths` lets models ignore the padding exactly."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, items):
        ids, labels, index = zip(*items, strict=True)
        lengths = torch.tensor([len(x) for x in ids])
        input_ids = torch.full((len(ids), int(lengths.max())), self.pad_id, dtype=torch.long)
        for row, x in enumerate(ids):
            input_ids[row, : len(x)] = x
        attention_mask = (torch.arange(input_ids.shape[1])[None, :] < lengths[:, None]).long()
        return {"input_ids": input_ids, "attention_mask": attention_mask, "lengths": lengths,
                "labels": torch.tensor(labels), "index": torch.tensor(index)}
