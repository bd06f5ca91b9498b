"""Phase labels: a metric's curve split into phases (drop, plateau, rise, exponential
decay, spike, flat), each moving phase with its best fitted curve (featurelab.engine.phases).

The labels are kept on the state (`state.phases`) for the panel's shaded spans and the
blog's sentence and picture; a restored lab reads them from the log instead of labelling
again, and a replay labels again and compares.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from featurelab.actions.analysis import ended_series
from featurelab.actions.base import Action, BlogPart, Context, action, call
from featurelab.actions.compare import FIT_TOL, Comparison
from featurelab.engine.phases import SCALES, Phase, label_phases, phases_text
from featurelab.errors import ConfigError
from featurelab.state import LabState


def _of(metric: str, layer: str | None, experiment: str) -> str:
    return f"{metric} ({layer}) of {experiment}" if layer else f"{metric} of {experiment}"


def _same(then: dict[str, Any], now: dict[str, Any]) -> bool:
    """Two labellings agree: kinds, spans and curves alike, R^2 to the fits' tolerance."""
    if [then[k] for k in ("kind", "start", "end", "primitive")] != \
            [now[k] for k in ("kind", "start", "end", "primitive")]:
        return False
    a, b = then.get("r2"), now.get("r2")
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=FIT_TOL, abs_tol=1e-12)


@action
class LabelPhases(Action):
    """Splits a metric's curve into phases, each moving one with its best curve and R^2.

    Kinds: drop, exponential decay, decay, rise, spike, plateau, flat; curves: sigmoid,
    exponential, power, log-power (those of `lab.fit`)."""

    type: ClassVar[str] = "label_phases"
    experiment: str
    metric: str
    layer: str | None = None
    scale: str = "auto"  # "log" segments log10 of the values, "linear" the values

    @classmethod
    def field_schemas(cls) -> dict[str, dict[str, Any]]:
        # What an agent sees (the MCP tool's input schema): the scales, as apply checks them.
        return {"scale": {"enum": list(SCALES), "description": "auto: log10 for a positive "
                          "curve over two decades or more (a loss), else linear"}}

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        if recorded is not None and "phases" in recorded:  # restored: read, not labelled
            phases = [Phase.from_dict(p) for p in recorded["phases"]]
        else:
            if self.scale not in SCALES:
                raise ConfigError("scale", self.scale, ", ".join(SCALES))
            steps, values = ended_series(state, self.experiment, self.metric, self.layer,
                                         "label the phases of")
            phases = label_phases(steps, values, scale=self.scale)
        labels = state.add_phases(self.experiment, self.metric, self.layer, tuple(phases))
        listed = [p.to_dict() for p in phases]
        return {"phases_id": labels.id, "phases": listed}, listed

    def compare(self, recorded: dict[str, Any], replayed: dict[str, Any],
                state: LabState) -> Comparison:
        if "phases" not in recorded:
            return [], []
        what = f"phases of {_of(self.metric, self.layer, self.experiment)}"
        then, now = recorded["phases"], replayed.get("phases", [])
        if len(then) != len(now) or not all(_same(a, b) for a, b in zip(then, now)):
            text = [phases_text([Phase.from_dict(p) for p in ps]) for ps in (then, now)]
            return [], [(what, f"{text[0] or 'none'} -> {text[1] or 'none'}")]
        return [f"{what}: same phases"], []

    def blog(self, result: dict[str, Any] | None, state: LabState) -> list[BlogPart]:
        parts = super().blog(result, state)
        return [*parts, ("phases", result)] if result and "phases" in result else parts

    def to_code(self) -> str:
        return call("lab.phases", self.experiment, self.metric, layer=self.layer,
                    scale=None if self.scale == "auto" else self.scale)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        sentence = f"Labelled the phases of {_of(self.metric, self.layer, self.experiment)}"
        if result and "phases" in result:
            text = phases_text([Phase.from_dict(p) for p in result["phases"]])
            sentence += f": {text}" if text else ": no finite value"
        return sentence + "."
