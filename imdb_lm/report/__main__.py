"""`python -m imdb_lm.report SWEEP_DIR [MORE_DIRS] [--out DIR]`: the comparison report of finished runs.

Collects every metrics.json under the folders (recursively) into results.csv and writes report.md,
a self-contained report.html and figures/*.png into --out (default: <first folder>/report).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imdb_lm.errors import UserError
from imdb_lm.report import analyze, write_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m imdb_lm.report", description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="sweep or run folders (searched recursively for metrics.json)")
    parser.add_argument("--out", help="report folder (default: <first folder>/report)")
    parser.add_argument("--bootstrap", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap random seed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.bootstrap < 100:
            raise UserError(f"--bootstrap {args.bootstrap} is too few resamples; use at least 100")
        analysis = analyze(args.dirs, resamples=args.bootstrap, seed=args.seed)
        out = Path(args.out) if args.out else Path(args.dirs[0]) / "report"
        paths = write_report(analysis, out)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(analysis.runs)} runs -> {paths['html']}\n  {paths['markdown']}\n  {paths['results']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
