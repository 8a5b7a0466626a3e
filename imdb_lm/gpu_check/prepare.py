"""`python -m imdb_lm.gpu_check.prepare [out=.gpu_check]`: build the folder `make gpu-check` needs on
a GPU machine that reaches no package index (see imdb_lm/gpu_check/__init__.py).

It holds wheels/ (the pure-Python dependencies the image lacks, for Python 3.12 on Linux x86-64),
requirements.txt (those pins), model/ (the bundled MiniLM in bf16), data/imdb.csv.bz2 (the IMDB rows
of the bundled CSV) and manifest.json. With the checkout's tracked files it must fit in LIMIT_MIB:
what can be carried to such a machine in one go. Built beside the target and moved into place whole.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from packaging.utils import canonicalize_name

from imdb_lm.config.options import Option, parse
from imdb_lm.data.sources import bundled_csv_path
from imdb_lm.errors import UserError
from imdb_lm.gpu_check import deps
from imdb_lm.gpu_check.copies import write_bf16_checkpoint, write_imdb_rows
from imdb_lm.models.pretrained import bundled_path
from imdb_lm.runs.environment import git_revision

LIMIT_MIB = 64
ROOT = Path(__file__).resolve().parents[2]
# Pure Python, but PyPI has only a source archive of the 4.9 line that omegaconf needs: built here.
SDIST_ONLY = ("antlr4-python3-runtime",)
# pip matches manylinux tags exactly: the common ones, for compiled wheels named with --also.
PLATFORM_ARGS = ["--only-binary=:all:", "--python-version", deps.TARGET_PYTHON, "--implementation", "cp",
                 *[arg for tag in ("manylinux2014", "manylinux_2_24", "manylinux_2_27", "manylinux_2_28",
                                   "manylinux_2_31", "manylinux_2_34") for arg in ("--platform", f"{tag}_x86_64")]]


def pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"pip {args[0]} of {sum('==' in a for a in args)} package(s) failed: {last}; "
                        "check the package index is reachable, or pin another version with --also NAME==VERSION")


def download_wheels(pins: dict[str, str], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    binary = [f"{n}=={v}" for n, v in pins.items() if n not in SDIST_ONLY]
    built = [f"{n}=={v}" for n, v in pins.items() if n in SDIST_ONLY]
    if binary:
        pip("download", "--no-deps", *PLATFORM_ARGS, "--dest", str(dest), *binary)
    if built:
        pip("wheel", "--no-deps", "--wheel-dir", str(dest), *built)
    return sorted(dest.glob("*.whl"))


def folder_bytes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def checkout_bytes(root: Path = ROOT) -> int | None:
    """The tracked files of this checkout, which travel with the folder (None outside a git checkout)."""
    proc = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True)
    if proc.returncode != 0:
        return None
    return sum((root / f).stat().st_size for f in proc.stdout.decode().split("\0") if f and (root / f).is_file())


def check_size(files: dict[str, int], checkout: int | None, folder: Path, limit_mib: float = LIMIT_MIB) -> int:
    total = sum(files.values()) + (checkout or 0)
    if total > limit_mib * 2**20:
        biggest = ", ".join(f"{name} {size / 2**20:.1f} MiB"
                            for name, size in sorted(files.items(), key=lambda kv: -kv[1])[:3])
        raise UserError(f"{folder}: {total / 2**20:.1f} MiB with the checkout's "
                        f"{(checkout or 0) / 2**20:.1f} MiB, over the {limit_mib} MiB that can be carried "
                        f"(largest: {biggest}); drop a wheel from deps.GPU_EXTRAS or shrink the data copy")
    return total


def build(folder: Path, pins: dict[str, str], plan: deps.Plan, limit_mib: float = LIMIT_MIB) -> dict:
    wheels = download_wheels(pins, folder / "wheels")
    (folder / "requirements.txt").write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
    write_bf16_checkpoint(Path(bundled_path()), folder / "model")
    _, rows = write_imdb_rows(bundled_csv_path(), folder / "data")
    files = folder_bytes(folder)
    checkout = checkout_bytes()
    manifest = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "revision": git_revision(),
        "target": {"python": deps.TARGET_PYTHON, "platform": "linux x86-64"},
        "carried": pins, "wheels": [w.name for w in wheels],
        "from_image": {n: v for n, v in plan.from_image.items() if n not in pins},
        "requirements": plan.requirements, "data_rows": rows, "files": files,
        "checkout_bytes": checkout, "limit_bytes": int(limit_mib * 2**20),
    }
    manifest["total_bytes"] = check_size(files, checkout, folder, limit_mib)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def prepare(out: Path, also: list[str] = (), limit_mib: float = LIMIT_MIB) -> dict:
    plan = deps.plan()
    pins = dict(plan.carried)
    for pin in also:
        name, sep, version = pin.partition("==")
        if not sep or not name or not version:
            raise UserError(f"--also {pin}: give NAME==VERSION, e.g. --also fsspec==2025.9.0")
        pins[canonicalize_name(name)] = version
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        manifest = build(staging, pins, plan, limit_mib)
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


OPTIONS = [
    Option("out", ".gpu_check", "the folder to build (replaced whole)"),
    Option("also", [], "NAME==VERSION: carry one more wheel (a package the GPU image lacks or has in a "
                       "clashing version); repeatable", list, repeat=True),
]


def main(argv: list[str] | None = None) -> None:
    try:
        args = parse(sys.argv[1:] if argv is None else argv, OPTIONS, __doc__)
        manifest = prepare(Path(args.out), list(args.also))
    except UserError as err:
        sys.exit(f"error: {err}")
    print(f"{args.out}: {len(manifest['wheels'])} wheels, {manifest['data_rows']} reviews, "
          f"{manifest['total_bytes'] / 2**20:.1f} MiB with the checkout (limit {LIMIT_MIB} MiB); "
          f"compiled packages the GPU image must have: {', '.join(manifest['from_image']) or 'none'}")


if __name__ == "__main__":
    main()
