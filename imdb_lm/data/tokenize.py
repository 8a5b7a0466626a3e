"""Both tokenizers, one interface: text -> ids truncated to `max_length` (head, tail or head_tail).

Recurrent models use a word-level tokenizer trained on the train split only (`tokenizers`);
transformers use the checkpoint's pretrained tokenizer with its special tokens kept around the
truncated text.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from imdb_lm.data.options import TRUNCATIONS
from imdb_lm.errors import UserError

PAD, UNK = "[PAD]", "[UNK]"


def truncate(ids: list[int], limit: int, mode: str) -> list[int]:
    """Keep `limit` ids: the start, the end, or both (a quarter head, the rest tail, as Sun et al.
    2019 found best for long IMDB reviews: 128 + 382 of 510)."""
    if len(ids) <= limit:
        return ids
    if mode == "head":
        return ids[:limit]
    if mode == "tail":
        return ids[len(ids) - limit:]
    if mode == "head_tail":
        head = limit // 4
        return ids[:head] + ids[len(ids) - (limit - head):]
    raise UserError(f"data.truncation={mode!r} is unknown; choose one of {', '.join(TRUNCATIONS)}")


def _share_over(lengths: list[int], limit: int) -> float:
    return sum(n > limit for n in lengths) / len(lengths) if lengths else 0.0


def _encode_batch(tokenizer: Tokenizer, texts) -> list:
    """Batch encoding without character offsets when the library offers it (faster; same ids)."""
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    return encode(list(texts), add_special_tokens=False)


class WordTokenizer:
    """Lower-cased word and punctuation tokens; id 0 is padding, 1 unknown."""

    def __init__(self, tokenizer: Tokenizer, max_length: int, truncation: str):
        self.tokenizer, self.max_length, self.truncation = tokenizer, max_length, truncation
        self.pad_id = tokenizer.token_to_id(PAD)
        self.vocab_size = tokenizer.get_vocab_size()

    @classmethod
    def train(cls, texts, vocab_size: int, min_freq: int, max_length: int, truncation: str) -> WordTokenizer:
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()])
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_freq,
                                            special_tokens=[PAD, UNK], show_progress=False)
        tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
        return cls(tok, max_length, truncation)

    @classmethod
    def load(cls, path: str | Path, max_length: int, truncation: str) -> WordTokenizer:
        return cls(Tokenizer.from_file(str(path)), max_length, truncation)

    def save(self, path: str | Path) -> None:
        self.tokenizer.save(str(path))

    def encode(self, texts: list[str]) -> list[list[int]]:
        encoded = _encode_batch(self.tokenizer, texts)
        return [truncate(e.ids, self.max_length, self.truncation) or [self.tokenizer.token_to_id(UNK)]
                for e in encoded]

    def cut_share(self, texts: list[str]) -> float:
        """The share of `texts` longer than max_length, i.e. cut by the truncation rule."""
        return _share_over([len(e.ids) for e in _encode_batch(self.tokenizer, texts)], self.max_length)

    def tokens(self, ids: list[int]) -> list[str]:
        return [self.tokenizer.id_to_token(i) for i in ids]


class PretrainedTokenizer:
    """A checkpoint's own tokenizer; special tokens wrap the text after truncation."""

    def __init__(self, source: str, max_length: int, truncation: str, **load_kwargs):
        from transformers import AutoTokenizer

        self.hf = AutoTokenizer.from_pretrained(source, **load_kwargs)
        limit = getattr(self.hf, "model_max_length", None)
        if limit and limit < 1_000_000 and max_length > limit:
            raise UserError(f"data.max_length={max_length} exceeds what this checkpoint allows ({limit}); "
                            f"set data.max_length<={limit}")
        self.prefix, self.suffix = self._special_frame()
        if max_length <= len(self.prefix) + len(self.suffix):
            raise UserError(f"data.max_length={max_length} leaves no room for text after the "
                            f"{len(self.prefix) + len(self.suffix)} special tokens; raise it")
        self.max_length, self.truncation = max_length, truncation
        self.pad_id = self.hf.pad_token_id if self.hf.pad_token_id is not None else 0
        self.vocab_size = len(self.hf)

    def _special_frame(self) -> tuple[list[int], list[int]]:
        """The special ids placed before and after a single text, found by encoding a probe word."""
        plain = self.hf("movie", add_special_tokens=False)["input_ids"]
        framed = self.hf("movie", add_special_tokens=True)["input_ids"]
        for start in range(len(framed) - len(plain) + 1):
            if framed[start:start + len(plain)] == plain:
                return framed[:start], framed[start + len(plain):]
        return [], []

    def encode(self, texts: list[str]) -> list[list[int]]:
        room = self.max_length - len(self.prefix) - len(self.suffix)
        return [self.prefix + truncate(ids, room, self.truncation) + self.suffix for ids in self._raw(texts)]

    def cut_share(self, texts: list[str]) -> float:
        """The share of `texts` whose wordpieces do not fit max_length with the special tokens."""
        return _share_over([len(ids) for ids in self._raw(texts)], self.max_length - len(self.prefix) - len(self.suffix))

    def _raw(self, texts: list[str]) -> list[list[int]]:
        backend = getattr(self.hf, "backend_tokenizer", None)
        if backend is not None:
            # A checkpoint's tokenizer.json may carry its own truncation and padding (the bundled
            # MiniLM: 128 tokens, padded to 128), and any call of the HF wrapper resets them to that
            # call's; the raw ids must be the whole review, cut by our rule below, never padded.
            backend.no_truncation()
            backend.no_padding()
            raw = [e.ids for e in _encode_batch(backend, texts)]
        else:
            raw = self.hf(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return raw

    def tokens(self, ids: list[int]) -> list[str]:
        return self.hf.convert_ids_to_tokens(ids)
