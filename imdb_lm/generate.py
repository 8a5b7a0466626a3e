"""`python -m imdb_lm.generate ckpt=<lm run> prompt="This movie" [label=positive] n=5 seed=0`: sample
continuations from a language model trained with `python -m imdb_lm.train task=lm model=gru_lm` (or
another `*_lm` preset).

Every family samples through the same code (imdb_lm/lm/generation.py): temperature, top-k and
top-p by transformers' logits processors, one new token per step from the carried state (an RNN's
hidden state, the transformer's KV cache). A seed repeats its samples exactly. Writes one JSON
object per sample (prompt, label, text, tokens, ended, seconds) to `out` and prints the texts.
`label=` needs a model trained with lm.conditional=true (its unknown token when left away).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from imdb_lm.config.options import Option, run_main
from imdb_lm.errors import UserError

OPTIONS = [
    Option("ckpt", None, "a language-model run folder (python -m imdb_lm.train task=lm ...) or its .ckpt (required)", str),
    Option("prompt", None, "the start of the review to continue (required, not empty)", str),
    Option("label", None, "positive | negative | unknown: the label token a conditional LM starts from", str),
    Option("n", 1, "samples to draw"),
    Option("max_new_tokens", 64, "wordpieces to add at most (a sample also ends at the end-of-review token)"),
    Option("temperature", 1.0, "divides the logits before sampling (> 0; lower: more likely tokens)"),
    Option("top_k", 50, "sample among the k most likely tokens (0: all)"),
    Option("top_p", 0.95, "sample among the most likely tokens that hold this much probability (1: all)"),
    Option("seed", 0, "the sampling seed: the same seed, prompt and run give the same samples"),
    Option("device", "cpu", "cpu | cuda[:N] | auto"),
    Option("out", None, "the jsonl file to write (default: <run>/generated.jsonl, replaced)", str),
]


def check_options(cfg) -> None:
    """Every value that needs no checkpoint, checked before one is read."""
    if not cfg.ckpt:
        raise UserError("ckpt=<language-model run folder> is required (e.g. ckpt=outputs/runs/<run>)")
    if cfg.prompt is None or not str(cfg.prompt).strip():
        raise UserError('prompt is empty; give the start of a review, e.g. prompt="This movie"')
    for name, low in (("n", 1), ("max_new_tokens", 1), ("top_k", 0)):
        value = cfg[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise UserError(f"{name}={value} must be an integer >= {low}")
    if not cfg.temperature > 0:
        raise UserError(f"temperature={cfg.temperature} must be > 0")
    if not 0 < cfg.top_p <= 1:
        raise UserError(f"top_p={cfg.top_p} must be in (0, 1]")
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise UserError(f"seed={cfg.seed} must be a non-negative integer")


def generate(cfg) -> list[dict]:
    check_options(cfg)
    from imdb_lm.lm.generation import check_label, load_config

    run_dir, _, run_cfg = load_config(cfg.ckpt)  # a classifier run is refused before any weights load
    check_label(cfg.label, bool(run_cfg.lm.conditional))
    out = Path(cfg.out) if cfg.out else run_dir / "generated.jsonl"
    if out.is_dir():
        raise UserError(f"out={out} is a folder; give a file name, e.g. out={out / 'samples.jsonl'}")

    from imdb_lm.atomic import write_text
    from imdb_lm.devices import pick_device
    from imdb_lm.lm.generation import generate as sample_rows
    from imdb_lm.lm.generation import load_lm

    lm = load_lm(cfg.ckpt, pick_device(cfg.device))
    rows = sample_rows(lm, str(cfg.prompt), cfg.label, cfg.n, cfg.max_new_tokens, float(cfg.temperature),
                       cfg.top_k, float(cfg.top_p), cfg.seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, "".join(json.dumps(row) + "\n" for row in rows))
    for row in rows:
        print(f"{row['prompt']} {row['text']}")
    seconds = sum(r["seconds"] for r in rows)
    tokens = sum(r["tokens"] for r in rows)
    print(f"{len(rows)} samples, {tokens} new tokens in {seconds:.2f} s ({lm.cfg.model.name}); written to {out}",
          file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> None:
    run_main(generate, sys.argv[1:] if argv is None else argv, OPTIONS, __doc__)


if __name__ == "__main__":
    main()
