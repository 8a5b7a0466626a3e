"""Tiny checkpoints trained once per test session through the real CLI, shared by the predict,
evaluate and explain tests (a file lock keeps parallel workers from training twice)."""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock

from tests.helpers import LM_TINY, TINY, run_cli, run_dirs

# Real bundled data, real bundled MiniLM; small enough to train in well under a minute each. Both keep
# debug=smoke's val/test limits, so they share the test split (explain compares them on it).
RECIPES = {
    "bigru": [*TINY],
    "transformer": [*TINY, "model=transformer", "data.max_length=32", "data.train_limit=64",
                    "trainer.limit_train_batches=2",
                    "callbacks.attributions.n_steps=4", "callbacks.attributions.n_reviews=2"],
    # language models (task=lm) for generate: an unconditional GRU, a conditional transformer
    "lm": [*LM_TINY, "model=gru_lm"],
    "lm_conditional": [*LM_TINY, "model=transformer_lm", "lm.conditional=true"],
}


def trained_run(cache: Path, kind: str, fresh: bool = False) -> Path:
    """The run folder of a tiny `kind` model (trained on first use in this session). fresh=True: the
    same recipe trained by a new interpreter instead of the forked runner (tests/cli_runner.py)."""
    home = cache.parent / f"trained-{kind}{'-fresh' if fresh else ''}"
    with FileLock(str(home) + ".lock"):
        found = run_dirs(home) if home.exists() else []
        if not found:
            home.mkdir(parents=True, exist_ok=True)
            run_cli("imdb_lm.train", *RECIPES[kind], cwd=home, cache=cache, fresh=fresh)
            found = run_dirs(home)
    return found[0]
