"""Comparison report: collect runs -> statistics -> tables, plots -> report.md / report.html.

The notebook and the CLI use the same two calls:

    analysis = analyze(["outputs/multirun/<stamp>"])
    paths = write_report(analysis, "outputs/multirun/<stamp>/report")
"""

from imdb_lm.report.analysis import Analysis, analyze
from imdb_lm.report.render import write_report

__all__ = ["Analysis", "analyze", "write_report"]
