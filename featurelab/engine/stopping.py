"""Early stopping: a run ends once a metric has been past a threshold for long enough.

The condition (`StopConfig`, "test_accuracy > 0.99 for 100 steps") is checked at the steps
where its metric is measured on schedule: every step for a training metric, every
`eval_every`-th step for a test metric. It is met at check s when the metric was past
the threshold at every check from some check s0 on, with s - s0 + 1 >= for_steps (with
checks every step: for_steps steps in a row).

Evaluations off the schedule (the last step of a cancelled run) are recorded but not
checked: a cancelled run continued from its checkpoint then stops at the step the same
run uninterrupted stops at, whatever step it was cancelled at.
"""

from __future__ import annotations

import math

import numpy as np

from featurelab.engine.config import StopConfig

TEST_METRICS = ("test_loss", "test_accuracy")  # measured every eval_every steps


class EarlyStop:
    """Follows one run's checks of the condition; `update` says when it is met."""

    def __init__(self, config: StopConfig, eval_every: int) -> None:
        self.config = config
        self.every = eval_every if config.metric in TEST_METRICS else 1
        self.above = config.when == "above"
        self.since: int | None = None  # the first check of the current streak
        self.step: int | None = None  # where the condition was met

    def _holds(self, values: np.ndarray) -> np.ndarray:
        threshold = self.config.value
        return values > threshold if self.above else values < threshold  # strictly

    def update(self, step: int, value: float) -> bool:
        """The value at `step` (NaN: not measured there); True once the condition is met."""
        if step % self.every or math.isnan(value):
            return False
        if not self._holds(np.array(value)):
            self.since = None
            return False
        if self.since is None:
            self.since = step
        if step - self.since + 1 >= self.config.for_steps:
            self.step = step
            return True
        return False

    def resume(self, values: np.ndarray) -> None:
        """The streak as it stood after the rows of a run being continued (its checkpoint
        is the step after them, and the condition was not met before it)."""
        steps = np.arange(len(values))[::self.every]
        values = np.asarray(values, dtype=np.float64)[::self.every]
        measured = ~np.isnan(values)
        steps, holds = steps[measured], self._holds(values[measured])
        failed = np.flatnonzero(~holds)
        first = failed[-1] + 1 if len(failed) else 0
        self.since = int(steps[first]) if first < len(steps) else None
