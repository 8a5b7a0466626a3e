"""First-time tokenization throughput of both tokenizers, and the tokenized-data cache.

Throughput is what the cache build does per review (`encode` over batches of 1,000 texts), timed
after the word vocabulary is trained (reported apart). The cache check builds a small data module
in a temporary cache folder, then builds a second one with the same settings: it must find the
cache and skip tokenization.
"""

from __future__ import annotations

import tempfile
import time

from imdb_lm.data.datamodule import IMDBDataModule
from imdb_lm.data.tokenize import PretrainedTokenizer, WordTokenizer
from imdb_lm.models.pretrained import resolve_checkpoint


def _encode_rate(encode, texts: list[str]) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), 1000):
        encode(texts[i:i + 1000])
    return len(texts) / (time.perf_counter() - start)


def tokenizer_throughput(texts: list[str], max_length: int, pretrained: str = "bundled") -> dict:
    start = time.perf_counter()
    word = WordTokenizer.train(texts, 30_000, 2, max_length, "head")
    vocab_seconds = time.perf_counter() - start
    ckpt = resolve_checkpoint(pretrained)
    subword = PretrainedTokenizer(ckpt.source, min(max_length, 512), "head_tail", **ckpt.kwargs())
    return {"reviews": len(texts), "word_vocab_seconds": vocab_seconds,
            "word_reviews_per_s": _encode_rate(word.encode, texts),
            "pretrained_reviews_per_s": _encode_rate(subword.encode, texts)}


def _timed_setup(kwargs: dict) -> tuple[bool, float]:
    """Whether a data module found its cache before preparing, and how long prepare + setup took."""
    datamodule = IMDBDataModule(**kwargs)
    hit = datamodule.cache_hit
    start = time.perf_counter()
    datamodule.prepare_data()
    datamodule.setup("fit")
    return hit, time.perf_counter() - start


def cache_check(data_kwargs: dict, limits: tuple[int, int, int] = (2000, 250, 250)) -> dict:
    """Build once, then again with the same settings: the second must be a cache hit."""
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as root:
        kwargs = {**data_kwargs, "cache_dir": root, "train_limit": limits[0], "val_limit": limits[1],
                  "test_limit": limits[2]}
        hit_before, build_seconds = _timed_setup(kwargs)
        hit_after, reload_seconds = _timed_setup(kwargs)
    return {"tokenizer": data_kwargs.get("tokenizer"), "reviews": sum(limits), "first_cache_hit": hit_before,
            "first_build_seconds": build_seconds, "second_cache_hit": hit_after,
            "second_setup_seconds": reload_seconds}
