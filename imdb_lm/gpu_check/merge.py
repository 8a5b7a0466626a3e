"""`python -m imdb_lm.gpu_check.merge outputs/gpu_check/gpu_check.md [doc=docs/benchmarks.md]`: put the
section `make gpu-check` wrote into the benchmarks doc, replacing the one from an earlier check of
the same device (each device keeps its own section, between markers naming it)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from imdb_lm.atomic import write_text
from imdb_lm.config.options import Option, parse
from imdb_lm.errors import UserError

HEADING = re.compile(r"^## GPU check: (.+)$", re.MULTILINE)


def markers(device: str) -> tuple[str, str]:
    return f"<!-- gpu-check: {device} -->", f"<!-- /gpu-check: {device} -->"


def merge(section: str, doc: str, source: str = "section") -> str:
    found = HEADING.search(section)
    if not found:
        raise UserError(f"{source}: no '## GPU check: <device>' heading; give the gpu_check.md that "
                        "`make gpu-check` wrote")
    start, end = markers(found.group(1).strip())
    block = f"{start}\n{section.strip()}\n{end}\n"
    if start in doc and end in doc:
        before, rest = doc.split(start, 1)
        return before + block + rest.split(end, 1)[1].lstrip("\n")
    return doc.rstrip("\n") + "\n\n" + block


OPTIONS = [
    Option("section", [], "gpu_check.md written by `make gpu-check`", list, positional=True),
    Option("doc", "docs/benchmarks.md", "the benchmarks page the section goes into"),
]


def main(argv: list[str] | None = None) -> None:
    try:
        args = parse(sys.argv[1:] if argv is None else argv, OPTIONS, __doc__)
        if len(args.section) != 1:
            raise UserError("give one gpu_check.md, e.g. python -m imdb_lm.gpu_check.merge outputs/gpu_check/gpu_check.md")
        args.section = args.section[0]
        section_path, doc_path = Path(args.section), Path(args.doc)
        for path, what in ((section_path, "run `make gpu-check` on a GPU machine first"),
                           (doc_path, "give doc=<the benchmarks page>")):
            if not path.is_file():
                raise UserError(f"{path}: not found; {what}")
        write_text(doc_path, merge(section_path.read_text(), doc_path.read_text(), str(section_path)))
    except UserError as err:
        sys.exit(f"error: {err}")
    print(f"{args.doc}: GPU check section from {args.section}")


if __name__ == "__main__":
    main()
