"""Building the fused GRU kernel (csrc/fused_gru.cpp): whether to try, with which flags, where the
build lives, and remembering a failed build.

- Tried only on x86-64 Linux with GCC or clang (the compiler torch's extension builder uses: $CXX,
  else `c++`); elsewhere (macOS, Windows/MSVC, aarch64) it is declined before compiling. Which
  instruction sets the kernel dispatches between is decided by the compiler's version inside the
  source; OpenMP is used where the compiler finds omp.h.
- The build folder's name hashes the source, torch's version, the Python ABI, the compiler (path
  and version) and the flags: an upgrade or another compiler gets a fresh build, never a stale one.
- A failed build leaves a marker in its folder. Later processes (every job of a sweep) read it
  instead of spending ~20 s failing again, warn with its first error line, and say how to retry.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import torch

from imdb_lm.atomic import write_text

log = logging.getLogger(__name__)
FAILED_MARKER = "build-failed.log"
FLAGS = ("-O3", "-fno-trapping-math")  # lets the exp's clamps vectorize as blends (see the source)
FALLBACK = "using nn.GRU, which is slower on CPU"


@dataclass(frozen=True)
class Compiler:
    command: str  # as given ($CXX or c++)
    path: str  # the executable it resolves to, links followed
    family: str  # "gcc" or "clang"
    version: str  # e.g. "12.2.0"
    banner: str  # the first line of --version
    openmp: bool  # -fopenmp finds omp.h

    @property
    def flags(self) -> list[str]:
        return [*FLAGS, "-fopenmp"] if self.openmp else list(FLAGS)


def compiler_command() -> str:
    """The C++ compiler torch's extension builder runs (torch.utils.cpp_extension.get_cxx_compiler)."""
    return os.environ.get("CXX", "c++")


def _run(args: list[str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60, check=False)


def probe(command: str) -> Compiler | str:
    """The compiler behind `command`, or why the kernel is not built with it (one line)."""
    found = shutil.which(command)
    if found is None:
        return f"no C++ compiler {command!r} found (set CXX to one, e.g. CXX=g++)"
    try:
        macros = _run([found, "-dM", "-E", "-x", "c++", "-"])
        banner = _run([found, "--version"]).stdout.strip().splitlines()
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"{command} did not run ({err})"
    defined = dict(re.findall(r"^#define (\w+) ?(.*)$", macros.stdout, re.M))
    if macros.returncode != 0 or "__x86_64__" not in defined:
        return f"{command} does not compile for x86-64 Linux (the kernel is built only there)"
    if "__clang__" in defined:
        family, parts = "clang", ("__clang_major__", "__clang_minor__", "__clang_patchlevel__")
    elif "__GNUC__" in defined:
        family, parts = "gcc", ("__GNUC__", "__GNUC_MINOR__", "__GNUC_PATCHLEVEL__")
    else:
        return f"{command} is neither GCC nor clang (the kernel is built only with those)"
    version = ".".join(defined.get(part, "0") for part in parts)
    openmp = _run([found, "-fopenmp", "-E", "-x", "c++", "-", "-o", os.devnull], "#include <omp.h>\n").returncode == 0
    return Compiler(command, os.path.realpath(found), family, version, (banner or [""])[0], openmp)


def platform_refusal() -> str | None:
    """Why this platform gets nn.GRU without trying to compile, or None where the kernel is built."""
    if not sys.platform.startswith("linux") or platform.machine().lower() not in ("x86_64", "amd64"):
        return f"the kernel is built only on x86-64 Linux, not on {sys.platform} {platform.machine()}"
    return None


def build_name(source: str, compiler: Compiler) -> str:
    """The extension's name and build folder: everything a build depends on, hashed."""
    key = "\n".join([source, torch.__version__, str(torch.version.git_version), sysconfig.get_config_var("SOABI") or "",
                     compiler.path, compiler.banner, compiler.version, " ".join(compiler.flags)])
    return f"imdb_lm_fused_gru_{compiler.family}{compiler.version.split('.')[0]}_{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def build_root() -> Path:
    """Where torch's extension builder keeps its builds ($TORCH_EXTENSIONS_DIR or its user cache)."""
    from torch.utils.cpp_extension import get_default_build_root

    return Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root())


def first_error(text: str) -> str:
    """The line of a build log that says what went wrong (the compiler's first `error:`), without
    its long path prefix."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if re.search(r"\berror:", line, re.I):
            return re.sub(r"^\S*/", "", line)
    return lines[-1][:300] if lines else "unknown error"


def load(source: str):
    """(the compiled kernel module, None), or (None, why not) after one warning saying why and, for a
    failed build, how to retry."""
    refusal = platform_refusal()
    compiler = probe(compiler_command()) if refusal is None else refusal
    if isinstance(compiler, str):
        log.warning("fused CPU GRU kernel not built: %s; %s", compiler, FALLBACK)
        return None, compiler
    name = build_name(source, compiler)
    folder = build_root() / name
    marker = folder / FAILED_MARKER
    if marker.exists():
        reason = f"its build with {compiler.command} failed before ({first_error(marker.read_text())})"
        log.warning("fused CPU GRU kernel unavailable: %s; %s. To retry, delete %s", reason, FALLBACK, marker)
        return None, reason
    if not compiler.openmp:
        log.info("fused CPU GRU kernel built without OpenMP (%s finds no omp.h): its gate passes run on "
                 "one thread", compiler.command)
    try:
        from torch.utils.cpp_extension import load_inline

        folder.mkdir(parents=True, exist_ok=True)
        module = load_inline(name, cpp_sources=[source], extra_cflags=compiler.flags,
                             extra_ldflags=["-fopenmp"] if compiler.openmp else [],
                             build_directory=str(folder), verbose=False)
        return module, None
    except Exception as err:  # a compiler error, no ninja, a read-only cache: nn.GRU still works
        text = str(err) or type(err).__name__
        try:
            if marker.exists():  # a concurrent job built and failed first, and this one then failed to load it
                text = marker.read_text()
            else:
                write_text(marker, f"{compiler.banner}\n{text}\n")
            retry = f"remembered in {marker}; delete it to retry"
        except OSError:
            retry = "not remembered: the build folder is not writable"
        reason = f"its build with {compiler.command} failed ({first_error(text)})"
        log.warning("fused CPU GRU kernel unavailable: %s; %s; %s", reason, retry, FALLBACK)
        return None, reason
