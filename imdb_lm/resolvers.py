"""OmegaConf resolvers the configs use; registered when the package is imported.

`${imdb_lm.mul:a,b}` multiplies two numbers: the optimizer configs scale the model recipe's
learning rate by `lr_scale`, which makes one learning-rate grid (e.g. `lr_scale=0.3,1,3`) right for
every model family even though their base rates differ by orders of magnitude.
"""

from __future__ import annotations

from omegaconf import OmegaConf


def _mul(a: float, b: float) -> float:
    return float(a) * float(b)


def register() -> None:
    if not OmegaConf.has_resolver("imdb_lm.mul"):
        OmegaConf.register_new_resolver("imdb_lm.mul", _mul)
