"""Verb values as JSON, for agents: what `lab.apply(action, actor="agent")` returns.

A verb gives code Python objects (an Experiment, a Run, a FitTable); an agent gets JSON
it can read and send on: dicts, lists, numbers, strings, booleans and null, never NaN
or infinity (null instead), so `json.dumps(value, allow_nan=False)` always works. One
converter for every kind of value, so each kind has one shape whichever action returns
it; an action whose value needs more than its kind says overrides `Action.to_json`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from featurelab.engine.stats import Statistic
from featurelab.runs import Run, RunOf
from featurelab.state import Experiment, LabState, Sweep

# The scalar series an experiment's summary shows (lab.table() has all of them): what
# an agent compares runs by.
HEADLINE = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")


def finite(value: Any) -> float | None:
    """A number as JSON holds it: NaN and infinity (a diverged run's) become None."""
    value = float(value)
    return value if math.isfinite(value) else None


def final_values(run: Run | RunOf, names: tuple[str, ...] | None = None) -> dict[str, float | None]:
    """The last recorded value of each scalar series of a run (of `names` only, if given):
    a test metric measured every eval_every steps has NaN after its last measurement."""
    out: dict[str, float | None] = {}
    for key, values in sorted(run.result().arrays.items()):
        if values.ndim == 1 and len(values) and (names is None or key in names):
            kept = values[~np.isnan(values)]
            out[key] = finite(kept[-1]) if len(kept) else None
    return out


def run_json(run: Run | RunOf) -> dict[str, Any]:
    """{run, experiment, status, steps_done, final: {series: last value}, error}."""
    result = run.result()
    return {"run": run.id, "experiment": run.experiment, "status": result.status,
            "steps_done": result.steps_done, "final": final_values(run),
            "error": result.error or None}


def experiment_json(experiment: Experiment, state: LabState) -> dict[str, Any]:
    """{id, name, tags, based_on, config, label, status, run, steps_done, final}: the
    experiment and its latest run (status "not run" and run null before it has one)."""
    run_id = state.latest.get(experiment.id)
    run = state.runs[run_id] if run_id is not None else None
    return {"id": experiment.id, "name": experiment.name, "tags": list(experiment.tags),
            "based_on": experiment.based_on, "config": experiment.config.to_dict(),
            "label": experiment.config.label,
            "status": run.status if run is not None else "not run",
            "run": run_id, "steps_done": run.steps_done if run is not None else 0,
            "final": final_values(run, HEADLINE) if run is not None else {}}


def sweep_json(sweep: Sweep) -> dict[str, Any]:
    return {"id": sweep.id, "name": sweep.name, "base": sweep.base, "knobs": list(sweep.knobs),
            "members": list(sweep.members), "values": json_value(sweep.values, None),
            "groups": {k: list(v) for k, v in sweep.groups.items()}}


def statistic_json(stat: Statistic) -> dict[str, Any]:
    return {"name": stat.name, "on": stat.on, "source": stat.source, "builtin": stat.builtin,
            "trusted": stat.trusted}


def json_value(value: Any, state: LabState | None) -> Any:
    """Any verb's value as JSON (`state` for what an experiment's status needs)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return finite(value)
    if isinstance(value, np.ndarray):
        return json_value(value.tolist(), state)
    if isinstance(value, dict):
        return {str(k): json_value(v, state) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_value(v, state) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Experiment):
        assert state is not None, "an experiment's status is the state's"
        return experiment_json(value, state)
    if isinstance(value, (Run, RunOf)):  # RunOf: a reused run, as its experiment's
        return run_json(value)
    if isinstance(value, Sweep):
        return sweep_json(value)
    if isinstance(value, Statistic):
        return statistic_json(value)
    if callable(getattr(value, "to_json", None)):  # a value that knows its JSON (Explorer)
        return json_value(value.to_json(), state)
    if hasattr(value, "to_dict"):  # FitTable, LawFit, a chart's view, a config ...
        return json_value(value.to_dict(), state)
    if hasattr(value, "__dataclass_fields__"):  # GroupFit, ...: its fields, converted
        return {name: json_value(getattr(value, name), state)
                for name in value.__dataclass_fields__}
    raise TypeError(f"no JSON form for a {type(value).__name__}; give its action a to_json")
