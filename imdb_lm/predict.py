"""`python -m imdb_lm.predict ckpt=<run folder|.ckpt> text="..." | input=<file>`: classify reviews.

Reviews are cleaned and truncated exactly as in training (the run's tokenizer, max_length and
truncation side). An empty review still gets a prediction, flagged `"empty": true`. Throughput goes
to stderr, predictions to stdout.
"""

from __future__ import annotations

import contextlib
import csv
import json
import sys
import time
from pathlib import Path

from imdb_lm.config.options import Option, run_main
from imdb_lm.errors import UserError

OPTIONS = [
    Option("ckpt", None, "a run folder written by imdb_lm.train, or one of its checkpoints/*.ckpt (required)", str),
    Option("text", None, "one review (text=[a,b] for several)", list),
    Option("input", None, "a file: one review per line, or a .csv with a text column", str),
    Option("text_column", "text", "the .csv column holding the reviews"),
    Option("batch_size", 64, "reviews per forward pass (sorted by length, so padding stays small)"),
    Option("device", "auto", "auto | cpu | cuda[:N]"),
    Option("precision", "auto", "auto: as trained (bf16 autocast for bf16-mixed runs) | 32: full fp32"),
    Option("compile", False, "torch.compile with frozen weights: ~5 s (BiGRU) to ~25 s (MiniLM) once, "
                             "then faster batches; for thousands of reviews"),
    Option("format", "text", "text: label<TAB>probability<TAB>review start | jsonl: one JSON object a line"),
]
LABELS = ("negative", "positive")


def read_inputs(text, input_path, text_column: str = "text") -> list[str]:
    if (text is None) == (input_path is None):
        raise UserError('give exactly one of text="a review" or input=<file with one review per line | .csv>')
    if text is not None:
        return [str(t) for t in text] if not isinstance(text, str) else [text]
    path = Path(str(input_path))
    if not path.is_file():
        raise UserError(f"input={path}: no such file; give a text file with one review per line or a .csv")
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                if text_column not in (reader.fieldnames or []):
                    raise UserError(f"input={path}: no {text_column!r} column (found {reader.fieldnames}); "
                                    "set text_column=<name>")
                return [row[text_column] or "" for row in reader]
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise UserError(f"input={path}: not valid UTF-8 ({err.reason}); re-save it as UTF-8") from None


def predict(cfg) -> list[dict]:
    if not cfg.ckpt:
        raise UserError("ckpt=<run folder or .ckpt> is required (e.g. ckpt=outputs/runs/<run>)")
    if cfg.format not in ("text", "jsonl"):
        raise UserError(f"format={cfg.format}: choose text or jsonl")
    if not isinstance(cfg.batch_size, int) or cfg.batch_size <= 0:
        raise UserError(f"batch_size={cfg.batch_size} must be a positive integer")
    if not isinstance(cfg.compile, bool):
        raise UserError(f"compile={cfg.compile}: choose true or false")
    raw = read_inputs(cfg.text, cfg.input, cfg.text_column)
    if not raw:
        raise UserError(f"input={cfg.input}: holds no reviews")
    # Imported once the options are known to be good: --help and a mistyped option answer at once.
    from imdb_lm.data.sources import clean_text
    from imdb_lm.data.splits import review_hash
    from imdb_lm.evaluation.inference import Reviews, encode, predict_probs
    from imdb_lm.memory import keep_freed_memory
    from imdb_lm.runs.checkpoint import load_run

    keep_freed_memory()  # as training does: batches reuse memory instead of faulting in fresh pages
    run = load_run(cfg.ckpt, cfg.device)
    if str(cfg.precision) not in ("auto", "32"):
        raise UserError(f"precision={cfg.precision}: choose auto or 32")
    if str(cfg.precision) == "32":
        run.autocast = contextlib.nullcontext
    start = time.perf_counter()
    texts = [clean_text(t) for t in raw]
    data = encode(run, Reviews(texts, None, [review_hash(t) for t in texts]))
    probs = predict_probs(run, data, cfg.batch_size, compile=cfg.compile)
    seconds = time.perf_counter() - start
    limit = run.tokenizer.max_length
    rows = [{"index": i, "label": LABELS[int(p >= 0.5)], "prob": round(max(p, 1 - p), 6),
             "prob_pos": round(p, 6), "tokens": n, "truncated": n >= limit, "empty": not t}
            for i, (t, p, n) in enumerate(zip(texts, probs, data.lengths, strict=True))]
    for row, text in zip(rows, texts, strict=True):
        if cfg.format == "jsonl":
            print(json.dumps(row))
        else:
            preview = (text[:70] + "...") if len(text) > 70 else text
            print(f"{row['label']}\t{row['prob']:.4f}\t{preview}")
    print(f"predicted {len(rows)} reviews in {seconds:.2f} s: {len(rows) / seconds:.1f} reviews/s "
          f"({run.model.family} on {run.device}, batch {cfg.batch_size}, tokenization"
          f"{' and compiling' if cfg.compile else ''} included)",
          file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> None:
    run_main(predict, sys.argv[1:] if argv is None else argv, OPTIONS, __doc__)


if __name__ == "__main__":
    main()
