"""`python -m imdb_lm.explain ckpt=<run> [n=20]`: explain trained runs and score the explanations.

Several runs (ckpt=[A,B]) are explained on the same test reviews and shown side by side. Per run,
`explain.json` (faithfulness, completeness, per-review AOPC) and `explain.html` go next to its
metrics.json. The work is done by imdb_lm.explain.run.explain_runs.
"""

from __future__ import annotations

import sys

from imdb_lm.config.options import Option, run_main

OPTIONS = [
    Option("ckpt", None, "run folder(s) or checkpoint(s): ckpt=PATH or ckpt=[A,B] (required)", list),
    Option("n", 20, "test reviews scored for faithfulness (the first n in review-hash order)"),
    Option("show", 4, "of those, how many the page shows"),
    Option("per_category", 1, "plus this many correct/misclassified examples per class and model"),
    Option("scan", 300, "test reviews searched for those examples"),
    Option("n_steps", 50, "Integrated Gradients steps"),
    Option("random_repeats", 3, "random deletion orders averaged for the baseline"),
    Option("out", None, "combined page for several runs (default outputs/explain/<time>/explain.html)", str),
    Option("device", "auto", "auto | cpu | cuda[:N]"),
]


def explain(cfg) -> dict:
    from imdb_lm.explain.run import explain_runs  # after parsing: --help answers without torch

    return explain_runs(**cfg)


def main(argv: list[str] | None = None) -> None:
    run_main(explain, sys.argv[1:] if argv is None else argv, OPTIONS, __doc__)


if __name__ == "__main__":
    main()
