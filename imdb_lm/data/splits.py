"""The frozen split rule and its fingerprint.

Each review is identified by a hash of its normalised text. Within each label, the distinct hashes
are ranked and the first `val_fraction` go to val, the next `test_fraction` to test, the rest to
train. The rule needs no stored index, is independent of row order, machine and library versions,
keeps duplicate reviews in one split, and balances labels exactly (a plain hash-bucket rule left
the bundled val split at 47.8% positive). Every model family and run gets the same splits.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the rule itself needs no data stack: predict hashes reviews without it
    import datasets

RULE = "per label, rank sha256(normalised text); first val_fraction -> val, next test_fraction -> test"


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def review_hash(text: str) -> str:
    """Stable id of a review (also the key of saved predictions)."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True)
class Fingerprint:
    count: int
    digest: str

    def as_dict(self) -> dict:
        return {"count": self.count, "digest": self.digest}


def fingerprint(hashes: list[str]) -> Fingerprint:
    """Count + digest of the sorted member hashes: equal iff the splits hold the same reviews."""
    joined = "\n".join(sorted(hashes)).encode()
    return Fingerprint(len(hashes), hashlib.sha256(joined).hexdigest()[:16])


def _with_hash(ds: datasets.Dataset) -> datasets.Dataset:
    return ds.add_column("hash", [review_hash(t) for t in ds["text"]])


def _assign(hashes: list[str], labels: list[int], fractions: dict[str, float]) -> list[str | None]:
    """Split name per row; None for reviews whose duplicates disagree on the label (dropped)."""
    labels_of: dict[str, set[int]] = defaultdict(set)
    for h, y in zip(hashes, labels, strict=True):
        labels_of[h].add(y)
    split_of: dict[str, str] = {}
    for label in sorted({y for y in labels}):
        ranked = sorted(h for h, ys in labels_of.items() if ys == {label})
        start = 0
        for name, frac in fractions.items():
            end = start + round(frac * len(ranked))
            split_of.update((h, name) for h in ranked[start:end])
            start = end
        split_of.update((h, "train") for h in ranked[start:])
    return [split_of.get(h) for h in hashes]


def frozen_split(parts: dict[str, datasets.Dataset], val_fraction: float = 0.1,
                 test_fraction: float = 0.1) -> dict[str, datasets.Dataset]:
    """Apply the rule. With an official test part (hf, aclimdb) it is kept as test, val is carved
    from train by the same rule, and train reviews whose text is also in test are dropped."""
    train = _with_hash(parts["train"])
    if "test" in parts:
        test = _with_hash(parts["test"])
        in_test = set(test["hash"])
        train = train.filter(lambda batch: [h not in in_test for h in batch["hash"]], batched=True)
        split_of = _assign(list(train["hash"]), list(train["label"]), {"val": val_fraction})
        return {"train": train.select([i for i, s in enumerate(split_of) if s == "train"]),
                "val": train.select([i for i, s in enumerate(split_of) if s == "val"]),
                "test": test}
    hashes, labels = list(train["hash"]), list(train["label"])
    split_of = _assign(hashes, labels, {"val": val_fraction, "test": test_fraction})
    return {name: train.select([i for i, s in enumerate(split_of) if s == name])
            for name in ("train", "val", "test")}


def subsample(ds: datasets.Dataset, limit: int | None) -> datasets.Dataset:
    """A deterministic, label-mixed subset of `limit` reviews (hash order, not file order: the
    bundled file is sorted by label, so its first rows are all negative). Subsets are nested: a
    smaller limit takes a prefix of the same order, so every subset of 500 lies in the one of 1,000."""
    if limit is None or limit >= len(ds):
        return ds
    hashes = list(ds["hash"])
    # Rank by hash digits the split rule's ranking does not lead with, so the subset is spread.
    order = sorted(range(len(ds)), key=lambda i: hashes[i][::-1])
    return ds.select(sorted(order[:limit]))


def fingerprints(splits: dict[str, datasets.Dataset]) -> dict[str, dict]:
    return {name: fingerprint(list(ds["hash"])).as_dict() for name, ds in splits.items()}
