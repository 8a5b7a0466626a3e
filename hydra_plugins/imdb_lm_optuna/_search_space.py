"""Hydra sweep overrides -> Optuna distributions, with the syntax of Hydra's former Optuna sweeper:

  choice(a, b, c)              categorical
  range(start, stop[, step])   integers (or floats) start, start+step, ... below stop
  interval(low, high)          uniform float (int when both ends are ints)
  tag(log, interval(lo, hi))   log-uniform

Anything that is not a sweep (`model=gru`, `+key=v`, `~key`) is passed to every job as typed.
(Underscore module: Hydra's plugin scan skips it, so Optuna is imported only when a sweep starts.)
"""

from __future__ import annotations

from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep, Transformer
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from imdb_lm.errors import UserError


def _distribution(override: Override) -> BaseDistribution:
    value = override.value()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if override.is_range_sweep():
        assert isinstance(value, RangeSweep)
        step = value.step if value.step is not None else 1
        values = list(override.sweep_iterator())
        if not values:
            raise UserError(f"{override.input_line}: the range is empty")
        if all(isinstance(v, int) for v in values):
            return IntDistribution(values[0], values[-1], step=int(step))
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(step))
    if override.is_interval_sweep():
        assert isinstance(value, IntervalSweep)
        log = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)
    raise UserError(f"{override.input_line}: the Optuna sweeper takes choice(...), range(...) or "
                    f"[tag(log, ...)] interval(...)")


def parse(arguments: list[str]) -> tuple[dict[str, BaseDistribution], list[str]]:
    """The search space (name -> distribution) and the fixed overrides. A later override of a name
    wins, so a fixed value on the command line takes that name out of the search space."""
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(arguments):
        name = override.get_key_element()
        space.pop(name, None)
        fixed.pop(name, None)
        if override.is_sweep_override():
            space[name] = _distribution(override)
        else:
            fixed[name] = override.input_line
    return space, list(fixed.values())


def grid(space: dict[str, BaseDistribution]) -> dict[str, list[Any]]:
    """Every value of each parameter, for the grid sampler: only discrete parameters have them."""
    points = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            points[name] = list(dist.choices)
        elif isinstance(dist, IntDistribution) and not dist.log:
            points[name] = list(range(dist.low, dist.high + 1, dist.step))
        elif isinstance(dist, FloatDistribution) and dist.step is not None:
            count = int(round((dist.high - dist.low) / dist.step)) + 1
            points[name] = [dist.low + i * dist.step for i in range(count)]
        else:
            raise UserError(f"{name}: the grid sampler takes choice(...) or range(...) values, not a continuous "
                            f"interval; list the values or use hydra/sweeper/sampler=tpe")
    return points


def override(name: str, value: Any) -> str:
    """A job override for a sampled value (strings were escaped by Transformer.encode)."""
    if value is None:
        return f"{name}=null"
    if isinstance(value, bool):
        return f"{name}={str(value).lower()}"
    return f"{name}={value}"
