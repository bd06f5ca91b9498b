"""Phases of a training curve: where it drops, sits on a plateau, rises, decays or spikes.

``label_phases(steps, values)`` splits one series into consecutive phases, each with a
kind (``KINDS``), its span of steps and, for a phase that moves, the best curve of the
fit families (``featurelab.engine.fit``) fitted to it with its R^2.

How (the segmentation is in `featurelab.engine.segments`): non-finite points are dropped
(a metric evaluated every N steps, a diverged run). A positive series spanning two decades
or more (a loss) is segmented as log10 of its values, where an exponential decay is a
straight line. Spikes (points far off a running median, in runs too short for it to
follow) are set aside. The rest is averaged into bins, dense early (training moves fastest
at the start) and uniform after, and ruptures' Pelt splits the bins into straight pieces
with a penalty scaled to the larger of the noise and 2% of the range, so noise and slight
curvature make no phase. A piece that moves less than a tenth of the range, slowly, is
level; a fall is a drop when fast, an exponential decay when straight in log10 over a
decade or more, else a decay; neighbours of one kind merge. A jump between two pieces (a
tenth of the range or more, well above the noise) is a drop or rise of its own, so two
levels at different heights never merge. A move between two level phases starts 10% of
the way from one level to the next and ends within 5% of it; a jump or a move over a few
bins is placed so on the points themselves, one step at least.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from featurelab.engine import segments as _segments
from featurelab.engine.fit import fit_curves
from featurelab.errors import ConfigError

KINDS = ("drop", "exponential decay", "decay", "rise", "spike", "plateau", "flat")
MOVING = ("drop", "exponential decay", "decay", "rise")
SCALES = ("auto", "linear", "log")
LOG_SPAN = 100.0  # "auto" segments log10(values) when they are positive and max/min >= this
EXPONENTIAL_R2 = 0.98  # a fall of a decade or more this straight in log10 is exponential
MIN_POINTS = 8  # fewer finite points than this: one phase, labelled as a whole
MAX_FIT_POINTS = 200  # a long phase is fitted on this many evenly spread points
# Model evaluations per start of each fit (lab.fit allows 5000): on the reference curves
# the best curves and R^2 are the same, found in a third of the time.
FIT_MAXFEV = 1000


@dataclass(frozen=True)
class Phase:
    """One phase: steps start to end (the next phase starts where this one ends), its kind,
    the best fitted curve of a moving phase with its R^2, and the values it spans."""

    start: float
    end: float
    kind: str
    primitive: str | None  # a fit family ("sigmoid"); None for level phases and spikes
    r2: float | None
    mean: float
    low: float
    high: float

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "kind": self.kind,
                "primitive": self.primitive, "r2": self.r2, "mean": self.mean,
                "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Phase:
        r2 = d.get("r2")
        return cls(float(d["start"]), float(d["end"]), str(d["kind"]), d.get("primitive"),
                   None if r2 is None else float(r2), float(d["mean"]), float(d["low"]),
                   float(d["high"]))


def phases_text(phases: Sequence[Phase]) -> str:
    """'drop over steps 0-44, sigmoid R^2 = 0.998; plateau 44-420; rise 420-1200; flat after'."""
    parts = []
    for i, p in enumerate(phases):
        span = f"{p.start:g}-{p.end:g}"
        if p.kind == "flat" and i == len(phases) - 1 and i > 0:
            parts.append("flat after")
            continue
        text = f"{p.kind} over steps {span}" if i == 0 else f"{p.kind} {span}"
        if p.primitive is not None and p.r2 is not None:
            text += f", {p.primitive.replace('_', '-')} R^2 = {p.r2:.3f}"
        parts.append(text)
    return "; ".join(parts)


# -- labelling ------------------------------------------------------------------------------

def _clean(steps: Any, values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Finite points only, in the order of their steps."""
    try:
        t = np.asarray(steps, dtype=float)
        y = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError("values", type(values).__name__, "1-D arrays of numbers") from None
    if t.ndim != 1 or y.shape != t.shape:
        raise ConfigError("values", f"shape {y.shape}",
                          f"a 1-D array with one value per step (steps have shape {t.shape})")
    keep = np.isfinite(t) & np.isfinite(y)
    order = np.argsort(t[keep], kind="stable")
    return t[keep][order], y[keep][order]


def _kind(label: str, t: np.ndarray, y: np.ndarray, last: bool) -> str:
    if label == "level":
        return "flat" if last else "plateau"
    if label in ("rise", "drop"):
        return label
    if label == "exponential":
        return "exponential decay"
    # A fall is exponential where log10 of it is a straight line over a decade or more.
    if len(t) > 2 and np.all(y > 0) and np.ptp(t) > 0:
        z = np.log10(y)
        if z[0] - z[-1] >= 1.0 and np.corrcoef(t, z)[0, 1] ** 2 >= EXPONENTIAL_R2:
            return "exponential decay"
    return "decay"


def _best_fit(t: np.ndarray, y: np.ndarray) -> tuple[str | None, float | None]:
    if len(t) > MAX_FIT_POINTS:
        pick = np.unique(np.linspace(0, len(t) - 1, MAX_FIT_POINTS).round().astype(int))
        t, y = t[pick], y[pick]
    # In the phase's own time: a power law counts from where the phase starts.
    best = fit_curves(t - t[0], y, maxfev=FIT_MAXFEV).best
    return (best.family, float(best.r2)) if best is not None else (None, None)


def _phase(kind: str, t: np.ndarray, y: np.ndarray, start: float, end: float,
           fit: bool) -> Phase:
    primitive, r2 = _best_fit(t, y) if fit and kind in MOVING else (None, None)
    return Phase(float(start), float(end), kind, primitive, r2, float(np.mean(y)),
                 float(np.min(y)), float(np.max(y)))


def label_phases(steps: Any, values: Any, scale: str = "auto", fit: bool = True
                 ) -> list[Phase]:
    """The phases of values(steps), in order; each ends where the next starts.

    ``scale``: "log" segments log10(values) (all must be positive), "linear" the values,
    "auto" log10 for a positive series spanning two decades or more. ``fit=False`` leaves
    out the fits (``primitive`` and ``r2`` None). Non-finite points are dropped; a series
    without a finite point has no phase, one too short or flat to split has one.
    """
    if scale not in SCALES:
        raise ConfigError("scale", scale, ", ".join(SCALES))
    t, y = _clean(steps, values)
    if not len(t):
        return []
    positive = bool(np.all(y > 0))
    if scale == "log" and not positive:
        raise ConfigError("scale", scale, "'linear' or 'auto' for a series with values <= 0")
    log = scale == "log" or (scale == "auto" and positive and y.max() >= LOG_SPAN * y.min())
    z = np.log10(y) if log else y
    span = float(np.ptp(z))
    if span == 0 or len(t) < MIN_POINTS or t[-1] == t[0]:
        return [_whole(t, y, z, span, fit)]
    spikes, outliers = _segments.spikes(z, span)
    calm = np.ones(len(z), dtype=bool)
    for a, b in spikes + outliers:
        calm[a:b] = False
    index, counts, tb, zb = _segments.bin_points(t[calm], z[calm])
    sigma = _segments.noise(z[calm]) / span
    runs = _segments.segments((tb - tb[0]) / (tb[-1] - tb[0]), (zb - zb.min()) / span, counts,
                              sigma, 1.0 / span if log else None)
    first = np.searchsorted(index, np.arange(len(tb)))  # index is sorted: t is
    runs = _segments.placed(runs, (zb - zb.min()) / span, first, (z[calm] - zb.min()) / span,
                            sigma)  # the bins' runs on the points
    starts = [float(t[calm][a]) for _, a, _ in runs]
    starts[0] = float(t[0])
    ends = [*starts[1:], float(t[-1])]
    kinds: list[tuple[str, float, float]] = []
    for i, ((label, _, _), start, end) in enumerate(zip(runs, starts, ends)):
        inside = calm & (t >= start) & (t <= end)
        kind = _kind(label, t[inside], y[inside], last=i == len(runs) - 1)
        if kinds and kinds[-1][0] == kind:  # two falls that are both exponential decays
            kinds[-1] = (kind, kinds[-1][1], end)
        else:
            kinds.append((kind, start, end))
    phases = [_phase(kind, t[inside], y[inside], start, end, fit)
              for kind, start, end in kinds
              for inside in [calm & (t >= start) & (t <= end)]]
    return _with_spikes(phases, t, y, spikes)


def _whole(t: np.ndarray, y: np.ndarray, z: np.ndarray, span: float, fit: bool) -> Phase:
    """A series too short (or too flat) to split: one phase, by its overall change."""
    delta = float(z[-1] - z[0]) / span if span > 0 else 0.0
    return _phase(_kind(_segments.label(delta, delta), t, y, last=True), t, y, t[0], t[-1],
                  fit)


def _with_spikes(phases: list[Phase], t: np.ndarray, y: np.ndarray,
                 spikes: list[tuple[int, int]]) -> list[Phase]:
    """Each spike cuts the phase it falls in: before it, the spike, after it."""
    cuts = [(float(t[a - 1]), float(t[b]), y[a:b]) for a, b in spikes]
    out = [Phase(lo, hi, "spike", None, None, float(np.mean(v)), float(np.min(v)),
                 float(np.max(v))) for lo, hi, v in cuts]
    for p in phases:
        start = p.start
        for lo, hi, _ in cuts:
            if hi <= start or lo >= p.end:
                continue
            if lo > start:  # the part before keeps its kind, curve and levels
                out.append(dataclasses.replace(p, start=start, end=lo))
            start = max(start, hi)
        if start < p.end or start == p.start == t[-1]:  # (a level of the last point alone)
            out.append(dataclasses.replace(p, start=start))
    return sorted(out, key=lambda p: (p.start, p.end))
