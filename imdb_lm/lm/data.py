"""The language-model corpus: the frozen split's reviews as sequences of MiniLM wordpieces.

Each review is one sequence: a start token, then its first wordpieces, `data.max_length` tokens at
most, and [SEP] where the whole review fits (a cut review has no end). No state crosses reviews, so
every family sees the same context. The start token is [CLS]; with `lm.conditional=true` it is the
review's label token on the train split ([unused1] positive, [unused0] negative), or the unknown
token ([unused2]) for a fixed share of train reviews (chosen by review hash, the same in every run)
and for every val and test review, so held-out perplexity is that of the unconditional use.

The start token is never predicted; every later token is. Bits per character divide by the
characters of the review text those wordpieces cover (MiniLM lowercases and strips accents, so it
is the lowercased text), plus one per [SEP].
"""

from __future__ import annotations

import hashlib

import torch

from imdb_lm.data.datamodule import IMDBDataModule
from imdb_lm.data.tokenize import PretrainedTokenizer
from imdb_lm.lm.options import LABEL_TOKENS, LABELS, UNKNOWN
from imdb_lm.models.pretrained import resolve_checkpoint

FRAMING = "lm: [CLS] + first max_length-1 wordpieces, [SEP] if the review fits"  # enters the cache key


class LMTokenizer(PretrainedTokenizer):
    """MiniLM's WordPiece framed for a language model: [CLS] + the head of the review (+ [SEP])."""

    def encode(self, texts: list[str]) -> list[list[int]]:
        start, end = self.prefix[:1], self.suffix[:1]
        room = self.max_length - len(start)
        return [start + ids[:room] + (end if len(ids) < room else []) for ids in self._raw(texts)]

    def cut_share(self, texts: list[str]) -> float:
        """The share of reviews that do not fit with their start and end tokens."""
        raw = self._raw(texts)
        return sum(len(ids) + 2 > self.max_length for ids in raw) / len(raw) if raw else 0.0

    def covered_chars(self, texts: list[str]) -> list[int]:
        """Per text, the characters its kept wordpieces span (+1 for [SEP]): bits per character's divisor."""
        backend = self.hf.backend_tokenizer
        backend.no_truncation()
        backend.no_padding()
        room = self.max_length - 1
        counts = []
        for encoding in backend.encode_batch(list(texts), add_special_tokens=False):
            kept = encoding.offsets[:room]
            counts.append((kept[-1][1] if kept else 0) + (1 if len(encoding.ids) < room else 0))
        return counts

    def token_id(self, token: str) -> int:
        return int(self.hf.convert_tokens_to_ids(token))


def start_tokens(tokenizer: LMTokenizer) -> dict[str, int]:
    """The id of each label's start token, and of the unknown one."""
    return {name: tokenizer.token_id(token) for name, token in LABEL_TOKENS.items()}


def unknown_by_hash(review_hash: str, share: float) -> bool:
    """Whether a train review gets the unknown token: fixed per review (its text), in every run. The
    review hash is hashed again: the split rule ranks reviews by that hash, so its own digits are
    not uniform within a split (the train split holds none of the lowest)."""
    draw = hashlib.sha256(f"lm-unknown:{review_hash}".encode()).hexdigest()
    return int(draw[:8], 16) / 16**8 < share


class LMDataModule(IMDBDataModule):
    """IMDBDataModule with the language-model framing (its own cache entry) and the start tokens."""

    def __init__(self, *args, conditional: bool = False, unknown_share: float = 0.15, **kwargs):
        kwargs.pop("_target_", None)
        super().__init__(*args, **kwargs)
        self.conditional, self.unknown_share = conditional, unknown_share
        self.char_counts: dict[str, list[int]] = {}

    def cache_spec(self) -> dict:
        return {**super().cache_spec(), "framing": FRAMING}

    def _load_tokenizer(self, folder=None) -> LMTokenizer:
        ckpt = resolve_checkpoint(self.pretrained, option="data.pretrained")
        return LMTokenizer(ckpt.source, self.max_length, self.truncation, **ckpt.kwargs())

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        super().setup(stage)
        for split in ("val", "test"):
            self.char_counts[split] = self.tokenizer.covered_chars(self.datasets[split].texts)
        if self.conditional:
            self._set_start_tokens()

    def _set_start_tokens(self) -> None:
        ids = start_tokens(self.tokenizer)
        for split, data in self.datasets.items():
            for row, (label, review) in enumerate(zip(data.labels, data.hashes, strict=True)):
                unknown = split != "train" or unknown_by_hash(review, self.unknown_share)
                data.input_ids[row] = torch.cat([torch.tensor([ids[UNKNOWN if unknown else LABELS[label]]]),
                                                 data.input_ids[row][1:]])
