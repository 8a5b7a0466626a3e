"""The pretrained tokenizer cuts whole reviews by our truncation rule, whatever the checkpoint's own
tokenizer file says about truncation and padding."""

from __future__ import annotations

from imdb_lm.data.tokenize import PretrainedTokenizer
from imdb_lm.models.pretrained import resolve_checkpoint


def test_bundled_tokenizer_keeps_head_and_tail_of_a_long_review_and_never_pads():
    tok = PretrainedTokenizer(resolve_checkpoint("bundled").source, 256, "head_tail")
    backend = tok.hf.backend_tokenizer
    # what the bundled checkpoint's tokenizer.json ships with: cut at 128 tokens, padded to 128
    backend.enable_truncation(128)
    backend.enable_padding(length=128)
    long_review = " ".join(f"word{i}" for i in range(400)) + " the ending was superb"
    short_review = "a short review"
    full = tok.hf(long_review, add_special_tokens=False)["input_ids"]
    assert len(full) > 400  # each wordN is several word pieces
    backend.enable_truncation(128)  # the HF call above reset them; set them again for encode
    backend.enable_padding(length=128)
    ids_long, ids_short = tok.encode([long_review, short_review])
    cls, sep = tok.hf.cls_token_id, tok.hf.sep_token_id
    room = 256 - 2
    assert len(ids_long) == 256
    assert ids_long == [cls, *full[:room // 4], *full[len(full) - (room - room // 4):], sep]
    assert tok.hf.convert_ids_to_tokens(ids_long[-5:-1]) == ["the", "ending", "was", "superb"]
    assert ids_short == [cls, *tok.hf(short_review, add_special_tokens=False)["input_ids"], sep]
    assert tok.pad_id not in ids_short
