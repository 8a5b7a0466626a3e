"""The data options a run accepts, checked without importing the data stack.

The data module checks its arguments with `check_data_options` when it is built, and the train CLI
runs the same function on a composed config before Hydra starts: a typo is reported in a second,
before `datasets`, `tokenizers` or Lightning are imported.
"""

from __future__ import annotations

from imdb_lm.errors import UserError

SOURCES = ("bundled", "hf", "aclimdb", "csv")
EXTRA_SOURCES = ("rotten_tomatoes",)  # evaluation only: the bundled critic snippets
TOKENIZERS = ("word", "pretrained")
TRUNCATIONS = ("head", "tail", "head_tail")


def check_data_options(source: str = "bundled", tokenizer: str = "word", pretrained: str | None = None,
                       truncation: str = "head", max_length: int = 400, batch_size: int = 64,
                       eval_batch_size: int | None = None, vocab_size: int = 30_000, min_freq: int = 2,
                       train_limit: int | None = None, val_limit: int | None = None,
                       test_limit: int | None = None, **_other) -> None:
    if source not in SOURCES + EXTRA_SOURCES:
        raise UserError(f"data.source={source!r} is unknown; choose one of {', '.join(SOURCES)}")
    if tokenizer not in TOKENIZERS:
        raise UserError(f"data.tokenizer={tokenizer!r} is unknown; choose word or pretrained")
    if tokenizer == "pretrained" and not pretrained:
        raise UserError("data.pretrained is empty; the pretrained tokenizer needs a checkpoint name")
    if truncation not in TRUNCATIONS:
        raise UserError(f"data.truncation={truncation!r} is unknown; choose one of {', '.join(TRUNCATIONS)}")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 8:
        raise UserError(f"data.max_length={max_length} is too small; use at least 8 tokens")
    for name, value in (("data.batch_size", batch_size), ("data.eval_batch_size", eval_batch_size)):
        if value is None and name == "data.eval_batch_size":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise UserError(f"{name}={value} must be a positive integer")
    if tokenizer == "word" and (vocab_size < 3 or min_freq < 1):
        raise UserError("data.vocab_size must be >= 3 and data.min_freq >= 1")
    for name, limit in (("train", train_limit), ("val", val_limit), ("test", test_limit)):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
            raise UserError(f"data.{name}_limit={limit} must be a positive integer or null")
