"""Chart pictures for the blog: a chart as the panel showed it, drawn with matplotlib
from the stored series at the recorded zoom, layer, axes, smoothing and fitted curves.

It draws what js/src/chart.js and js/src/activations.js draw: a scalar metric as one
line per experiment; a per-neuron statistic as faint per-neuron lines and their mean;
hidden_activations as one plot per added neuron statistic, or as a heatmap or histogram
of one activation snapshot. It uses matplotlib's object API on an Agg canvas, never
pyplot, so exporting from a notebook leaves the notebook's own plotting alone.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from featurelab.engine.models import point_label
from featurelab.engine.predictions import PREDICTIONS, PredictionsAt
from featurelab.errors import FeaturelabError
from featurelab.export.text import plain_texts
from featurelab.view import FAMILY_COLORS, METHOD_LABELS, PHASE_COLORS, Chart
from featurelab.view import experiment_color as color_at

if TYPE_CHECKING:
    from featurelab.lab import Lab
    from featurelab.state import Fit, PhaseLabels

ACTIVATIONS_METRIC = "hidden_activations"
DPI = 100
HISTOGRAM_BINS = 60
PHASE_ALPHA = 0.18  # shaded phases stay behind the curves


@dataclass(frozen=True)
class AxesInfo:
    """What one drawn plot shows: tests and captions read it instead of the pixels."""

    title: str
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    xscale: str
    yscale: str
    spans: tuple[tuple[float, float, str], ...] = ()  # shaded phases: (start, end, kind)


@dataclass(frozen=True)
class Picture:
    png: bytes  # empty when drawn as SVG
    axes: tuple[AxesInfo, ...]
    caption: str  # one line under the picture: what, which layer, which experiments, range
    alt: str
    svg: str = ""  # the vector drawing, when asked for (the panel's SVG download)


@dataclass
class _Trace:
    experiment: str
    color: str
    steps: np.ndarray  # (T,)
    values: np.ndarray  # (T,) or (T, neurons)
    series: str = ""  # a series the chart overlays (Chart.also): named in the legend
    style: Any = "-"  # its line style: each overlaid series its own


# The line styles of a chart's overlaid series (Chart.also), in order; js/src/plot.js
# draws the same dashes.
OVERLAY_STYLES = ((0, (5, 3)), (0, (1, 2)), (0, (8, 3, 2, 3)), (0, (3, 3)))


def metric_kind(lab: Lab, metric: str) -> str:
    """"activations", "predictions", "per_neuron", "per_layer" or "scalar", as the panel
    decides."""
    if metric == ACTIVATIONS_METRIC:
        return "activations"
    if metric == PREDICTIONS:
        return "predictions"
    if metric in lab.statistics:
        return "per_neuron" if lab.statistics.level(metric) == 1 else "per_layer"
    return "scalar"


def moving_average(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over x in (x_i - window, x_i] of the finite values (the panel's)."""
    if window <= 1:
        return y.astype(float)
    finite = np.isfinite(y)
    sums = np.concatenate([[0.0], np.cumsum(np.where(finite, y, 0.0))])
    counts = np.concatenate([[0], np.cumsum(finite)])
    lo = np.searchsorted(x, x - window, side="right")
    hi = np.arange(1, len(y) + 1)
    n = counts[hi] - counts[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (sums[hi] - sums[lo]) / n
    return np.where(finite & (n > 0), out, np.nan)


def experiment_color(lab: Lab, experiment: str) -> str:
    ids = list(lab.experiments)
    return color_at(ids.index(experiment) if experiment in ids else 0)


def draw_chart(lab: Lab, chart: Chart, experiments: list[str],
               fits: list[Fit] | tuple[Fit, ...] = (), svg: bool = False,
               phases: list[PhaseLabels] | tuple[PhaseLabels, ...] = ()) -> Picture | None:
    """The chart of `chart.metric` for `experiments`, with the latest of `fits` per
    experiment when fits are visible and the latest of `phases` of the first experiment
    that has one shaded; None when there is nothing to draw (no viewed experiment has
    the data, or a statistic has no layer chosen)."""
    kind = metric_kind(lab, chart.metric)
    if kind == "predictions":
        return _draw_predictions(lab, experiments, svg)
    if kind == "activations":
        if chart.method == "neuron_stats":
            return _draw_neuron_stats(lab, chart, experiments, svg)
        return _draw_snapshot(lab, chart, experiments, svg)
    layer = chart.layer if kind != "scalar" else None
    if kind != "scalar" and layer is None:
        return None
    traces = _traces(lab, chart.metric, layer, experiments)
    if not traces:
        return None
    if chart.also:  # each series named: "exp_0 train_loss", "exp_0 test_loss"
        own = f"{chart.metric}@{layer}" if layer else chart.metric
        traces = [dataclasses.replace(t, series=own) for t in traces]
        for i, spec in enumerate(chart.also):
            name, _, at = spec.partition("@")
            style = OVERLAY_STYLES[i % len(OVERLAY_STYLES)]
            traces += [dataclasses.replace(t, series=spec, style=style)
                       for t in _traces(lab, name, at or None, experiments)]
    time = chart.x == "time"
    if time:  # each run against its own clock; fits and phases are of steps: left out
        traces = [t for t in (_timed(lab, t) for t in traces) if t is not None]
        if not traces:
            return None
    shown = (_chart_fits(fits, chart.metric, layer, experiments)
             if chart.fits_visible and not time else [])
    fig = _figure(chart, 1)
    ax = fig.add_subplot(1, 1, 1)
    info = _plot_series(ax, chart, traces, shown, chart.metric, chart.metric)
    if time:
        ax.set_xlabel("seconds since the run's first step")
    caption = _caption(lab, chart, traces, layer, fitted=bool(shown))
    labels = None if time else _chart_phases(phases, chart.metric, layer,
                                             [t.experiment for t in traces])
    if labels is not None:
        info = dataclasses.replace(info, spans=_shade_phases(ax, labels))
        caption += f"; phases of {labels.experiment} shaded"
    return _picture(fig, (info,), caption, svg)


def _timed(lab: Lab, trace: _Trace) -> _Trace | None:
    """The trace against wall-clock seconds (its run's clock, js/src/series.js
    stepsToSeconds); None for a run recorded before runs kept a clock."""
    try:
        clock = lab.results(trace.experiment).result().info.get("clock") or []
    except FeaturelabError:
        return None
    if not clock:
        return None
    at = np.asarray(clock, dtype=float)
    seconds = np.interp(trace.steps, at[:, 0], at[:, 1])
    return dataclasses.replace(trace, steps=seconds)


def _chart_phases(phases: Any, metric: str, layer: str | None, experiments: list[str]
                  ) -> PhaseLabels | None:
    """The latest labelling of (metric, layer) of the first experiment drawn that has one."""
    latest = {p.experiment: p for p in phases if p.metric == metric and p.layer == layer}
    return next((latest[e] for e in experiments if e in latest), None)


def _shade_phases(ax: Any, labels: PhaseLabels) -> tuple[tuple[float, float, str], ...]:
    """Each phase as a band across the plot in its kind's colour, named at the top."""
    lo, hi = ax.get_xlim()
    top = ax.get_xaxis_transform()  # x in data, y in axes fractions
    spans = []
    for phase in labels.phases:
        if phase.end < lo or phase.start > hi:  # outside the zoom
            continue
        start, end = max(phase.start, lo), min(phase.end, hi)
        if end <= start:  # a phase of one step still shows
            start, end = start - 0.5, end + 0.5
        color = PHASE_COLORS.get(phase.kind, "#a8a29e")
        ax.axvspan(start, end, color=color, alpha=PHASE_ALPHA, linewidth=0, zorder=0)
        spans.append((float(phase.start), float(phase.end), phase.kind))
        if (end - start) >= 0.06 * (hi - lo):  # a label only where it fits
            ax.text((start + end) / 2, 0.98, phase.kind, transform=top, ha="center",
                    va="top", fontsize=7, color="#44403c")
    ax.set_xlim(lo, hi)
    return tuple(spans)


def _traces(lab: Lab, metric: str, layer: str | None, experiments: list[str]) -> list[_Trace]:
    traces = []
    for experiment in experiments:
        try:
            steps, values = lab.metric_series(experiment, metric, layer)
        except FeaturelabError:  # not run, or no such series: the panel leaves it out too
            continue
        values = np.asarray(values, dtype=float)
        rows = values if values.ndim == 1 else values.reshape(len(values), -1)
        filled = np.flatnonzero(np.isfinite(rows).any(axis=1) if rows.ndim == 2
                                else np.isfinite(rows))
        if not len(filled):
            continue
        n = int(filled[-1]) + 1  # a running experiment ends in rows not filled in yet
        steps, values = np.asarray(steps[:n], dtype=float), values[:n]
        if values.ndim == 1:  # a test metric measured every eval_every steps is drawn
            keep = ~np.isnan(values)  # as a line through the steps it was measured at
            steps, values = steps[keep], values[keep]
        traces.append(_Trace(experiment, experiment_color(lab, experiment), steps, values))
    return traces


def _chart_fits(fits: Any, metric: str, layer: str | None, experiments: list[str]) -> list:
    """The latest fit of (metric, layer) for each shown experiment (js/src/fits.js)."""
    latest = {f.experiment: f for f in fits
              if f.metric == metric and f.layer == layer and f.experiment in experiments}
    return [latest[e] for e in experiments if e in latest]


def _figure(chart: Chart, plots: int) -> Figure:
    width, height = (9.0, 4.6) if chart.enlarged else (7.0, 3.6)
    fig = Figure(figsize=(width, height * plots if plots > 1 else height), dpi=DPI,
                 layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _masked(x: np.ndarray, y: np.ndarray, chart: Chart) -> tuple[np.ndarray, np.ndarray]:
    """Log axes cannot show x <= 0 or y <= 0: those points are left out, as uPlot does."""
    keep = x > 0 if chart.log_x else np.ones(len(x), dtype=bool)
    y = y[keep]
    if chart.log_y:
        y = np.where(y > 0, y, np.nan)
    return x[keep], y


def _plot_series(ax: Any, chart: Chart, traces: list[_Trace], fits: list, metric: str,
                 title: str) -> AxesInfo:
    visible: list[tuple[np.ndarray, np.ndarray]] = []  # (x, y) drawn, for the y range
    for t in traces:
        x, values = t.steps, t.values
        if values.ndim == 2:
            alpha = 0.12 if values.shape[1] > 50 else 0.22
            xs, cols = _masked(x, values, chart)
            segments = [np.column_stack([xs, cols[:, c]]) for c in range(cols.shape[1])]
            ax.add_collection(LineCollection(segments, colors=t.color, alpha=alpha,
                                             linewidths=0.7))
            visible.append((xs, cols))
            with np.errstate(all="ignore"):
                y = np.nanmean(np.where(np.isfinite(values), values, np.nan), axis=1)
            label, width = f"{t.experiment} mean", 2.4
        else:
            y, width = values, 1.8
            label = f"{t.experiment} {t.series}" if t.series else t.experiment
        if chart.smoothing > 1:
            xs, raw = _masked(x, y, chart)
            ax.plot(xs, raw, color=t.color, alpha=0.3, linewidth=1.0,
                    label=f"{label} (raw)")
            y = moving_average(x, y, chart.smoothing)
            label = f"{label}, smoothed over {chart.smoothing} steps"
        xs, ys = _masked(x, y, chart)
        ax.plot(xs, ys, color=t.color, linewidth=width, label=label, linestyle=t.style)
        visible.append((xs, ys))
    for fit in fits:
        lo, hi = fit.table.x_range if fit.table.x_range is not None else (
            float(traces[0].steps.min()), float(traces[0].steps.max()))
        grid = np.linspace(lo, hi, 400)
        for row in fit.table.rows:
            if not row.ok:
                continue
            xs, ys = _masked(grid, row.predict(grid), chart)
            ax.plot(xs, ys, color=FAMILY_COLORS.get(row.family, "#78716c"), linewidth=1.5,
                    linestyle=(0, (6, 4)),
                    label=f"{fit.experiment} {row.label} fit, R² = {row.r2:.4f}")
            visible.append((xs, ys))
    ax.set_xscale("log" if chart.log_x else "linear")
    ax.set_yscale("log" if chart.log_y else "linear")
    xlim = _x_limits(chart, visible)
    ax.set_xlim(*xlim)
    ax.set_ylim(*_y_limits(chart, visible, xlim))
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_title(title, loc="left", fontsize=11)
    ax.grid(True, color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best", frameon=False)
    return _info(ax, title)


def _x_limits(chart: Chart, visible: list) -> tuple[float, float]:
    if chart.x_range is not None:
        return float(chart.x_range[0]), float(chart.x_range[1])
    xs = np.concatenate([x for x, _ in visible]) if visible else np.array([0.0, 1.0])
    lo, hi = float(np.nanmin(xs)), float(np.nanmax(xs))
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def _y_limits(chart: Chart, visible: list, xlim: tuple[float, float]) -> tuple[float, float]:
    """The recorded y range, or the range of what is visible in the x range, padded."""
    if chart.y_range is not None:
        return float(chart.y_range[0]), float(chart.y_range[1])
    shown = []
    for x, y in visible:
        inside = (x >= xlim[0]) & (x <= xlim[1])
        values = y[inside] if y.ndim == 1 else y[inside].ravel()
        shown.append(values[np.isfinite(values)])
    values = np.concatenate(shown) if shown else np.array([])
    if not len(values):
        return (1.0, 10.0) if chart.log_y else (0.0, 1.0)
    lo, hi = float(values.min()), float(values.max())
    if chart.log_y:
        return lo / 1.15, hi * 1.15
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 0.5)
    return lo - pad, hi + pad


def _draw_neuron_stats(lab: Lab, chart: Chart, experiments: list[str], svg: bool = False
                       ) -> Picture | None:
    """One plot per added neuron statistic of the chosen layer, as the panel stacks them."""
    if chart.layer is None:
        return None
    plots = [(stat, _traces(lab, stat, chart.layer, experiments)) for stat in chart.stats]
    plots = [(stat, traces) for stat, traces in plots if traces]
    if not plots:
        return None
    fig = _figure(chart, len(plots))
    infos = []
    for i, (stat, traces) in enumerate(plots, 1):
        ax = fig.add_subplot(len(plots), 1, i)
        per = "per neuron (faint) and their mean" if traces[0].values.ndim == 2 else "per layer"
        infos.append(_plot_series(ax, chart, traces, [], stat, f"{stat}, {per}"))
    traces = [t for _, ts in plots for t in ts]
    return _picture(fig, tuple(infos), _caption(lab, chart, traces, chart.layer, fitted=False),
                    svg)


def _draw_snapshot(lab: Lab, chart: Chart, experiments: list[str], svg: bool = False
                   ) -> Picture | None:
    """Heatmap or histogram of one activation snapshot. The panel's step slider is not
    part of the recorded view, so the picture shows the last snapshot (the trained
    network) and says so."""
    if chart.layer is None:
        return None
    ordered = sorted(experiments, key=lambda e: ACTIVATIONS_METRIC not in
                     lab.experiments[e].config.observables if e in lab.experiments else True)
    for experiment in ordered:
        try:
            snapshots = lab.results(experiment).result().snapshots
        except FeaturelabError:
            continue
        if snapshots is None or chart.layer not in snapshots.points or not snapshots.count:
            continue
        step = int(snapshots.steps[-1])
        values = np.asarray(snapshots.at(chart.layer, step), dtype=float)  # (S, N)
        fig = _figure(chart, 1)
        ax = fig.add_subplot(1, 1, 1)
        title = f"{chart.layer} of {experiment} at step {step}"
        if chart.method == "heatmap":
            vmax = float(np.nanmax(np.abs(values))) or 1.0
            image = ax.imshow(values, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                              interpolation="nearest")
            fig.colorbar(image, ax=ax, label="activation")
            ax.set_xlabel(f"neuron ({values.shape[1]})")
            ax.set_ylabel(f"sample ({values.shape[0]})")
        else:
            finite = values[np.isfinite(values)]
            ax.hist(finite, bins=HISTOGRAM_BINS, color=experiment_color(lab, experiment),
                    alpha=0.85)
            if len(finite) and finite.min() < 0 < finite.max():
                ax.axvline(0.0, color="#616161", linestyle=(0, (3, 3)), linewidth=1)
            ax.set_xlabel("activation")
            ax.set_ylabel("count")
        ax.set_title(title, loc="left", fontsize=11)
        shape = lab.hook_points().get(chart.layer)
        where = point_label(chart.layer, shape) if shape else chart.layer
        caption = (f"{ACTIVATIONS_METRIC}, {where}, {experiment}: "
                   f"{METHOD_LABELS[chart.method].lower()} at step {step} (the last snapshot)")
        return _picture(fig, (_info(ax, title),), caption, svg)
    return None


# js/src/predictions.js draws the same marks and colours
TEST_COLOR = "#e8590c"
PAIR_COLORS = {"train, right": "#8fd19e", "train, wrong": "#f4a5a5",
               "test, right": "#15803d", "test, wrong": "#c92a2a"}


def _draw_predictions(lab: Lab, experiments: list[str], svg: bool = False,
                      step: int | None = None) -> Picture | None:
    """The data and the network's predictions on it at the last snapshot (or the one at
    or before `step`) of the first of `experiments` that kept them. The panel's step
    slider is not part of the view: the blog shows the trained network and says so."""
    from featurelab.frames import run_predictions  # pandas: loaded when first drawn

    for experiment in experiments:
        try:
            at = run_predictions(lab.state, experiment, step)
        except FeaturelabError:
            continue
        fig = Figure(figsize=(7.0, 6.4 if at.kind == "pairs" else 4.2), dpi=DPI)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        _PREDICTION_VIEWS[at.kind](fig, ax, at, experiment_color(lab, experiment))
        what = "accuracy" if at.n_classes else "MSE"
        errors = ", ".join(f"{split} {what} {_error_text(at, split)}"
                           for split in ("train", "test") if split == "train" or at.rows.n_test)
        title = f"predictions of {experiment} at step {at.step}"
        ax.set_title(title, loc="left", fontsize=11)
        which = "the last snapshot" if at.step == at.steps[-1] else "a snapshot"
        kept = f"; {at.left_out} samples past the first {at.samples} not kept" \
            if at.left_out else ""
        caption = (f"{PREDICTIONS}, {experiment}: {_VIEW_WORDS[at.kind]} at step {at.step} "
                   f"({which}); {errors}{kept}")
        return _picture(fig, (_info(ax, title),), caption, svg)
    return None


def _gaps(values: np.ndarray) -> np.ndarray:
    """Values with NaN where they are not finite: matplotlib leaves a gap there."""
    return np.where(np.isfinite(values), values, np.nan)


def _finite_range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo - 1.0, hi + 1.0)


def _error_text(at: PredictionsAt, split: str) -> str:
    value = at.error(split)
    return f"{100 * value:.1f}%" if at.n_classes else f"{value:.3g}"


def _samples(at: PredictionsAt) -> tuple[slice, slice]:
    return slice(0, at.rows.n_train), slice(at.rows.n_train, at.samples)


def _curve(fig: Figure, ax: Any, at: PredictionsAt, color: str) -> None:
    train, test = _samples(at)
    x, y = at.inputs[:, 0], at.target
    ax.scatter(x[train], y[train], s=9, color="#616161", alpha=0.55, label="train")
    if at.rows.n_test:
        ax.scatter(x[test], y[test], s=12, facecolors="none", edgecolors=TEST_COLOR,
                   label="test")
    grid = at.rows.x[at.samples:, 0].double().numpy()
    ax.plot(grid, _gaps(at.prediction[at.samples:]), color=color, linewidth=2, label="prediction")
    lo, hi = _finite_range(y)
    pad = (hi - lo) * 0.1 or 1.0
    ax.set_ylim(lo - pad, hi + pad)  # the data's range: a wild early curve is cut
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(loc="best", fontsize=9, frameon=False)


def _plane(fig: Figure, ax: Any, at: PredictionsAt, color: str) -> None:
    gx, gy = at.rows.grid
    raw = at.prediction[at.samples:].reshape(gy, gx)
    lo, hi = _finite_range(np.concatenate([raw.ravel(), at.target]))
    # a diverged network: inf at the ends of the colour scale, NaN masked (grey)
    surface = np.ma.masked_invalid(np.clip(raw, lo, hi))
    e = at.rows.extent
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#9e9e9e")
    image = ax.imshow(surface, origin="lower", extent=(e[0], e[1], e[2], e[3]), aspect="equal",
                      cmap=cmap, vmin=lo, vmax=hi, interpolation="bilinear")
    train, test = _samples(at)
    ax.scatter(at.inputs[train, 0], at.inputs[train, 1], c=at.target[train], cmap="viridis",
               vmin=lo, vmax=hi, s=14, edgecolors="white", linewidths=0.6, label="train")
    if at.rows.n_test:
        ax.scatter(at.inputs[test, 0], at.inputs[test, 1], c=at.target[test], cmap="viridis",
                   vmin=lo, vmax=hi, s=18, edgecolors=TEST_COLOR, linewidths=1.0, label="test")
    fig.colorbar(image, ax=ax, label="prediction (background), target (dots)")
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")


def _pairs(fig: Figure, ax: Any, at: PredictionsAt, color: str) -> None:
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    p = at.n_classes
    table = np.full((p, p), np.nan)
    a, b = at.inputs[:, 0].astype(int), at.inputs[:, 1].astype(int)
    right = at.prediction[:at.samples] == at.target
    test = np.arange(at.samples) >= at.rows.n_train
    table[a, b] = 2 * test + right  # 0 train wrong, 1 train right, 2 test wrong, 3 test right
    colors = [PAIR_COLORS[k] for k in ("train, wrong", "train, right", "test, wrong",
                                        "test, right")]
    ax.imshow(table, cmap=ListedColormap(colors), vmin=-0.5, vmax=3.5,
              interpolation="nearest", origin="upper")
    ax.set_xlabel("b")
    ax.set_ylabel("a")
    counts = {k: 0 for k in PAIR_COLORS}
    for split, ok in zip(np.where(test, "test", "train"), right):
        counts[f"{split}, {'right' if ok else 'wrong'}"] += 1
    fig.subplots_adjust(bottom=0.17)  # room for the key under the table
    handles = [Patch(color=c, label=f"{k} ({counts[k]})") for k, c in PAIR_COLORS.items()]
    if at.left_out:  # blank: pairs past the first 32,768, whose predictions were not kept
        handles.append(Patch(facecolor="white", edgecolor="#9e9e9e",
                             label=f"not kept ({at.left_out})"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.09),
              ncol=min(4, len(handles)), fontsize=9, frameon=False)


def _scatter(fig: Figure, ax: Any, at: PredictionsAt, color: str) -> None:
    train, test = _samples(at)
    y, p = at.target, _gaps(at.prediction[:at.samples])
    lo, hi = _finite_range(np.concatenate([y, p]))
    ax.plot([lo, hi], [lo, hi], color="#616161", linestyle=(0, (4, 4)), linewidth=1)
    ax.scatter(y[train], p[train], s=9, color="#616161", alpha=0.55, label="train")
    if at.rows.n_test:
        ax.scatter(y[test], p[test], s=12, facecolors="none", edgecolors=TEST_COLOR,
                   label="test")
    ax.set_xlabel("target")
    ax.set_ylabel("prediction")
    ax.legend(loc="best", fontsize=9, frameon=False)


_PREDICTION_VIEWS = {"curve": _curve, "plane": _plane, "pairs": _pairs, "scatter": _scatter}
_VIEW_WORDS = {"curve": "the samples and the learned curve",
               "plane": "the learned function over the plane, with the samples",
               "pairs": "right and wrong answers on every pair (a, b)",
               "scatter": "prediction against target"}


def _caption(lab: Lab, chart: Chart, traces: list[_Trace], layer: str | None,
             fitted: bool) -> str:
    parts = [chart.metric]
    if layer is not None:
        shape = lab.hook_points().get(layer) or lab.weight_points().get(layer)
        parts.append(point_label(layer, shape) if shape else layer)
    parts.append(", ".join(dict.fromkeys(t.experiment for t in traces)))
    if chart.metric == ACTIVATIONS_METRIC:
        parts.append("neuron stats: " + ", ".join(chart.stats))
    unit = "seconds" if chart.x == "time" else "steps"
    if chart.x_range is not None:
        parts.append(f"{unit} {chart.x_range[0]:g}–{chart.x_range[1]:g}")
    elif chart.x == "time":
        parts.append("against wall-clock seconds")
    if chart.y_range is not None:
        parts.append(f"values {chart.y_range[0]:g} to {chart.y_range[1]:g}")
    scales = [f"log {axis}" for axis, on in (("x", chart.log_x), ("y", chart.log_y)) if on]
    parts += scales
    if chart.smoothing > 1:
        parts.append(f"smoothed over {chart.smoothing} steps")
    if fitted:
        parts.append("fitted curves dashed")
    return "; ".join(parts)


def _info(ax: Any, title: str) -> AxesInfo:
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    return AxesInfo(title, (float(xlim[0]), float(xlim[1])), (float(ylim[0]), float(ylim[1])),
                    ax.get_xscale(), ax.get_yscale())


def _picture(fig: Figure, axes: tuple[AxesInfo, ...], caption: str, svg: bool = False
             ) -> Picture:
    plain_texts(fig)  # names and labels are text, never mathtext ("$" in a name)
    if svg:
        text = io.StringIO()
        # No date stamp, fixed ids: the same chart gives the same file.
        with matplotlib.rc_context({"svg.hashsalt": "featurelab", "svg.fonttype": "none"}):
            fig.savefig(text, format="svg", metadata={"Date": None, "Creator": None})
        return Picture(b"", axes, caption, alt=caption, svg=text.getvalue())
    buffer = io.BytesIO()
    # No "Software" stamp: the same session gives byte-identical pictures.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return Picture(buffer.getvalue(), axes, caption, alt=caption)


# -- many runs: a sweep's groups as bands, a law across them -------------------------------

BAND_ALPHA = 0.18
LOG_SPAN = 100.0  # a banded chart gets a log y axis when its means span more than this


def draw_bands(bands: Any, title: str, ylabel: str,
               fits: dict[str, tuple[Any, tuple[float, float] | None]] | None = None
               ) -> Picture | None:
    """A sweep's groups as in the panel: per group (a frame of `lab.bands`) the mean line
    with a band of one standard deviation either side and N in the legend, and the best
    curve of a group's fit dashed (`fits`: group -> (FitRow, the x range it was fitted
    on)). None when the frame has no rows."""
    if bands is None or not len(bands):
        return None
    fits = fits or {}
    fig = _figure(Chart(metric=ylabel), 1)
    ax = fig.add_subplot(1, 1, 1)
    means = np.asarray(bands["mean"], dtype=float)
    finite = means[np.isfinite(means)]
    log_y = bool(len(finite) and finite.min() > 0 and finite.max() / finite.min() > LOG_SPAN)
    for i, group in enumerate(dict.fromkeys(bands["group"])):
        part = bands[bands["group"] == group]
        color = color_at(i)
        measured = ~np.isnan(np.asarray(part["mean"], dtype=float))  # eval_every gaps
        steps = np.asarray(part["step"], dtype=float)[measured]
        mean = np.asarray(part["mean"], dtype=float)[measured]
        std = np.asarray(part["std"], dtype=float)[measured]
        n = int(part["n"].iloc[0])
        ax.plot(steps, mean, color=color, linewidth=1.8, label=f"{group} (N={n})")
        if np.isfinite(std).any():
            lo, hi = mean - std, mean + std
            if log_y:  # a band reaching 0 or below cannot be drawn on a log axis
                lo = np.where(lo > 0, lo, np.nan)
            ax.fill_between(steps, lo, hi, color=color, alpha=BAND_ALPHA, linewidth=0)
        if group in fits:
            row, span = fits[group]
            lo_x, hi_x = span if span is not None else (float(steps.min()), float(steps.max()))
            grid = np.linspace(lo_x, hi_x, 400)
            ys = row.predict(grid)
            if log_y:
                ys = np.where(ys > 0, ys, np.nan)
            ax.plot(grid, ys, color=color, linewidth=1.4, linestyle=(0, (6, 4)),
                    label=f"{group}: {row.label.lower()} fit, R² = {row.r2:.4f}")
    ax.set_yscale("log" if log_y else "linear")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left", fontsize=11)
    ax.grid(True, color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="best", frameon=False)
    caption = (f"{title}: the mean over each group's seeds, the band one standard "
               "deviation either side, N runs in the legend"
               + ("; fitted curves dashed" if fits else "") + ("; log y" if log_y else ""))
    return _picture(fig, (_info(ax, title),), caption)


def draw_law(x: Any, mean: Any, std: Any, fit: Any, title: str, xlabel: str, ylabel: str,
             label: str) -> Picture:
    """A law across runs: each group's mean summary against its knob value, with one
    standard deviation as an error bar, and the fitted law (`fit`: LawParams) dashed. A
    power law is drawn on log-log axes (where it is the straight line fitted), an
    exponential on a log y axis when the means are positive."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(mean, dtype=float)
    err = np.nan_to_num(np.asarray(std, dtype=float), nan=0.0)
    fig = _figure(Chart(metric=ylabel), 1)
    ax = fig.add_subplot(1, 1, 1)
    log_x = fit.law == "power" and bool(np.all(xs > 0))
    log_y = fit.law in ("power", "exponential") and bool(np.all(ys > 0))
    ax.errorbar(xs, ys, yerr=err, fmt="o", color=color_at(0), capsize=3, markersize=5,
                label="group means ± 1 std")
    lo, hi = float(xs.min()), float(xs.max())
    grid = np.geomspace(lo, hi, 200) if log_x else np.linspace(lo, hi, 200)
    curve = fit.predict(grid)
    if log_y:
        curve = np.where(curve > 0, curve, np.nan)
    ax.plot(grid, curve, color=FAMILY_COLORS.get(fit.law, "#78716c"), linewidth=1.5,
            linestyle=(0, (6, 4)), label=label)
    ax.set_xscale("log" if log_x else "linear")
    ax.set_yscale("log" if log_y else "linear")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left", fontsize=11)
    ax.grid(True, color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="best", frameon=False)
    scales = [f"log {axis}" for axis, on in (("x", log_x), ("y", log_y)) if on]
    caption = f"{title}: group means ± 1 std, {label}" + (f"; {', '.join(scales)}"
                                                           if scales else "")
    return _picture(fig, (_info(ax, title),), caption)


def chart_svg(lab: Lab, metric: str, experiment: str | None = None,
              step: int | None = None) -> str:
    """The chart of `metric` as the lab's view shows it now (its layer, axes, zoom,
    smoothing and visible fits, for the viewed experiments), drawn as SVG: the panel's
    vector download, drawn as the blog draws its pictures. The predictions chart shows
    one experiment at one step, which the panel's card chooses: `experiment` and `step`
    (default: the first viewed that kept predictions, at its last snapshot)."""
    chart = lab.view.charts.get(metric)
    if chart is None:
        raise FeaturelabError(f"no chart of {metric!r} is open; open_chart({metric!r}) first")
    fits = [f for f in lab.fits.values() if f.metric == metric]
    if metric_kind(lab, metric) == "predictions":
        picture = _draw_predictions(lab, [experiment] if experiment else list(lab.view.viewed),
                                    svg=True, step=step)
    else:
        picture = draw_chart(lab, chart, list(lab.view.viewed), fits, svg=True,
                             phases=list(lab.state.phases.values()))
    if picture is None:
        raise FeaturelabError(f"the {metric} chart has nothing to draw yet (view the results "
                              "of a run that recorded it; a statistic needs its layer)")
    return picture.svg

