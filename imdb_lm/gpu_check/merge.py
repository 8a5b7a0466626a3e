"""`python -m imdb_lm.gpu_check.merge outputs/gpu_check/gpu_check.md [--doc docs/benchmarks.md]`: put the
section `make gpu-check` wrote into the benchmarks doc, replacing the one from an earlier check of
the same device (each device keeps its own section, between markers naming it)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from imdb_lm.atomic import write_text
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


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m imdb_lm.gpu_check.merge", description=__doc__.split("\n")[0])
    p.add_argument("section", help="gpu_check.md written by `make gpu-check`")
    p.add_argument("--doc", default="docs/benchmarks.md")
    args = p.parse_args(argv)
    try:
        section_path, doc_path = Path(args.section), Path(args.doc)
        for path, what in ((section_path, "run `make gpu-check` on a GPU machine first"),
                           (doc_path, "give --doc the benchmarks doc")):
            if not path.is_file():
                raise UserError(f"{path}: not found; {what}")
        write_text(doc_path, merge(section_path.read_text(), doc_path.read_text(), str(section_path)))
    except UserError as err:
        sys.exit(f"error: {err}")
    print(f"{args.doc}: GPU check section from {args.section}")


if __name__ == "__main__":
    main()
