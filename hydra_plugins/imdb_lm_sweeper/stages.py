"""The job lists of the study's later stages, as plain functions of finished jobs (no launching).

Every selection reads a job's returned value, which is its best *validation* accuracy (the training
entry point never returns a test metric); failed jobs (not completed, or returning None) are
never selected. A job is named by its override list; `stage=...` is a label and no part of it.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence

from hydra.core.utils import JobReturn, JobStatus

STAGE = "stage"


def name_of(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def override_value(overrides: Sequence[str], key: str) -> str | None:
    for item in overrides:
        if name_of(item) == key:
            return item.partition("=")[2]
    return None


def with_overrides(overrides: Sequence[str], extra: Iterable[str]) -> list[str]:
    """`overrides` with `extra` replacing any override of the same key (and added otherwise)."""
    extra = list(extra)
    replaced = {name_of(item) for item in extra}
    return [*(o for o in overrides if name_of(o) not in replaced), *extra]


def succeeded(ret: JobReturn) -> bool:
    return ret.status == JobStatus.COMPLETED and ret.return_value is not None


def val_of(ret: JobReturn) -> float:
    return float(ret.return_value)


def group_of(ret: JobReturn, group_by: str) -> str:
    return override_value(ret.overrides or [], group_by) or "all"


def seed_of(ret: JobReturn) -> str:
    """The job's seed, also where it ran at the config's default (no seed override)."""
    given = override_value(ret.overrides or [], "seed")
    if given is not None:
        return given
    return str(ret.cfg.get("seed")) if ret.cfg is not None else ""


def run_dir_of(ret: JobReturn) -> str:
    """The job's output folder (its run folder; `working_dir` is where the process ran)."""
    return str(ret.hydra_cfg.hydra.runtime.output_dir) if ret.hydra_cfg is not None else str(ret.working_dir)


def identity(overrides: Sequence[str], seed: str | None = None) -> frozenset[tuple[str, str]]:
    """What a job is, for not launching the same job twice in one sweep (order and stage ignored;
    `seed`: the seed it runs at when it has no seed override)."""
    named = {name_of(o): o.partition("=")[2] for o in overrides if name_of(o) != STAGE}
    if seed is not None:
        named.setdefault("seed", seed)
    return frozenset(named.items())


def job_identity(ret: JobReturn) -> frozenset[tuple[str, str]]:
    return identity(ret.overrides or [], seed_of(ret))


def top_k_per_group(returns: Sequence[JobReturn], group_by: str, k: int) -> dict[str, list[JobReturn]]:
    """The k successful jobs of each group with the highest validation accuracy, best first (ties
    keep the grid's order)."""
    groups: dict[str, list[JobReturn]] = {}
    for ret in returns:
        if succeeded(ret):
            groups.setdefault(group_of(ret, group_by), []).append(ret)
    return {group: sorted(rets, key=val_of, reverse=True)[:k] for group, rets in sorted(groups.items())}


def best_per_group(returns: Sequence[JobReturn], group_by: str) -> dict[str, JobReturn]:
    return {group: rets[0] for group, rets in top_k_per_group(returns, group_by, 1).items()}


def _beyond_edge(best: JobReturn, ran: set[float], key: str, below: Sequence[float],
                 above: Sequence[float]) -> float | None:
    """The next value of `below` (`above`) beyond the lowest (highest) value ran, where `best` sits there."""
    value = override_value(best.overrides or [], key)
    if value is None or len(ran) < 2:
        return None
    value = float(value)
    lower, higher = [v for v in below if float(v) < min(ran)], [v for v in above if float(v) > max(ran)]
    return (max(lower, key=float) if value == min(ran) and lower else
            min(higher, key=float) if value == max(ran) and higher else None)


def _values(returns: Iterable[JobReturn], group_by: str, group: str, key: str) -> set[float]:
    return {float(v) for ret in returns if group_of(ret, group_by) == group
            for v in [override_value(ret.overrides or [], key)] if v is not None}


def edge_extensions(grid: Sequence[JobReturn], group_by: str, key: str, below: Sequence[float],
                    above: Sequence[float]) -> list[list[str]]:
    """Jobs that extend the grid where a group's best job sits at an edge of the swept axis `key`.

    A best rate at the lowest (highest) value a group ran may be cut off by the grid rather than be
    the best: the same job runs at the first value of `below` (`above`) beyond that edge. Called again
    with the new results, it extends further while the best stays at the edge, until the list runs out.
    Groups that ran a single value of `key` have no edge.
    """
    jobs = []
    for group, best in best_per_group(grid, group_by).items():
        nearest = _beyond_edge(best, _values(grid, group_by, group, key), key, below, above)
        if nearest is not None:
            jobs.append(with_overrides(best.overrides, [f"{key}={nearest}", f"{STAGE}=grid"]))
    return jobs


def promoted_edge_extensions(promoted: Sequence[JobReturn], earlier: Sequence[JobReturn], group_by: str, key: str,
                             below: Sequence[float], above: Sequence[float]) -> list[list[str]]:
    """Jobs that extend the rates of each group's best *promoted* setting where it sits at an edge of
    what the group ran (grid, grid edges and promoted alike): the same full-fidelity job at the next
    value of `below` or `above`. The grid's own edge rule looks only at the single best grid job; a
    promoted setting chosen at full fidelity can sit at an edge that rule never saw."""
    jobs = []
    for group, best in best_per_group(promoted, group_by).items():
        nearest = _beyond_edge(best, _values([*earlier, *promoted], group_by, group, key), key, below, above)
        if nearest is not None:
            jobs.append(with_overrides(best.overrides, [f"{key}={nearest}", f"{STAGE}=promoted"]))
    return jobs


def budget_probes(best: Mapping[str, JobReturn], key: str, longer: Mapping[str, object]) -> list[list[str]]:
    """Each group's best promoted job once more at its longer training budget (`key`, e.g.
    trainer.max_epochs, at `longer[group]`), so that the budget, too, is chosen on validation."""
    return [with_overrides(ret.overrides, [f"{key}={longer[group]}", f"{STAGE}=promoted"])
            for group, ret in sorted(best.items()) if group in longer]


def promotion_jobs(top: Mapping[str, Sequence[JobReturn]], full_fidelity: Sequence[str]) -> list[list[str]]:
    return [with_overrides(ret.overrides, [*full_fidelity, f"{STAGE}=promoted"])
            for _, rets in sorted(top.items()) for ret in rets]


def seed_jobs(best: Mapping[str, JobReturn], seeds: Sequence[int]) -> list[list[str]]:
    """More seeds of each group's best job; a seed it already ran with is not run again."""
    return [with_overrides(ret.overrides, [f"seed={seed}", f"{STAGE}=seed"])
            for _, ret in sorted(best.items()) for seed in seeds if str(seed) != seed_of(ret)]


def setting_runs(best: JobReturn, returns: Sequence[JobReturn]) -> list[JobReturn]:
    """The successful runs of `best`'s setting (same overrides but the seed and stage)."""
    setting = {item for item in job_identity(best) if item[0] != "seed"}
    return [ret for ret in returns if succeeded(ret)
            and {item for item in job_identity(ret) if item[0] != "seed"} == setting]


def family_choice(best: Mapping[str, JobReturn], returns: Sequence[JobReturn],
                  families: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """For each family, its group whose selected setting has the highest mean validation accuracy
    over its seeds (groups with no successful run are left out)."""
    chosen = {}
    for family, groups in sorted(families.items()):
        means = {group: statistics.fmean(val_of(r) for r in setting_runs(best[group], returns))
                 for group in groups if group in best}
        if means:
            chosen[family] = max(sorted(means), key=means.__getitem__)
    return chosen


def curve_jobs(best: JobReturn, sizes: Sequence[int | None], seeds: Sequence[int],
               overrides: Sequence[str] = ()) -> list[list[str]]:
    """The selected setting at each train size (None: the whole split) and seed, not re-tuned.
    `overrides` apply to the other sizes only: the point at the selected setting's own size is its own
    run (the same job identity), which a setting the subsets need must not make another job."""
    own = str(override_value(best.overrides, "data.train_limit"))
    jobs = []
    for size in sizes:
        limit = "null" if size is None else str(size)
        extra = [] if limit == own else list(overrides)
        jobs += [with_overrides(best.overrides, [f"data.train_limit={limit}", *extra, f"seed={seed}",
                                                 f"{STAGE}=curve"]) for seed in seeds]
    return jobs
