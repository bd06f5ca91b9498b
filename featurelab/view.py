"""What the researcher is looking at: the selection and the open charts.

Part of the lab's state like experiments and fits, changed only by view actions,
so a replayed session comes back with the same charts at the same zoom.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

METHODS = ("neuron_stats", "heatmap", "histogram")
# How a chart draws the members of a sweep's group (those differing only by seed): each
# run on its own (None), or one mean line with a band of the standard deviation or of
# the minimum and maximum.
BANDS = ("std", "minmax")
X_AXES = ("step", "time")
METHOD_LABELS = {"neuron_stats": "Neuron stats", "heatmap": "Heatmap", "histogram": "Histogram"}


@dataclass
class Chart:
    metric: str  # the chart shows this metric of the selected experiments
    enlarged: bool = False
    layer: str | None = None  # hook point, for activations and statistics
    method: str = "neuron_stats"  # for hidden_activations: one of METHODS
    stats: list[str] = field(default_factory=list)  # neuron stats shown (neuron_stats method)
    x_range: tuple[float, float] | None = None  # zoom; None shows everything
    y_range: tuple[float, float] | None = None
    log_x: bool = False
    log_y: bool = False
    smoothing: int = 0  # moving-average window in steps; 0 is raw
    fits_visible: bool = True  # fitted curves drawn on the chart
    band: str | None = None  # sweep groups as mean and band: one of BANDS, or each run
    # other series drawn on the same axes, "metric" or "metric@layer": test_loss on the
    # train_loss chart, or the other layers of a per-layer statistic
    also: list[str] = field(default_factory=list)
    x: str = "step"  # the x axis: "step", or "time" (seconds since each run's first step)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ViewState:
    selected: list[str] = field(default_factory=list)  # experiment ids
    viewed: list[str] = field(default_factory=list)  # experiments whose results are shown
    charts: dict[str, Chart] = field(default_factory=dict)  # metric -> chart, in opening order

    def chart(self, metric: str) -> Chart:
        """The chart of a metric, opened if it was not."""
        if metric not in self.charts:
            self.charts[metric] = Chart(metric)
        return self.charts[metric]

    def to_dict(self) -> dict[str, Any]:
        return {"selected": list(self.selected), "viewed": list(self.viewed),
                "charts": {k: c.to_dict() for k, c in self.charts.items()}}


# The colours of what is shown: one per experiment (by its position in the lab, cycling)
# and one per fit family. The panel (shipped in its state) and the blog's pictures
# (export/charts.py) both take them from here, so a picture matches the screen.
EXPERIMENT_COLORS = ("#3b82f6", "#f97316", "#10b981", "#ef4444", "#a855f7", "#eab308",
                     "#06b6d4", "#ec4899", "#84cc16", "#64748b")
FAMILY_COLORS = {"sigmoid": "#d946ef", "exponential": "#14b8a6", "power": "#f59e0b",
                 "log_power": "#8b5cf6", "linear": "#78716c"}
# The shaded spans of a curve's phases (featurelab.engine.phases.KINDS): falls blue, rises
# orange, spikes red, levels grey.
PHASE_COLORS = {"drop": "#3b82f6", "exponential decay": "#06b6d4", "decay": "#93c5fd",
                "rise": "#f97316", "spike": "#ef4444", "plateau": "#a8a29e", "flat": "#d6d3d1"}


def experiment_color(index: int) -> str:
    """The colour of the experiment at this position in the lab."""
    return EXPERIMENT_COLORS[index % len(EXPERIMENT_COLORS)]
