"""Run `python -m <module> args` for the tests in processes forked from one that has already done
the imports, instead of a new interpreter each time.

Why by hand: every CLI process pays ~13 s of imports (lightning, torchmetrics, transformers) before
its first line of work, and the suite starts about a hundred of them; that was most of its time.
multiprocessing's forkserver imports the heavy libraries once per test worker (its server never runs
a torch op, so no OpenMP pool is forked) and forks each CLI run from there. Each run is still its own
process, with its own working folder, environment, file descriptors and globals, entering the module
through runpy as `python -m` does, and its exit status is the one the interpreter would give.

The libraries' import-time settings come from the environment the server starts with (the CLI's,
tests.helpers.cli_env); a run that needs another one at import time, or that must be a fresh
interpreter (start-up itself, launchers that re-execute `sys.argv`), passes fresh=True to run_cli.
IMDB_LM_TEST_FRESH_CLI=1 makes every run a fresh interpreter. What only a fresh interpreter shows
(an import another module happened to make, the interpreter's own import order and sys.path) is
covered by tests/test_fresh_cli.py, which runs every command fresh once (slow suite).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import runpy
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path

FRESH_ENV = "IMDB_LM_TEST_FRESH_CLI"
# What the CLIs import lazily once their config is checked: most of their start-up.
PRELOAD = ["torch", "lightning", "transformers", "torchmetrics", "hydra", "pandas", "matplotlib.pyplot",
           "imdb_lm.training", "imdb_lm.models.pretrained"]

_context: multiprocessing.context.ForkServerContext | None = None


def fork_disabled() -> bool:
    return os.environ.get(FRESH_ENV, "0") not in ("0", "")


@contextmanager
def _environment(env: dict[str, str]):
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _server(env: dict[str, str]) -> multiprocessing.context.ForkServerContext:
    """The forkserver context, its server started (once per test worker) with the CLI's environment."""
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        with _environment(env):
            from multiprocessing import forkserver

            forkserver.ensure_running()
        _context = context
    return _context


def _child(module: str, args: list[str], cwd: str, env: dict[str, str], out: str, err: str) -> None:
    """In the forked process: become `python -m module args` run in cwd with env."""
    os.setsid()  # its own process group, so that a timeout stops its children too
    for fd, path in ((1, out), (2, err)):
        with open(path, "wb") as target:
            os.dup2(target.fileno(), fd)
    # the run's own streams for the rest of this process's life, as an interpreter's are
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False, buffering=1)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1)  # noqa: SIM115
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    threads = env.get("OMP_NUM_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    sys.path[0:0] = [cwd]  # as `python -m` puts the working folder first
    sys.argv = [module, *args]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        code = stop.code
    finally:
        atexit._run_exitfuncs()  # multiprocessing ends its children with os._exit, which skips them
        sys.stdout.flush()
        sys.stderr.flush()
    if code not in (None, 0):
        raise SystemExit(code)


def run_forked(module: str, args: list[str], cwd: Path, env: dict[str, str],
               timeout: float) -> subprocess.CompletedProcess:
    context = _server(env)
    with tempfile.TemporaryDirectory(prefix="cli-") as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        process = context.Process(target=_child, args=(module, list(args), str(cwd), env, str(out), str(err)))
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.join()
            raise subprocess.TimeoutExpired([module, *args], timeout, out.read_text(errors="replace"),
                                            err.read_text(errors="replace"))
        code = process.exitcode
        return subprocess.CompletedProcess([sys.executable, "-m", module, *args], code,
                                           out.read_text(errors="replace"), err.read_text(errors="replace"))
