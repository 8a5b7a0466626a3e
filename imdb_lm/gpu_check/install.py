"""Run by path on the GPU machine first: `python3 imdb_lm/gpu_check/install.py .gpu_check`.

Standard library only until the wheels are in (the package's own imports need them). It checks that
the image has the compiled packages the folder cannot carry, installs the folder's wheels offline
into this Python, and lists the project's requirements that the image's versions fall outside of
(warnings: the check still runs, and the report shows them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path


def installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def outside_requirements(requirements: list[str]) -> list[str]:
    from packaging.requirements import Requirement  # the image has it (transformers needs it)

    found = []
    for text in requirements:
        req = Requirement(text)
        version = installed(req.name)
        if version is None or not req.specifier.contains(version, prereleases=True):
            found.append(f"{req.name} {version or 'missing'} (project asks {req.specifier or 'any'})")
    return found


def main(folder: Path) -> None:
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        sys.exit(f"error: {manifest_path}: not found; build the folder first with `make gpu-check-prepare` "
                 "(on a machine with the package index) and copy it here")
    manifest = json.loads(manifest_path.read_text())
    lacking = [name for name in manifest["from_image"] if installed(name) is None]
    if lacking:
        sys.exit(f"error: {sys.executable} lacks the compiled package(s) {', '.join(lacking)}, which the folder "
                 "does not carry; install them in the image, or rebuild the folder with "
                 "`python -m imdb_lm.gpu_check.prepare --also NAME==VERSION` for each")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--find-links",
                           str(folder / "wheels"), "-r", str(folder / "requirements.txt"),
                           "--disable-pip-version-check", "--quiet"])
    if proc.returncode != 0:
        sys.exit(f"error: offline install from {folder / 'wheels'} failed (pip's reason above); rebuild the "
                 "folder with `--also NAME==VERSION` for the package it could not find")
    warnings = outside_requirements(manifest["requirements"])
    (folder / "install.json").write_text(json.dumps({"python": sys.version.split()[0],
                                                     "outside_requirements": warnings}, indent=1) + "\n")
    for line in warnings:
        print(f"warning: {line}")
    print(f"installed {len(manifest['wheels'])} wheels from {folder / 'wheels'}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 imdb_lm/gpu_check/install.py <folder built by make gpu-check-prepare>")
    main(Path(sys.argv[1]))
