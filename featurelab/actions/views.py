"""View actions: what is shown, and how. They change the lab's ViewState only."""

from __future__ import annotations

from typing import Any, ClassVar

from featurelab.actions.base import Action, Context, action, call, params
from featurelab.engine.models import point_label
from featurelab.engine.observables import SNAPSHOT_OBSERVABLES
from featurelab.engine.stats import WEIGHTS
from featurelab.errors import ConfigError
from featurelab.state import LabState
from featurelab.view import BANDS, METHOD_LABELS, METHODS, X_AXES, Chart


def chart_metrics(state: LabState) -> list[str]:
    names = [o.partition("@")[0] for e in state.experiments.values() for o in e.config.observables]
    return list(dict.fromkeys(names + state.statistics.names()))


@params
class ChartAction(Action):
    """A view action on the chart of one metric; opens the chart if needed."""

    view: ClassVar[bool] = True
    metric: str

    def chart(self, state: LabState) -> Chart:
        if self.metric not in state.view.charts and self.metric not in chart_metrics(state):
            raise ConfigError("metric", self.metric, "one of " + ", ".join(chart_metrics(state)))
        return state.view.chart(self.metric)

    def chart_changed(self) -> str | None:
        return self.metric


@action
class ViewResults(Action):
    """Shows the metrics of some experiments (default: the selection)."""

    type: ClassVar[str] = "view_results"
    view: ClassVar[bool] = True
    experiments: list[str] | None = None

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        ids = self.experiments if self.experiments is not None else list(state.view.selected)
        metrics = {e: list(state.experiment(e).config.observables) for e in ids}
        state.view.viewed = ids
        return {"metrics": metrics}, metrics

    def to_code(self) -> str:
        listed = [] if self.experiments is None else [self.experiments]
        return call("lab.view_results", *listed)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        if not result or not result["metrics"]:
            return "Viewed results."
        return " ".join(f"Viewed results for {e} (metrics: {', '.join(m)})."
                        for e, m in result["metrics"].items())


@action
class OpenChart(ChartAction):
    """Opens the chart of a metric."""

    type: ClassVar[str] = "open_chart"

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        return {}, self.chart(state)

    def to_code(self) -> str:
        return call("lab.open_chart", self.metric)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        return f"Opened the {self.metric} chart."


@action
class EnlargeChart(ChartAction):
    """Enlarges a chart (or brings it back to its normal size)."""

    type: ClassVar[str] = "enlarge_chart"
    enlarged: bool = True

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        chart = self.chart(state)
        chart.enlarged = self.enlarged
        return {}, chart

    def to_code(self) -> str:
        return call("lab.enlarge_chart", self.metric, enlarged=None if self.enlarged else False)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        return f"{'Enlarged' if self.enlarged else 'Shrank'} the {self.metric} chart."


@action
class HideChart(ChartAction):
    """Closes the chart of a metric."""

    type: ClassVar[str] = "hide_chart"

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        self.chart(state)
        state.view.charts.pop(self.metric)
        return {}, None

    def to_code(self) -> str:
        return call("lab.hide_chart", self.metric)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        return f"Closed the {self.metric} chart."


@action
class ChooseLayer(ChartAction):
    """Chooses the hook point (layer) a chart shows; a weight point ('embed.weight') for
    the chart of a statistic on weights."""

    type: ClassVar[str] = "choose_layer"
    layer: str

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        on_weights = (self.metric in state.statistics
                      and state.statistics.base(self.metric) == WEIGHTS)
        points = state.weight_points() if on_weights else state.hook_points()
        if self.layer not in points:
            raise ConfigError("layer", self.layer, "one of " + ", ".join(points),
                              hint=f"{self.metric} is a statistic on weights" if on_weights
                              else "")
        chart = self.chart(state)
        chart.layer = self.layer
        return {"label": point_label(self.layer, points[self.layer])}, chart

    def to_code(self) -> str:
        return call("lab.choose_layer", self.metric, self.layer)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        return f"Chose {result['label'] if result else self.layer} for {self.metric}."


@action
class ChooseMethod(ChartAction):
    """Chooses how activations are shown: neuron stats, heatmap or histogram."""

    type: ClassVar[str] = "choose_method"
    method: str

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        if self.method not in METHODS:
            raise ConfigError("method", self.method, "one of " + ", ".join(METHODS))
        chart = self.chart(state)
        chart.method = self.method
        return {}, chart

    def to_code(self) -> str:
        return call("lab.choose_method", self.metric, self.method)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        label = METHOD_LABELS.get(self.method, self.method)
        return f"Set the method of {self.metric} to {label}."


@action
class Zoom(ChartAction):
    """Zooms a chart to x and y ranges; None shows the whole range."""

    type: ClassVar[str] = "zoom"
    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        for name in ("x_range", "y_range"):
            span = getattr(self, name)
            if span is not None and not span[0] < span[1]:
                raise ConfigError(name, list(span), "[low, high] with low < high")
        chart = self.chart(state)
        chart.x_range, chart.y_range = self.x_range, self.y_range
        return {}, chart

    def to_code(self) -> str:
        return call("lab.zoom", self.metric, x_range=self.x_range, y_range=self.y_range)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        if self.x_range is None and self.y_range is None:
            return f"Reset the zoom of the {self.metric} chart."
        parts = []
        if self.x_range is not None:
            parts.append(f"steps {self.x_range[0]:g}-{self.x_range[1]:g}")
        if self.y_range is not None:
            parts.append(f"values {self.y_range[0]:g} to {self.y_range[1]:g}")
        return f"Zoomed the {self.metric} chart to {' and '.join(parts)}."


@action
class SetAxes(ChartAction):
    """Sets linear or log scale on a chart's axes."""

    type: ClassVar[str] = "set_axes"
    log_x: bool | None = None
    log_y: bool | None = None
    x: str | None = None  # "step" or "time" (wall-clock seconds since each run's start)

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        if self.x is not None and self.x not in X_AXES:
            raise ConfigError("x", self.x, " or ".join(map(repr, X_AXES)))
        chart = self.chart(state)
        if self.log_x is not None:
            chart.log_x = self.log_x
        if self.log_y is not None:
            chart.log_y = self.log_y
        if self.x is not None and self.x != chart.x:
            chart.x = self.x
            chart.x_range = None  # a zoom in steps is no zoom in seconds
        return {}, chart

    def to_code(self) -> str:
        return call("lab.set_axes", self.metric, log_x=self.log_x, log_y=self.log_y, x=self.x)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        parts = [f"the {axis} axis to {'log' if value else 'linear'} scale"
                 for axis, value in (("x", self.log_x), ("y", self.log_y)) if value is not None]
        if self.x is not None:
            parts.append("the x axis to wall-clock seconds" if self.x == "time"
                         else "the x axis to steps")
        return f"Set {' and '.join(parts) or 'no axis'} on the {self.metric} chart."


@action
class SetSmoothing(ChartAction):
    """Smooths a chart's curves with a moving average (the raw curve stays behind)."""

    type: ClassVar[str] = "set_smoothing"
    window: int

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        if not 0 <= self.window <= 100_000:
            raise ConfigError("window", self.window, "an integer from 0 (raw) to 100000 steps")
        chart = self.chart(state)
        chart.smoothing = self.window
        return {}, chart

    def to_code(self) -> str:
        return call("lab.set_smoothing", self.metric, self.window)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        if not self.window:
            return f"Turned smoothing off on the {self.metric} chart."
        return f"Smoothed the {self.metric} chart over {self.window} steps."


@action
class SetBand(ChartAction):
    """Draws a chart's sweep groups (members differing only by seed) as their mean with a
    band of one standard deviation ("std") or of the minimum and maximum ("minmax"), N
    in the legend; None draws every run."""

    type: ClassVar[str] = "set_band"
    band: str | None = "std"

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        if self.band is not None and self.band not in BANDS:
            raise ConfigError("band", self.band, "one of " + ", ".join(BANDS) + " or None")
        chart = self.chart(state)
        chart.band = self.band
        return {}, chart

    def to_code(self) -> str:
        return call("lab.set_band", self.metric, self.band)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        if self.band is None:
            return f"Drew every run on the {self.metric} chart."
        what = "standard deviation" if self.band == "std" else "minimum and maximum"
        return f"Drew sweep groups on the {self.metric} chart as mean and {what}."


@action
class ShowFits(ChartAction):
    """Shows or hides the fitted curves on a chart."""

    type: ClassVar[str] = "show_fits"
    visible: bool = True

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        chart = self.chart(state)
        chart.fits_visible = self.visible
        return {}, chart

    def to_code(self) -> str:
        return call("lab.show_fits", self.metric, visible=self.visible)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        verb = "Showed" if self.visible else "Hid"
        return f"{verb} the fitted curves on the {self.metric} chart."


@action
class Overlay(ChartAction):
    """Draws other series on a chart's axes: other metrics with one value per step (train
    and test loss together) or other layers of a per-layer statistic (one statistic across
    all layers), each as "metric" or "metric@layer"; [] draws the chart's own alone."""

    type: ClassVar[str] = "overlay"
    also: list[str]

    def apply(self, state: LabState, ctx: Context, recorded: dict[str, Any] | None
              ) -> tuple[dict, Any]:
        chart = self.chart(state)
        known = chart_metrics(state)
        for i, spec in enumerate(self.also):
            name, _, layer = spec.partition("@")
            field = f"also[{i}]"
            if name not in known:
                raise ConfigError(field, spec, "one of " + ", ".join(known))
            level = state.statistics.level(name) if name in state.statistics else 0
            if name in SNAPSHOT_OBSERVABLES or level == 1:
                raise ConfigError(field, spec, "a metric with one value per step",
                                  hint=f"{name} has one value per neuron or sample")
            if level == 2:
                on_weights = state.statistics.base(name) == WEIGHTS
                points = state.weight_points() if on_weights else state.hook_points()
                if layer not in points:
                    raise ConfigError(field, spec, f"{name}@<layer>, a layer of "
                                      + ", ".join(points))
            elif layer:
                raise ConfigError(field, spec, name, hint=f"{name} has no layers")
        if len(set(self.also)) != len(self.also):
            raise ConfigError("also", self.also, "each series once")
        chart.also = list(self.also)
        return {}, chart

    def to_code(self) -> str:
        return call("lab.overlay", self.metric, self.also)

    def describe(self, result: dict[str, Any] | None = None) -> str:
        if not self.also:
            return f"Drew {self.metric} alone on its chart."
        return f"Drew {', '.join(self.also)} on the {self.metric} chart."

