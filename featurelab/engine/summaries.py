"""One number from one series: what `lab.table(measures=...)` and `lab.fit_across` reduce
a run to.

A summary is named by text: "final", "min", "argmin", "first_below:<x>", "first_above:<x>"
or "in_band:<lo>:<hi>". Series may have NaN rows (steps where it was not measured: test
metrics with eval_every > 1; or a diverged run's last step): every summary reads only
the measured values. "in_band" counts steps, each measured value standing for the steps
up to the next measurement (sample and hold; the last one for its own step), so a series
measured every 100 steps and one measured every step give about the same time in a band.
"""

from __future__ import annotations

import math

import numpy as np

from featurelab.errors import ConfigError

SUMMARIES = ("final", "min", "argmin")
THRESHOLDS = ("first_below", "first_above")  # "first_below:0.1": the first step below 0.1
BAND = "in_band"  # "in_band:0.1:0.9": steps with 0.1 <= value <= 0.9
SUMMARY_HELP = ("final, min, argmin, first_below:<x>, first_above:<x> or "
                "in_band:<lo>:<hi> (lo <= hi)")


def parse_summary(summary: str) -> tuple[str, tuple[float, ...]]:
    """("final" | "min" | "argmin", ()), ("first_below" | "first_above", (x,)) or
    ("in_band", (lo, hi)); a ConfigError naming `summary` otherwise."""
    if isinstance(summary, str) and summary in SUMMARIES:
        return summary, ()
    kind, *numbers = summary.split(":") if isinstance(summary, str) else [""]
    arity = 1 if kind in THRESHOLDS else 2 if kind == BAND else 0
    if arity and len(numbers) == arity:
        values = tuple(_number(n) for n in numbers)
        if all(math.isfinite(v) for v in values) and (arity == 1 or values[0] <= values[1]):
            return kind, values
    raise ConfigError("summary", summary, SUMMARY_HELP)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def summary_label(summary: str) -> str:
    """'final value', 'minimum', 'step of the minimum', 'first step below 0.1',
    'steps in [0.1, 0.9]'."""
    kind, args = parse_summary(summary)
    if kind in THRESHOLDS:
        return f"first step {'below' if kind == 'first_below' else 'above'} {args[0]:g}"
    if kind == BAND:
        return f"steps in [{args[0]:g}, {args[1]:g}]"
    return {"final": "final value", "min": "minimum", "argmin": "step of the minimum"}[kind]


def never(summary: str) -> str:
    """Why a run has no value for a summary: 'never below 0.1', 'no finite value'."""
    kind, args = parse_summary(summary)
    if kind in THRESHOLDS:
        return f"never {'below' if kind == 'first_below' else 'above'} {args[0]:g}"
    return "no finite value"


def summarize(steps: np.ndarray, values: np.ndarray, summary: str) -> float | None:
    """One run's number from its (steps, values), over the finite values only: the last
    of them, the minimum or its step, the first step strictly below/above a threshold
    (None if it never gets there); or the steps spent in [lo, hi] (0.0 if none) over the
    values that are not NaN. None when there is no such value."""
    kind, args = parse_summary(summary)
    values = np.asarray(values, dtype=float)
    steps = np.asarray(steps)
    finite = np.isfinite(values)
    if kind == BAND:  # an infinite value is measured, outside every band
        measured = ~np.isnan(values)
        return steps_in_band(steps[measured], values[measured], *args) if measured.any() \
            else None
    if not finite.any():
        return None
    if kind == "final":
        return float(values[finite][-1])
    if kind in ("min", "argmin"):
        best = int(np.nanargmin(np.where(finite, values, np.nan)))
        return float(values[best]) if kind == "min" else float(steps[best])
    x = args[0]
    hits = np.flatnonzero(finite & ((values < x) if kind == "first_below" else (values > x)))
    return float(steps[hits[0]]) if len(hits) else None


def steps_in_band(steps: np.ndarray, values: np.ndarray, lo: float, hi: float) -> float:
    """Steps with lo <= value <= hi, each measured value holding until the next
    measurement (the last for its own step); `steps` increasing, `values` not NaN."""
    held = np.diff(np.asarray(steps, dtype=float), append=float(steps[-1]) + 1.0)
    inside = (values >= lo) & (values <= hi)
    return float(held[inside].sum())


def measured(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points of a 1-D series with a finite value: what a fit is made on (a test
    metric measured every eval_every steps is NaN between)."""
    values = np.asarray(values)
    keep = np.isfinite(values)
    return np.asarray(steps)[keep], values[keep]
