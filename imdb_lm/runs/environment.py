"""Facts about where and with what a run ran: device, library versions, git revision."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"cpu: {line.split(':', 1)[1].strip()} x{torch.get_num_threads()} threads"
    except OSError:
        pass
    return f"cpu: {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def versions() -> dict[str, str | None]:
    found = {"python": platform.python_version()}
    for dist in ("torch", "lightning", "transformers", "tokenizers", "datasets", "torchmetrics", "hydra-core"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


def git_revision() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if rev.returncode != 0:
        return None
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def env_record(device: torch.device) -> dict:
    from imdb_lm.config.resolvers import bf16_native

    # The vector ISA and native bf16 decide which precision and kernels a CPU run gets, and figures
    # from CPUs that differ in them are not comparable.
    return {"device": device_name(device), "device_type": device.type, "versions": versions(),
            "git_revision": git_revision(), "num_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "bf16_native": bf16_native(device.type)}
