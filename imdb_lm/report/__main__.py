"""`python -m imdb_lm.report SWEEP_DIR [MORE_DIRS] [--out DIR] [--explain N]`: the comparison report.

Collects every metrics.json under the folders (recursively) into results.csv and writes report.md,
a self-contained report.html and figures/*.png into --out (default: <first folder>/report). With
--explain N the selected RNN and transformer are also explained on the same N test reviews
(python -m imdb_lm.explain) and the report scores the faithfulness of their explanations.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imdb_lm.errors import UserError
from imdb_lm.report import analyze, interpretability, write_report
from imdb_lm.report.interpretability import ensure_explained


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m imdb_lm.report", description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="sweep or run folders (searched recursively for metrics.json)")
    parser.add_argument("--out", help="report folder (default: <first folder>/report)")
    parser.add_argument("--bootstrap", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap random seed")
    parser.add_argument("--explain", type=int, default=0, metavar="N",
                        help="explain the selected runs on N test reviews (default 0: only reuse earlier ones)")
    parser.add_argument("--device", default="auto", help="device for --explain: auto | cpu | cuda[:N]")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.bootstrap < 100:
            raise UserError(f"--bootstrap {args.bootstrap} is too few resamples; use at least 100")
        if args.explain < 0:
            raise UserError(f"--explain {args.explain} must be 0 (off) or a positive number of test reviews")
        analysis = analyze(args.dirs, resamples=args.bootstrap, seed=args.seed)
        out = Path(args.out) if args.out else Path(args.dirs[0]) / "report"
        page = out / "explain.html"
        if args.explain:
            page = ensure_explained(analysis, args.explain, page, args.device)
        interpretability.attach(analysis, args.bootstrap, args.seed, page if page and page.is_file() else None)
        paths = write_report(analysis, out)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(analysis.runs)} runs -> {paths['html']}\n  {paths['markdown']}\n  {paths['results']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
