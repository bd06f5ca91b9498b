"""Reads: an agent's look at the lab, typed like every action.

They are actions so that `fl.action_schema()` lists them and an agent (an MCP tool per
action) reads the lab the way it changes it, through `lab.apply`. They change nothing,
so they are `read_only`: Lab.apply neither logs them nor tells listeners, and a replay
never meets one. Their values are JSON already, the same for code and agents.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from featurelab.actions.base import Action, Context, action, call
from featurelab.actions.json_values import experiment_json, finite, json_value
from featurelab.errors import ConfigError
from featurelab.state import LabState
from featurelab.trajectory import metrics

MAX_POINTS = 10_000  # a series longer than an agent can read is downsampled anyway


@action
class ListExperiments(Action):
    """Lists every experiment: id, name, tags, config, status, latest run, final losses."""

    type: ClassVar[str] = "list_experiments"
    read_only: ClassVar[bool] = True

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        return {}, [experiment_json(e, state) for e in state.experiments.values()]

    def to_code(self) -> str:
        return call("lab.list_experiments")

    def describe(self, result: dict[str, Any] | None = None) -> str:
        return "Listed the experiments."


def _downsample(steps: np.ndarray, values: np.ndarray, points: int) -> list[list[Any]]:
    """At most `points` (step, value) pairs, evenly spaced, the first and last included;
    picked, not averaged, so every value is one the run recorded."""
    picks = np.arange(len(values))
    if len(values) > points:
        picks = np.unique(np.round(np.linspace(0, len(values) - 1, points)).astype(int))
    return [[int(steps[i]), finite(values[i])] for i in picks]


@action
class RunMetrics(Action):
    """Reads one scalar metric of an experiment's latest run (reused or not): its final
    value, minimum and the step of it, the value at `step`, and at most `points` (step,
    value) pairs of its series."""

    type: ClassVar[str] = "run_metrics"
    read_only: ClassVar[bool] = True
    experiment: str
    metric: str
    layer: str | None = None
    step: int | None = None
    points: int | None = None

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        if self.points is not None and not 2 <= self.points <= MAX_POINTS:
            raise ConfigError("points", self.points, f"an integer from 2 to {MAX_POINTS}",
                              hint="how many (step, value) pairs to read at most")
        run = state.results(self.experiment)  # raises if it has not been run
        steps, values = state.metric_series(self.experiment, self.metric, self.layer)
        key = f"{self.metric}@{self.layer}" if self.layer else self.metric
        if values.ndim != 1:
            raise ConfigError("metric", key, "a series with one value per step",
                              hint=f"{key} has one per neuron; define a statistic that "
                                   "reduces it")
        # a test metric measured every eval_every steps is NaN between: read at the
        # steps it was measured at (a diverged value, inf, stays: it was measured)
        kept = ~np.isnan(values)
        steps, values = steps[kept], values[kept]
        finite_values = np.isfinite(values)
        best = int(np.nanargmin(np.where(finite_values, values, np.nan))) \
            if finite_values.any() else None
        out = {"experiment": self.experiment, "run": run.id, "status": run.status,
               "metric": self.metric, "layer": self.layer, "points_recorded": len(values),
               "first_step": int(steps[0]) if len(steps) else None,
               "last_step": int(steps[-1]) if len(steps) else None,
               "final": finite(values[-1]) if len(values) else None,
               "min": None if best is None else finite(values[best]),
               "argmin": None if best is None else int(steps[best]),
               "at_step": None if self.step is None else self._at(steps, values),
               "series": None if self.points is None else _downsample(steps, values,
                                                                      self.points)}
        return {}, out

    def _at(self, steps: np.ndarray, values: np.ndarray) -> dict[str, Any]:
        hits = np.flatnonzero(steps == self.step)
        if not len(hits):
            if not len(steps):
                raise ConfigError("step", self.step, "a recorded step (none recorded yet)")
            near = int(steps[np.abs(steps - self.step).argmin()])
            dense = len(steps) == steps[-1] - steps[0] + 1
            allowed = (f"a recorded step, {int(steps[0])} to {int(steps[-1])}" if dense
                       else f"a step it was measured at (the nearest is {near})")
            raise ConfigError("step", self.step, allowed)
        return {"step": self.step, "value": finite(values[hits[0]])}

    def to_code(self) -> str:
        return call("lab.run_metrics", self.experiment, self.metric, layer=self.layer,
                    step=self.step, points=self.points)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        layer = f" ({self.layer})" if self.layer else ""
        return f"Read {self.metric}{layer} of {self.experiment}."


@action
class SweepTable(Action):
    """Reads a sweep's members as rows like `lab.table()`'s (knobs by path, status, and
    per scalar series its final value, minimum and the step of it), plus each member's
    group."""

    type: ClassVar[str] = "sweep_table"
    read_only: ClassVar[bool] = True
    sweep: str

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        from featurelab.frames import table_rows  # pandas, on first use

        sweep = state.sweep(self.sweep)
        group_of = {m: g for g, members in sweep.groups.items() for m in members}
        members = [m for m in dict.fromkeys(sweep.members) if m in state.experiments]
        rows = [{**row, "group": group_of.get(row["id"])}
                for row in table_rows(state, members)]
        return {}, {"sweep": sweep.id, "name": sweep.name, "base": sweep.base,
                    "knobs": list(sweep.knobs), "rows": json_value(rows, state)}

    def to_code(self) -> str:
        return call("lab.sweep_table", self.sweep)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        return f"Read the table of {self.sweep}."


@action
class ExplorationMetrics(Action):
    """Reads an exploration's trajectory metrics (coverage, repeats, keeps, plateau, the
    best so far) and, with `iterations`, every iteration (changes, value, decision)."""

    type: ClassVar[str] = "exploration_metrics"
    read_only: ClassVar[bool] = True
    exploration: str
    iterations: bool = False

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        exploration = state.exploration(self.exploration)
        value: dict[str, Any] = {"metrics": metrics(exploration)}
        if self.iterations:
            value["iterations"] = [it.to_dict() for it in exploration.iterations]
        return {}, json_value(value, state)

    def to_code(self) -> str:
        return call("lab.exploration_metrics", self.exploration,
                    iterations=self.iterations or None)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        return f"Read the trajectory metrics of {self.exploration}."
