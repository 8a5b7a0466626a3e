"""Reviews -> model probabilities, batched, for any loaded run (predict, evaluate, explain).

Also rebuilds a run's own split from its config (same source, same frozen rule, same limits) and
refuses to go on when the rebuilt split's fingerprint differs from the one the run recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from imdb_lm.data import splits as splits_mod
from imdb_lm.data.batching import BucketBatchSampler, PadCollate, TokenizedReviews
from imdb_lm.data.sources import load_source
from imdb_lm.errors import UserError
from imdb_lm.models.frozen import FrozenForward
from imdb_lm.runs.checkpoint import LoadedRun


@dataclass
class Reviews:
    texts: list[str]
    labels: list[int] | None
    hashes: list[str]

    def __len__(self) -> int:
        return len(self.texts)


def encode(run: LoadedRun, reviews: Reviews) -> TokenizedReviews:
    ids = run.tokenizer.encode(reviews.texts)
    labels = reviews.labels if reviews.labels is not None else [0] * len(ids)
    return TokenizedReviews(ids, labels, reviews.hashes, reviews.texts)


def loader(run: LoadedRun, data: TokenizedReviews, batch_size: int) -> DataLoader:
    """Length-sorted batches (least padding); `index` in each batch maps rows back to reviews."""
    sampler = BucketBatchSampler(data.lengths, batch_size, shuffle=False)
    return DataLoader(data, batch_sampler=sampler, collate_fn=PadCollate(run.tokenizer.pad_id))


@torch.inference_mode()
def predict_probs(run: LoadedRun, data: TokenizedReviews, batch_size: int = 64, compile: bool = False) -> list[float]:
    """P(positive) per review, in the dataset's order. `compile`: through torch.compile with frozen
    weights (imdb_lm/models/frozen.py), faster over many reviews after compiling once."""
    probs = [0.0] * len(data)
    if compile:
        forward = FrozenForward(run.model, run.autocast)
    else:
        def forward(ids, mask, lengths):
            with run.autocast():
                return run.model(ids, mask, lengths)
    for batch in loader(run, data, batch_size):
        batch = {k: v.to(run.device) for k, v in batch.items()}
        logits = forward(batch["input_ids"], batch["attention_mask"], batch["lengths"])
        for i, p in zip(batch["index"].tolist(), logits.float().softmax(-1)[:, 1].tolist(), strict=True):
            probs[i] = p
    return probs


def data_args_of(data_cfg) -> dict:
    return {"source": str(data_cfg.source), "path": data_cfg.get("path"),
            "hf_name": str(data_cfg.get("hf_name", "stanfordnlp/imdb")),
            "text_column": str(data_cfg.get("text_column", "text")),
            "label_column": str(data_cfg.get("label_column", "label"))}


def run_split(run: LoadedRun, split: str = "test", check: bool = True) -> Reviews:
    """The run's own `split`, rebuilt by the frozen rule and checked against its recorded fingerprint."""
    if split not in ("train", "val", "test"):
        raise UserError(f"split={split!r} is unknown; choose train, val or test")
    data = run.cfg.data
    parts = load_source(**data_args_of(data))
    fractions = (float(data.get("val_fraction", 0.1)), float(data.get("test_fraction", 0.1)))
    ds = splits_mod.subsample(splits_mod.frozen_split(parts, *fractions)[split], data.get(f"{split}_limit"))
    reviews = Reviews(list(ds["text"]), list(ds["label"]), list(ds["hash"]))
    recorded = (run.record or {}).get("splits", {}).get(split)
    if check and recorded:
        found = splits_mod.fingerprint(reviews.hashes).as_dict()
        if found != recorded:
            raise UserError(f"{run.run_dir}/metrics.json: the {split} split rebuilt from data.source="
                            f"{data.source} has fingerprint {found}, but the run recorded {recorded}; "
                            "the data changed since training, so its numbers are not comparable (restore "
                            "the original data, or evaluate it as another source)")
    return reviews


def source_reviews(data_args: dict) -> Reviews:
    """Every labelled row of a source (all its parts): for out-of-domain evaluation."""
    parts = load_source(**data_args)
    texts, labels = [], []
    for name in sorted(parts):
        texts += list(parts[name]["text"])
        labels += list(parts[name]["label"])
    return Reviews(texts, labels, [splits_mod.review_hash(t) for t in texts])
