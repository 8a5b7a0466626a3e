"""SeededGridSweeper: Hydra's basic grid sweep, then more seeds for the best setting of each group.

Stage 1 is exactly Hydra's BasicSweeper over `params` (plain override grids). Stage 2 takes, for
each value of `group_by` (default: the `model` override), the job with the highest returned value
(the training entry point returns best *validation* accuracy; test is never used to select) and
relaunches its overrides once per seed in `seeds`, through the same launcher (local, submitit...).
Failed jobs return None and are never selected.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.utils import JobReturn, JobStatus

log = logging.getLogger(__name__)


def _override_value(overrides: Sequence[str], key: str) -> str | None:
    for item in overrides:
        name, _, value = item.partition("=")
        if name.lstrip("+~") == key:
            return value
    return None


def best_per_group(returns: Sequence[JobReturn], group_by: str) -> dict[str, JobReturn]:
    best: dict[str, JobReturn] = {}
    for ret in returns:
        if ret.status != JobStatus.COMPLETED or ret.return_value is None:
            continue
        group = _override_value(ret.overrides or [], group_by) or "all"
        if group not in best or float(ret.return_value) > float(best[group].return_value):
            best[group] = ret
    return best


def with_seed(overrides: Sequence[str], seed: int) -> list[str]:
    kept = [o for o in overrides if o.partition("=")[0].lstrip("+~") != "seed"]
    return [*kept, f"seed={seed}"]


class SeededGridSweeper(BasicSweeper):
    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None,
                 seeds: Sequence[int] = (), group_by: str = "model") -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.seeds, self.group_by = list(seeds), group_by

    def sweep(self, arguments: list[str]) -> Any:
        returns = super().sweep(arguments)
        if not self.seeds:
            return returns
        grid = [ret for batch in returns for ret in batch]
        best = best_per_group(grid, self.group_by)
        batch = [with_seed(ret.overrides, seed) for _, ret in sorted(best.items()) for seed in self.seeds]
        if not batch:
            log.warning("SeededGridSweeper: no successful job to reseed")
            return returns
        for group, ret in sorted(best.items()):
            log.info(f"best {self.group_by}={group} (val {float(ret.return_value):.4f}): "
                     f"{' '.join(ret.overrides)}; reseeding with {self.seeds}")
        self.validate_batch_is_legal(batch)
        returns.append(self.launcher.launch(batch, initial_job_idx=len(grid)))
        return returns
