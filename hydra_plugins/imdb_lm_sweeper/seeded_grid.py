"""SeededGridSweeper: Hydra's basic grid sweep, then more seeds for the best setting of each group.

Stage 1 is exactly Hydra's BasicSweeper over `params` (plain override grids). Stage 2 takes, for
each value of `group_by` (default: the `model` override), the job with the highest returned value
(the training entry point returns best *validation* accuracy; test is never used to select) and
relaunches its overrides once per seed in `seeds`, through the same launcher (local, submitit...).
Failed jobs return None and are never selected.

`narrow` keeps a smaller grid for some groups, e.g. {transformer: {lr_scale: [1], data.batch_size:
[16]}}: jobs of that group whose value of a listed key is not in its list are left out of stage 1.
It exists because one family can cost ten times another per job (fine-tuning on a CPU).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException

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


class NarrowError(CompactHydraException, ValueError):
    """A `narrow` setting that cannot be what was meant (Hydra prints compact errors in one line)."""


def narrowed(jobs: list[list[str]], group_by: str, narrow: Mapping[str, Mapping[str, Sequence[Any]]]
             ) -> list[list[str]]:
    """The jobs a `narrow` mapping keeps (values compared as override strings: 1 == "1"). A key that
    is not swept, or a list that keeps no job of its group, is a mistake and raises NarrowError."""
    keep = {group: {key: {str(v) for v in values} for key, values in allowed.items()}
            for group, allowed in narrow.items()}
    swept = {item.partition("=")[0].lstrip("+~") for job in jobs for item in job}
    for group, allowed in keep.items():
        for key, values in allowed.items():
            if key not in swept:
                raise NarrowError(f"hydra.sweeper.narrow.{group}: '{key}' is not a key of this sweep "
                                  f"(swept: {', '.join(sorted(swept))})")
            present = {_override_value(job, key) for job in jobs if _override_value(job, group_by) == group}
            if present and not present & values:
                raise NarrowError(f"hydra.sweeper.narrow.{group}.{key}={list(narrow[group][key])} keeps no "
                                  f"job of {group_by}={group} (its grid has {sorted(present)})")

    def kept(job: list[str]) -> bool:
        allowed = keep.get(_override_value(job, group_by) or "", {})
        return all(_override_value(job, key) in values for key, values in allowed.items())
    return [job for job in jobs if kept(job)]


def with_seed(overrides: Sequence[str], seed: int) -> list[str]:
    kept = [o for o in overrides if o.partition("=")[0].lstrip("+~") != "seed"]
    return [*kept, f"seed={seed}"]


class SeededGridSweeper(BasicSweeper):
    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None,
                 seeds: Sequence[int] = (), group_by: str = "model",
                 narrow: Mapping[str, Mapping[str, Sequence[Any]]] | None = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.seeds, self.group_by, self.narrow = list(seeds), group_by, dict(narrow or {})

    def split_arguments(self, overrides: list[Override], max_batch_size: int | None) -> list[list[list[str]]]:
        (jobs,) = BasicSweeper.split_arguments(overrides, None)
        jobs = narrowed(jobs, self.group_by, self.narrow)
        if max_batch_size is None:
            return [jobs]
        return list(BasicSweeper.split_overrides_to_chunks(jobs, max_batch_size))

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
