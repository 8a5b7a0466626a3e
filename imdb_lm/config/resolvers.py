"""OmegaConf resolvers the configs use; registered when the package is imported.

`${imdb_lm.mul:a,b}` multiplies two numbers: the optimizer configs scale the model recipe's
learning rate by `lr_scale`, which makes one learning-rate grid (e.g. `lr_scale=0.3,1,3`) right for
every model family even though their base rates differ by orders of magnitude.

`${imdb_lm.precision:p,accelerator}` keeps a bf16 precision only where the device computes bf16
natively (CPUs with AVX512-BF16 or AMX, CUDA GPUs from Ampere on) and gives `32-true` elsewhere:
on an AVX2-only CPU bf16 autocast is emulated and MiniLM trained ~50x slower than in fp32.
"""

from __future__ import annotations

from omegaconf import OmegaConf


def _mul(a: float, b: float) -> float:
    return float(a) * float(b)


def bf16_native(device_type: str) -> bool:
    import torch

    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def hardware_precision(precision: str, accelerator: str = "auto") -> str:
    """`precision` where the accelerator runs it natively, else full fp32 (bf16 variants only)."""
    precision = str(precision)
    if not precision.startswith("bf16"):
        return precision
    import torch

    cuda = str(accelerator) in ("gpu", "cuda") or (str(accelerator) == "auto" and torch.cuda.is_available())
    return precision if bf16_native("cuda" if cuda else "cpu") else "32-true"


def register() -> None:
    from imdb_lm.runs.folders import run_suffix

    if not OmegaConf.has_resolver("run_suffix"):  # cached: one command keeps one sweep folder
        OmegaConf.register_new_resolver("run_suffix", run_suffix, use_cache=True)
    if not OmegaConf.has_resolver("imdb_lm.mul"):
        OmegaConf.register_new_resolver("imdb_lm.mul", _mul)
    if not OmegaConf.has_resolver("imdb_lm.precision"):
        OmegaConf.register_new_resolver("imdb_lm.precision", hardware_precision)
