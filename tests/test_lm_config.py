"""task=lm in the run key and in the data: a classifier's key is the one it always had; the LM's
corpus is framed as imdb_lm/lm/data.py says."""

from __future__ import annotations

import pytest
import torch

from imdb_lm.config.compose import compose_train
from imdb_lm.lm.data import LMDataModule, start_tokens
from imdb_lm.runs import key as run_key

CLASSIFIER = ["model=bigru", "optimizer=adam", "seed=1", "trainer.precision=32-true", "data.train_limit=1000"]
LM = ["task=lm", "model=gru_lm", "seed=1", "trainer.precision=32-true"]


def key_of(*overrides: str) -> str:
    return run_key.config_key(compose_train(list(overrides)))


def test_a_classifier_key_is_unchanged_by_the_task_axis():
    # tests/test_run_key.py pins this config's key; naming the default task changes nothing
    assert key_of(*CLASSIFIER, "task=classifier") == key_of(*CLASSIFIER)
    assert not {"task", "lm"} & set(run_key.key_fields(compose_train(CLASSIFIER)))


@pytest.mark.parametrize("override", ["lm.conditional=true", "lm.unknown_share=0.3", "lm.loss_chunk=512",
                                      "model.size=tiny", "model=lstm_lm", "data.max_length=128"])
def test_the_lm_options_enter_the_key(override):
    fields = run_key.key_fields(compose_train(LM))
    assert fields["task"] == "lm" and fields["lm"]["conditional"] is False
    assert key_of(*LM, override) != key_of(*LM)


def test_the_corpus_is_framed_per_review_and_the_conditional_start_tokens(tmp_path):
    data = LMDataModule(source="bundled", tokenizer="pretrained", pretrained="bundled", max_length=24,
                        truncation="head", batch_size=8, train_limit=400, val_limit=40, test_limit=40,
                        cache_dir=str(tmp_path), conditional=True, unknown_share=0.15)
    data.setup("fit")
    tokenizer = data.tokenizer
    starts = start_tokens(tokenizer)
    cls, sep = tokenizer.prefix[0], tokenizer.suffix[0]
    train = data.datasets["train"]
    first = [int(ids[0]) for ids in train.input_ids]
    unknown = sum(t == starts["unknown"] for t in first) / len(first)
    assert 0.08 < unknown < 0.22  # ~15% of reviews, by review hash
    for ids, label in zip(train.input_ids, train.labels, strict=True):
        assert int(ids[0]) in (starts["unknown"], starts[("negative", "positive")[label]])
    for split in ("val", "test"):
        assert all(int(ids[0]) == starts["unknown"] for ids in data.datasets[split].input_ids)
        assert len(data.char_counts[split]) == len(data.datasets[split])
    # a review that fits ends with [SEP]; a cut one is its first 23 wordpieces, no end
    plain = LMDataModule(source="bundled", tokenizer="pretrained", pretrained="bundled", max_length=24,
                         truncation="head", batch_size=8, train_limit=400, val_limit=40, test_limit=40,
                         cache_dir=str(tmp_path))
    plain.setup("fit")
    for ids, text in zip(plain.datasets["val"].input_ids, plain.datasets["val"].texts, strict=True):
        pieces = tokenizer._raw([text])[0]
        assert int(ids[0]) == cls and len(ids) <= 24
        assert ids.tolist()[1:] == (pieces + [sep] if len(pieces) <= 22 else pieces[:23])
    assert torch.equal(plain.datasets["train"].input_ids[5][1:], train.input_ids[5][1:])
