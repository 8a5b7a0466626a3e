"""`python -m imdb_lm.report SWEEP_DIR [MORE_DIRS] [out=DIR] [explain=N] [markdown=FILE] [headline=FILE]`: the comparison report.

Collects every metrics.json under the folders (recursively; compact records published with
`python -m imdb_lm.report.publish` too) into results.csv and writes report.md, a self-contained
report.html and figures/*.png into `out` (default: <first folder>/report); `markdown=FILE` writes the
same markdown to FILE as well, its figure links relative to FILE (docs/study.md); `headline=FILE`
rewrites the study headline (each family's selected setting, the seed-level verdict) between the
marker lines of FILE (README.md). With
explain=N the selected RNN and transformer are also explained on the same N test reviews
(python -m imdb_lm.explain) and the report scores the faithfulness of their explanations.
"""

from __future__ import annotations

import sys
from pathlib import Path

from imdb_lm.config.options import Option, parse
from imdb_lm.errors import UserError

OPTIONS = [
    Option("dirs", [], "sweep or run folders, searched recursively for metrics.json", list, positional=True),
    Option("out", None, "report folder (default: <first folder>/report)", str),
    Option("bootstrap", 10_000, "bootstrap resamples"),
    Option("seed", 0, "bootstrap random seed"),
    Option("explain", 0, "explain the selected runs on N test reviews (0: only reuse earlier explanations)"),
    Option("device", "auto", "device for explain: auto | cpu | cuda[:N]"),
    Option("markdown", None, "also write the markdown report to FILE, figures linked relative to it", str),
    Option("headline", None, "rewrite the study headline block of FILE (README.md) from these runs", str),
]


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(sys.argv[1:] if argv is None else argv, OPTIONS, __doc__)
        if not args.dirs:
            raise UserError("name at least one sweep or run folder, e.g. python -m imdb_lm.report outputs/multirun/<sweep>")
        if args.bootstrap < 100:
            raise UserError(f"bootstrap={args.bootstrap} is too few resamples; use at least 100")
        if args.markdown and (Path(args.markdown).is_dir() or not args.markdown.endswith(".md")):
            raise UserError(f"markdown={args.markdown} must name a .md file, e.g. markdown=docs/study.md")
        if args.explain < 0:
            raise UserError(f"explain={args.explain} must be 0 (off) or a positive number of test reviews")
        from imdb_lm.report import (  # after parsing: --help is instant
            analyze,
            headline,
            interpretability,
            write_report,
        )
        from imdb_lm.report.interpretability import ensure_explained
        from imdb_lm.runs.folders import EXPLAIN_PAGE

        if args.headline:
            headline.check_page(args.headline)  # before any work: a page without the block is refused
        dirs = [str(d) for d in args.dirs]
        analysis = analyze(dirs, resamples=args.bootstrap, seed=args.seed)
        out = Path(args.out) if args.out else Path(dirs[0]) / "report"
        page = out / EXPLAIN_PAGE
        if args.explain:
            page = ensure_explained(analysis, args.explain, page, args.device)
        interpretability.attach(analysis, args.bootstrap, args.seed, page if page and page.is_file() else None)
        paths = write_report(analysis, out, markdown=args.markdown, headline_page=args.headline)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(analysis.runs)} runs -> {paths['html']}\n  {paths['markdown']}\n  {paths['results']}"
          + (f"\n  {args.markdown}" if args.markdown else "") + (f"\n  {args.headline}" if args.headline else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
