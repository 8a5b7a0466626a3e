"""Grid points on a study shared by several workers.

Optuna's GridSampler hands trial number n the n-th point whatever other trials hold, counts only
finished trials as done (so a worker re-runs a point another worker is running, and every point
again once all are started), and its tell after the last point raises (`Study.stop` outside
`optimize`). So the sweeper picks the points itself: the first point, in the grid's seeded order,
that no trial holds (finished, running, or enqueued and waiting), enqueued as the next trial's
parameters. A trial's point is known from the moment it is enqueued (its `fixed_params`), before
Optuna stores its params. When two workers enqueue the same point at the same moment, the higher
trial number gives way (`holder`). No free point left: the grid is done.

A worker enqueues a point only when no trial waits, and takes whichever waiting trial its ask pops
(another worker's point is as good as its own): an enqueued trial nobody pops would hold its point
forever, and the point would never run. When the ask pops none (another worker took the last one),
Optuna creates a fresh trial on a point of the sampler's choosing; the sweeper skips it. Skipped
trials (given way or fresh) hold no point.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable
from typing import Any

from optuna.trial import FrozenTrial, TrialState

Point = tuple[Any, ...]
SKIPPED = "grid_point_taken_by"  # user attr of a trial that never ran: the trial that holds its point, or None


class SharedGrid:
    def __init__(self, points: dict[str, list[Any]], seed: int | None = None) -> None:
        self.names = sorted(points)
        self.order: list[Point] = list(itertools.product(*(points[name] for name in self.names)))
        random.Random(seed or 0).shuffle(self.order)  # as GridSampler: a partial grid is spread out

    def __len__(self) -> int:
        return len(self.order)

    def point(self, params: dict[str, Any]) -> Point | None:
        if not all(name in params for name in self.names):
            return None
        return tuple(params[name] for name in self.names)

    def params(self, point: Point) -> dict[str, Any]:
        return dict(zip(self.names, point, strict=True))

    def _holders(self, trials: Iterable[FrozenTrial]) -> Iterable[tuple[FrozenTrial, Point]]:
        for trial in trials:
            if SKIPPED in trial.user_attrs:
                continue
            if trial.state.is_finished() or trial.state in (TrialState.RUNNING, TrialState.WAITING):
                point = self.point(trial.params) or self.point(trial.system_attrs.get("fixed_params") or {})
                if point is not None:
                    yield trial, point

    @staticmethod
    def waiting(trials: Iterable[FrozenTrial]) -> bool:
        return any(trial.state == TrialState.WAITING for trial in trials)

    @staticmethod
    def enqueued(trials: Iterable[FrozenTrial], number: int) -> bool:
        """Whether trial `number` was popped from the queue (False: a fresh trial the ask created)."""
        return any(t.number == number and "fixed_params" in t.system_attrs for t in trials)

    def next_free(self, trials: Iterable[FrozenTrial]) -> Point | None:
        """The first point that no trial holds (None: the grid is done)."""
        taken = {point for _, point in self._holders(trials)}
        return next((point for point in self.order if point not in taken), None)

    def holder(self, trials: Iterable[FrozenTrial], number: int, params: dict[str, Any]) -> int | None:
        """The number of a lower-numbered trial that holds the point of trial `number`, if any."""
        mine = self.point(params)
        return min((t.number for t, point in self._holders(trials) if t.number < number and point == mine),
                   default=None)
