"""SeededGridSweeper: Hydra's basic grid sweep, then the study's later stages, on the same launcher.

Stages (each job's `stage=` override labels it in metrics.json; see stages.py for the selections):
1. grid: exactly Hydra's BasicSweeper over `params` (plain override grids), at whatever fidelity the
   experiment sets (e.g. a fixed train subset).
1b. grid edges (if `extend.key`): where a group's best grid job has `extend.key` (e.g. lr_scale) at
   the lowest or highest value its group ran, that job reruns at the next value of `extend.below` or
   `extend.above`, again while the best stays at the edge (stage label `grid`: the grid, extended).
2. promoted (if `promote.top_k` > 0): the top-k jobs of each `group_by` value (default: the `model`
   override) rerun with `promote.overrides` (the full fidelity, e.g. data.train_limit=null).
2b. promoted edges (if `extend.promoted`): where a group's best promoted job has `extend.key` at an edge
   of what the group ran, it reruns at full fidelity at the next value beyond (again while it stays best).
2c. budgets (if `budget.key`): each group's best promoted job reruns once at `budget.longer[group]`
   (e.g. trainer.max_epochs=8), and the better of the two budgets by validation is the selected setting.
3. seed: the best job of each group (of stage 2 if it ran, else of stage 1) reruns once per seed in
   `seeds` that it did not already use.
4. curve (if `curves.sizes`): for each family in `curves.families` ({family: [groups]}), the group
   whose selected setting (stage 3) has the best mean validation accuracy over its seeds trains on
   each size in `curves.sizes` (data.train_limit; null: the whole split) with each seed of
   `curves.seeds`, hyperparameters not re-tuned, with `curves.overrides` on the subset sizes (e.g. how
   often their many short epochs validate). A job this sweep already ran (the whole-split point is
   the seed stage itself) is not launched again.
Every selection uses the returned value, the best *validation* accuracy; test is never used to
select, and failed jobs (which return None) are never selected. With `promote` and `curves` unset
this is the plain grid + reseed of experiment=compare. The sweep folder gets `study_selection.json`:
what each stage chose, and the run folders of each group's selected setting (read by
`python -m imdb_lm.study.ood`, the out-of-domain step).

`label` (e.g. ablation) replaces every stage's name in the jobs' `stage=` override, so that the
runs of another experiment that reuses these stages never count as the study's grid or seeds.

`narrow` keeps a smaller grid for some groups, e.g. {transformer: {lr_scale: [1], data.batch_size:
[16]}}: jobs of that group whose value of a listed key is not in its list are left out of stage 1.
It exists because one family can cost ten times another per job (fine-tuning on a CPU).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException

from hydra_plugins.imdb_lm_sweeper.stages import (
    STAGE,
    best_per_group,
    budget_probes,
    curve_jobs,
    edge_extensions,
    family_choice,
    identity,
    job_identity,
    name_of,
    override_value,
    promoted_edge_extensions,
    promotion_jobs,
    run_dir_of,
    seed_jobs,
    seed_of,
    setting_runs,
    succeeded,
    top_k_per_group,
    val_of,
    with_overrides,
)
from imdb_lm.atomic import write_text
from imdb_lm.runs.jobs import recorded_failure
from imdb_lm.study.ood import SELECTION_FILE

log = logging.getLogger(__name__)


class SweepConfigError(CompactHydraException, ValueError):
    """A sweeper setting that cannot be what was meant (Hydra prints compact errors in one line)."""


class NarrowError(SweepConfigError):
    """A `narrow` setting that keeps nothing or names a key that is not swept."""


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
            present = {override_value(job, key) for job in jobs if override_value(job, group_by) == group}
            if present and not present & values:
                raise NarrowError(f"hydra.sweeper.narrow.{group}.{key}={list(narrow[group][key])} keeps no "
                                  f"job of {group_by}={group} (its grid has {sorted(present)})")

    def kept(job: list[str]) -> bool:
        allowed = keep.get(override_value(job, group_by) or "", {})
        return all(override_value(job, key) in values for key, values in allowed.items())
    return [job for job in jobs if kept(job)]


class SeededGridSweeper(BasicSweeper):
    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None,
                 seeds: Sequence[int] = (), group_by: str = "model",
                 narrow: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
                 promote: Mapping[str, Any] | None = None, curves: Mapping[str, Any] | None = None,
                 extend: Mapping[str, Any] | None = None, label: str | None = None,
                 budget: Mapping[str, Any] | None = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.label = label
        extend = dict(extend or {})
        self.extend_key = extend.get("key")
        self.extend_below = sorted((float(v) for v in extend.get("below") or []), reverse=True)
        self.extend_above = sorted(float(v) for v in extend.get("above") or [])
        self.extend_promoted = bool(extend.get("promoted"))
        budget = dict(budget or {})
        self.budget_key = budget.get("key")
        self.budget_longer = {str(g): v for g, v in (budget.get("longer") or {}).items()}
        if self.budget_longer and not self.budget_key:
            raise SweepConfigError("hydra.sweeper.budget.longer is set: name the budget's key in budget.key "
                                   "(e.g. trainer.max_epochs)")
        if (self.extend_below or self.extend_above) and not self.extend_key:
            raise SweepConfigError("hydra.sweeper.extend.below/above are set: name the swept axis in extend.key "
                                   "(e.g. lr_scale)")
        self.seeds, self.group_by, self.narrow = list(seeds), group_by, dict(narrow or {})
        promote, curves = dict(promote or {}), dict(curves or {})
        self.top_k = int(promote.get("top_k") or 0)
        self.full_fidelity = [str(o) for o in promote.get("overrides") or []]
        self.curve_sizes = [None if n is None else int(n) for n in curves.get("sizes") or []]
        self.curve_seeds = list(curves.get("seeds") or [])
        self.curve_overrides = [str(o) for o in curves.get("overrides") or []]
        self.families = {str(f): [str(g) for g in groups] for f, groups in (curves.get("families") or {}).items()}
        if self.top_k < 0:
            raise SweepConfigError(f"hydra.sweeper.promote.top_k={self.top_k} must be >= 0 (0: no promotion)")
        if self.curve_sizes and not (self.curve_seeds and self.families):
            raise SweepConfigError("hydra.sweeper.curves.sizes is set: give curves.seeds and curves.families "
                                   "({family: [groups]}) too")

    def split_arguments(self, overrides: list[Override], max_batch_size: int | None) -> list[list[list[str]]]:
        (jobs,) = BasicSweeper.split_arguments(overrides, None)
        jobs = [self._labelled(with_overrides(job, [f"{STAGE}=grid"]))
                for job in narrowed(jobs, self.group_by, self.narrow)]
        if max_batch_size is None:
            return [jobs]
        return list(BasicSweeper.split_overrides_to_chunks(jobs, max_batch_size))

    def _labelled(self, job: list[str]) -> list[str]:
        """With `label` set (e.g. ablation), every stage's jobs carry stage=<label> instead of the
        stage's own name: a sweep that is not the study's must not enter its grid or seeds."""
        return with_overrides(job, [f"{STAGE}={self.label}"]) if self.label else job

    def _launch(self, returns: list, jobs: list[list[str]], stage: str) -> list[JobReturn]:
        """Launch the jobs this sweep has not run yet; the stage's results (earlier ones included)."""
        default_seed = str(self.config.get("seed"))  # a job without a seed override runs at it
        jobs = [self._labelled(job) for job in jobs]
        done = {job_identity(ret): ret for batch in returns for ret in batch}
        fresh, seen = [], set(done)
        for job in jobs:
            if identity(job, default_seed) not in seen:
                fresh.append(job)
                seen.add(identity(job, default_seed))
        if fresh:
            log.info(f"SeededGridSweeper: stage {stage}, {len(fresh)} jobs")
        size = self.max_batch_size or len(fresh) or 1  # max_batch_size: jobs started at once
        for start in range(0, len(fresh), size):
            batch = fresh[start:start + size]
            self.validate_batch_is_legal(batch)
            returns.append(self.launcher.launch(batch, initial_job_idx=sum(len(b) for b in returns)))
            _log_failures(returns[-1])
            done.update({job_identity(ret): ret for ret in returns[-1]})
        return [done[identity(job, default_seed)] for job in jobs]

    def sweep(self, arguments: list[str]) -> Any:
        returns = super().sweep(arguments)
        grid = [ret for batch in returns for ret in batch]
        _log_failures(grid)
        selection: dict[str, Any] = {"group_by": self.group_by, "top_k": self.top_k,
                                     "full_fidelity": self.full_fidelity, "groups": {}, "curves": {},
                                     "extended": []}
        for _ in range(len(self.extend_below) + len(self.extend_above)):
            extra = edge_extensions(grid, self.group_by, self.extend_key, self.extend_below, self.extend_above)
            if not extra:
                break
            grid += self._launch(returns, extra, "grid (edges)")
            selection["extended"] += [_setting(job) for job in extra]
        finalists_from = grid
        if self.top_k:
            top = top_k_per_group(grid, self.group_by, self.top_k)
            promoted = self._launch(returns, promotion_jobs(top, self.full_fidelity), "promoted")
            for _ in range(len(self.extend_below) + len(self.extend_above) if self.extend_promoted else 0):
                extra = promoted_edge_extensions(promoted, grid, self.group_by, self.extend_key,
                                                 self.extend_below, self.extend_above)
                if not extra:
                    break
                promoted += self._launch(returns, extra, "promoted (edges)")
                selection.setdefault("promoted_extended", []).extend(_setting(job) for job in extra)
            if self.budget_key:
                probes = budget_probes(best_per_group(promoted, self.group_by), self.budget_key, self.budget_longer)
                promoted += self._launch(returns, probes, "promoted (longer budget)")
                selection["budget_probes"] = [_setting(job) for job in probes]
            for group, rets in top.items():
                selection["groups"][group] = {"promoted": [
                    {"overrides": _setting(ret.overrides), "grid_val": val_of(ret)} for ret in rets]}
            finalists_from = promoted
        best = best_per_group(finalists_from, self.group_by)
        if not best:
            log.warning("SeededGridSweeper: no successful job to reseed")
            return returns
        for group, ret in sorted(best.items()):
            log.info(f"best {self.group_by}={group} (val {val_of(ret):.4f}): {' '.join(ret.overrides)}; "
                     f"seeds {self.seeds}")
        if self.seeds:
            self._launch(returns, seed_jobs(best, self.seeds), "seed")
        everything = [ret for batch in returns for ret in batch]
        for group, ret in best.items():
            runs = setting_runs(ret, everything)
            selection["groups"].setdefault(group, {})["selected"] = {
                "overrides": _setting(ret.overrides), "val": val_of(ret),
                "runs": [{"seed": seed_of(r), "val": val_of(r), "dir": run_dir_of(r)} for r in runs]}
        if self.curve_sizes:
            for family, group in family_choice(best, everything, self.families).items():
                log.info(f"curves: {family} = {self.group_by}={group}, sizes {self.curve_sizes}")
                curve = self._launch(returns, curve_jobs(best[group], self.curve_sizes, self.curve_seeds,
                                                            self.curve_overrides), "curve")
                selection["curves"][family] = {
                    "group": group, "overrides": _setting(best[group].overrides), "sizes": self.curve_sizes,
                    "runs": [{"size": size, "seed": seed_of(r), "val": val_of(r) if succeeded(r) else None,
                              "dir": run_dir_of(r)}
                             for size, r in zip([n for n in self.curve_sizes for _ in self.curve_seeds], curve,
                                                strict=True)]}
        self._write_selection(selection)
        return returns

    def _write_selection(self, selection: dict) -> None:
        folder = Path(str(self.config.hydra.sweep.dir))
        write_text(folder / SELECTION_FILE, json.dumps(selection, indent=1, default=str))


def _log_failures(returns: Sequence[JobReturn]) -> None:
    """Each failed job, with the reason its `failed` record gives (it is never selected)."""
    for ret in returns:
        if not succeeded(ret):
            why = recorded_failure(run_dir_of(ret))
            log.warning(f"SeededGridSweeper: job {' '.join(ret.overrides or [])} failed: "
                        f"{why or ('it raised' if ret.status == JobStatus.FAILED else 'it returned no value')}")


def _setting(overrides: Sequence[str]) -> list[str]:
    return [o for o in overrides if name_of(o) not in (STAGE, "seed")]
