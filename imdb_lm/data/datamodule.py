"""IMDBDataModule: the frozen splits, both tokenizers, and the tokenized-data cache.

The cache holds the tokenized splits (Arrow, via `datasets`), the vocabulary and the split
fingerprints under a key made of everything that changes them. It is built in a temporary folder
and moved into place in one rename, under a file lock, so a killed build leaves nothing a later run
trusts and two processes that need the same cache build it once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import datasets
import lightning as L
import torch
from filelock import FileLock
from torch.utils.data import DataLoader

from imdb_lm.data import splits as splits_mod
from imdb_lm.data.batching import BucketBatchSampler, PadCollate, ResumableDataLoader, TokenizedReviews
from imdb_lm.data.options import check_data_options
from imdb_lm.data.sources import load_source, source_identity
from imdb_lm.data.tokenize import PretrainedTokenizer, WordTokenizer
from imdb_lm.errors import UserError
from imdb_lm.models.pretrained import resolve_checkpoint

CACHE_VERSION = 4  # 3: fingerprints name the full train split (train_full); 4: truncated_share
BUILD_DELAY_ENV = "IMDB_LM_CACHE_BUILD_DELAY_S"
SPLITS = ("train", "val", "test")


class IMDBDataModule(L.LightningDataModule):
    def __init__(self, source: str = "bundled", path: str | None = None, hf_name: str = "stanfordnlp/imdb",
                 text_column: str = "text", label_column: str = "label", tokenizer: str = "word",
                 pretrained: str | None = None, vocab_size: int = 30_000, min_freq: int = 2,
                 max_length: int = 400, truncation: str = "head", batch_size: int = 64,
                 eval_batch_size: int | None = None, num_workers: int = 0, pin_memory: bool | None = None,
                 val_fraction: float = 0.1, test_fraction: float = 0.1, train_limit: int | None = None,
                 val_limit: int | None = None, test_limit: int | None = None,
                 cache_dir: str = ".cache/imdb_lm", seed: int = 0, chunk_batches: int = 50):
        super().__init__()
        self.source, self.path, self.hf_name = source, path, hf_name
        self.text_column, self.label_column = text_column, label_column
        self.tokenizer_kind, self.pretrained = tokenizer, pretrained
        self.vocab_size_limit, self.min_freq = vocab_size, min_freq
        self.max_length, self.truncation = max_length, truncation
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size * 2
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.fractions = (val_fraction, test_fraction)
        self.limits = {"train": train_limit, "val": val_limit, "test": test_limit}
        self.cache_root, self.seed, self.chunk_batches = Path(cache_dir), seed, chunk_batches
        self._validate()
        self.tokenizer: WordTokenizer | PretrainedTokenizer | None = None
        self.datasets: dict[str, TokenizedReviews] = {}
        self.fingerprints: dict[str, dict] = {}
        self.truncated_share: dict[str, float] | None = None  # per split, from the cache's meta.json
        self.built_here = False  # whether this process built the cache (else it found it ready)

    # ---- configuration ---------------------------------------------------------------------
    def _validate(self) -> None:
        check_data_options(self.source, self.tokenizer_kind, self.pretrained, self.truncation, self.max_length,
                           self.batch_size, self.eval_batch_size, self.vocab_size_limit, self.min_freq,
                           **{f"{k}_limit": v for k, v in self.limits.items()})

    def cache_spec(self) -> dict:
        """Everything that changes the tokenized data: its hash is the cache key."""
        tok = ({"kind": "word", "vocab_size": self.vocab_size_limit, "min_freq": self.min_freq}
               if self.tokenizer_kind == "word" else {"kind": "pretrained", "name": self.pretrained})
        return {"version": CACHE_VERSION, "rule": splits_mod.RULE, "fractions": self.fractions,
                "data": source_identity(self.source, self.path, self.hf_name),
                "columns": [self.text_column, self.label_column], "limits": self.limits,
                "tokenizer": tok, "max_length": self.max_length, "truncation": self.truncation}

    @property
    def cache_dir(self) -> Path:
        key = hashlib.sha256(json.dumps(self.cache_spec(), sort_keys=True).encode()).hexdigest()[:16]
        return self.cache_root / f"{self.source}-{self.tokenizer_kind}-{key}"

    # ---- building -------------------------------------------------------------------------
    def _load_tokenizer(self, folder: Path | None = None):
        if self.tokenizer_kind == "pretrained":
            ckpt = resolve_checkpoint(self.pretrained)
            return PretrainedTokenizer(ckpt.source, self.max_length, self.truncation, **ckpt.kwargs())
        return WordTokenizer.load(folder / "tokenizer.json", self.max_length, self.truncation)

    def _build(self, target: Path) -> None:
        parts = load_source(self.source, self.path, self.hf_name, self.text_column, self.label_column)
        full = splits_mod.frozen_split(parts, *self.fractions)
        split = {name: splits_mod.subsample(ds, self.limits[name]) for name, ds in full.items()}
        empty = [name for name, ds in split.items() if len(ds) == 0]
        if empty:
            raise UserError(f"data.source={self.source}: the frozen split leaves {', '.join(empty)} empty "
                            f"({', '.join(f'{n}={len(ds)}' for n, ds in split.items())} reviews); "
                            "give more labelled reviews (at least ~20 per label)")
        if self.tokenizer_kind == "word":
            tokenizer = WordTokenizer.train(list(split["train"]["text"]), self.vocab_size_limit,
                                            self.min_freq, self.max_length, self.truncation)
        else:
            tokenizer = self._load_tokenizer()
        self.cache_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=self.cache_root))
        try:
            if os.environ.get(BUILD_DELAY_ENV):  # drills and tests: widen the window for a kill
                time.sleep(float(os.environ[BUILD_DELAY_ENV]))
            if self.tokenizer_kind == "word":
                tokenizer.save(tmp / "tokenizer.json")
            for name, ds in split.items():
                ds = ds.map(lambda b: {"input_ids": tokenizer.encode(b["text"])}, batched=True,
                            batch_size=1000, desc=f"tokenize {name}")
                ds.save_to_disk(str(tmp / name))
            # train_full: the whole train split a train_limit subset is drawn from. Subsets are nested
            # (splits.subsample), so runs on different subsets of one parent are still compared on
            # the same val and test reviews (data-efficiency curves, low-fidelity grids).
            prints = {**splits_mod.fingerprints(split), "train_full": splits_mod.fingerprints(full)["train"]}
            # The share of reviews the max_length cuts, per split: 128 words and 128 wordpieces are
            # not the same text, so a comparison at one length states what each family lost.
            cut = {name: tokenizer.cut_share(list(ds["text"])) for name, ds in split.items()}
            meta = {"spec": self.cache_spec(), "fingerprints": prints,
                    "counts": {n: len(ds) for n, ds in split.items()}, "truncated_share": cut}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            os.replace(tmp, target)  # atomic: readers see all of it or none of it
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def prepare_data(self) -> None:
        target = self.cache_dir
        if (target / "meta.json").is_file():
            return
        self.cache_root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if not (target / "meta.json").is_file():
                if target.exists():  # a folder without meta.json was never completed
                    shutil.rmtree(target)
                # Holding the lock, any temporary folder of this key is a killed build's leftover.
                for stale in self.cache_root.glob(f".tmp-{target.name}-*"):
                    shutil.rmtree(stale, ignore_errors=True)
                self._build(target)
                self.built_here = True

    @property
    def cache_hit(self) -> bool:
        return (self.cache_dir / "meta.json").is_file()

    # ---- loading --------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        folder = self.cache_dir
        if not (folder / "meta.json").is_file():
            self.prepare_data()
        meta = json.loads((folder / "meta.json").read_text())
        self.fingerprints = meta["fingerprints"]
        self.truncated_share = meta.get("truncated_share")
        self.tokenizer = self._load_tokenizer(folder)
        for name in SPLITS:
            ds = datasets.load_from_disk(str(folder / name))
            self.datasets[name] = TokenizedReviews(ds["input_ids"], list(ds["label"]), list(ds["hash"]),
                                                   list(ds["text"]))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_id

    def hashes(self, split: str) -> list[str]:
        return self.datasets[split].hashes

    def texts(self, split: str) -> list[str]:
        """The cleaned review texts (for showing reviews; models see only `input_ids`)."""
        return self.datasets[split].texts

    def save_tokenizer(self, run_dir: str | Path) -> None:
        """Keep the vocabulary with the run so a checkpoint can be used without the cache."""
        if self.tokenizer_kind == "word":
            target = Path(run_dir) / "tokenizer.json"
            tmp = target.with_name(f".{target.name}.tmp")  # a killed write never leaves half a file
            self.tokenizer.save(tmp)
            os.replace(tmp, target)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        data = self.datasets[split]
        trainer = getattr(self, "trainer", None)
        replicas = trainer.world_size if trainer is not None else 1
        rank = trainer.global_rank if trainer is not None else 0
        # Every split is sharded across processes: training batches padded to equal counts, evaluation
        # unpadded so each review is counted once (metrics are synchronised by torchmetrics).
        sampler = BucketBatchSampler(data.lengths, self.batch_size if shuffle else self.eval_batch_size,
                                     shuffle=shuffle, seed=self.seed, chunk_batches=self.chunk_batches,
                                     num_replicas=replicas, rank=rank)
        pin = torch.cuda.is_available() if self.pin_memory is None else self.pin_memory
        kwargs = {"batch_sampler": sampler, "collate_fn": PadCollate(self.pad_id),
                  "num_workers": self.num_workers, "pin_memory": pin, "persistent_workers": self.num_workers > 0}
        if shuffle and trainer is not None:
            # Lightning's own count of trained batches (see ResumableDataLoader).
            return ResumableDataLoader(
                data, batches_done=lambda: trainer.fit_loop.epoch_loop.batch_progress.current.processed, **kwargs)
        return DataLoader(data, **kwargs)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
