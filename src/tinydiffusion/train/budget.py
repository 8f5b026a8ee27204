"""Training to a wall-clock budget: measure the speed of the first steps, then plan the step count.

``tinydiffusion train --time-budget MINUTES`` cannot fix the step count in advance: the same recipe
runs 2× faster or slower from one laptop to the next. The run therefore

1. takes a few *calibration* steps (at most :data:`CALIBRATION_STEPS`, or 10 % of the budget) and
   times them (the first step, which builds kernels, is not counted);
2. writes its first checkpoint and preview, timing both, so that the plan knows what the remaining
   ones will cost;
3. plans N, the largest step count for which

       elapsed + (N − s)·t_step + n_previews(N)·t_preview + n_checkpoints(N)·t_checkpoint ≤ budget,

   and from then on trains an ordinary N-step run (the learning-rate schedule ends at step N);
4. stops early, with a normal final checkpoint, only if the machine slows down so much that the
   final save would otherwise end after the deadline.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass

#: Steps timed before planning (fewer when they would take more than CALIBRATION_SHARE of the budget).
CALIBRATION_STEPS = 10
CALIBRATION_SHARE = 0.1


@dataclass(frozen=True)
class BudgetPlan:
    """What the planner measured and decided (logged, and written to the run's ``time_budget.json``)."""

    budget_s: float
    calibration_steps: int
    seconds_per_step: float
    preview_s: float
    checkpoint_s: float
    elapsed_s: float  #: wall-clock seconds from the start of the run to the moment of planning
    planned_steps: int

    def to_dict(self) -> dict[str, float | int]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}

    def describe(self) -> str:
        """One line for the terminal."""
        return (f"time budget {self.budget_s / 60:g} min: {self.seconds_per_step:.3f} s per step over "
                f"{self.calibration_steps} steps, preview {self.preview_s:.1f} s, checkpoint {self.checkpoint_s:.1f} s "
                f"-> {self.planned_steps:,} steps")


def events(first: int, total: int, every: int | None) -> int:
    """How many of steps first+1..total are multiples of ``every`` (default total // 4), plus the last step."""
    every = every or max(1, total // 4)
    count = total // every - first // every
    return count + (0 if total % every == 0 else 1)


class TimeBudget:
    """The clock of a budgeted run: calibration, the plan, and the deadline (module docstring)."""

    def __init__(self, minutes: float, started: float):
        self.budget_s = 60.0 * minutes
        self.started = started
        self._step_ends: list[float] = []
        self.plan: BudgetPlan | None = None

    def step_done(self, now: float) -> None:
        """Record the end of a calibration step."""
        self._step_ends.append(now)

    @property
    def calibrated(self) -> bool:
        """Enough steps timed to plan: CALIBRATION_STEPS, or fewer once they use CALIBRATION_SHARE of the budget."""
        n = len(self._step_ends)
        if n >= CALIBRATION_STEPS + 1:
            return True
        return n >= 2 and self._step_ends[-1] - self.started >= CALIBRATION_SHARE * self.budget_s

    def seconds_per_step(self) -> float:
        """The median duration of the timed steps (all but the first)."""
        ends = self._step_ends
        return statistics.median(b - a for a, b in zip(ends, ends[1:]))

    def make_plan(self, step: int, now: float, *, preview_s: float, checkpoint_s: float,
                  preview_every: int | None, checkpoint_every: int | None, previews: bool = True) -> BudgetPlan:
        """The largest step count N whose remaining steps, previews and checkpoints end within the budget."""
        t_step = self.seconds_per_step()
        left = self.budget_s - (now - self.started)

        def cost(total: int) -> float:
            n_previews = events(step, total, preview_every) if previews else 0
            return ((total - step) * t_step + n_previews * preview_s
                    + events(step, total, checkpoint_every) * checkpoint_s)

        total = step + max(1, math.floor(left / t_step))
        while total > step + 1 and cost(total) > left:  # down in strides to a count that fits …
            total -= max(1, math.ceil((cost(total) - left) / t_step))
        while cost(total + 1) <= left:  # … then up to the largest one (previews make the cost jump)
            total += 1
        self.plan = BudgetPlan(self.budget_s, len(self._step_ends) - 1, t_step, preview_s, checkpoint_s,
                               now - self.started, max(total, step + 1))
        return self.plan

    def out_of_time(self, now: float) -> bool:
        """True when the final checkpoint and preview, started now, would end after the deadline."""
        assert self.plan is not None
        reserve = self.plan.preview_s + self.plan.checkpoint_s
        return now - self.started + reserve > self.budget_s
