"""Overrides shared by the reliability tests: a tiny deterministic GRU on the real bundled data."""

from tests.helpers import TINY

# 256 train reviews in batches of 32: 8 steps per epoch, seconds per run on one CPU core.
TINY_GRU = [*TINY, "model=gru", "model.hidden_size=16", "model.embedding_dim=16", "data.batch_size=32",
            "trainer.limit_train_batches=null", "trainer.deterministic=true", "logger=none",
            "callbacks.lr_monitor=null"]
