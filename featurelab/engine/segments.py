"""The segmentation under `featurelab.engine.phases`: straight pieces of a curve found by
ruptures, labelled by how far and how fast each moves, and the spikes set aside first.

A curve reaches here as bins (t, z), both scaled to 0..1 (t over the run, z over the
range of the values), so every threshold is a fraction of the range or of the run.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

UNIFORM_BINS, EARLY_BINS = 150, 60  # uniform bins, plus geometric ones early on
TOLERANCE = 0.02  # misfit below this fraction of the range never pays for a change point
PENALTY = 3.0  # BIC-like: penalty = PENALTY * sigma^2 * log(bins)
# A piece is level when it moves less than LEVEL of the range and is not fast: a rate of
# FAST ranges per run or more is a move even when short (the first bend of a drop), and a
# fall that fast is a drop.
LEVEL = 0.1
FAST = 3.0
SIGNIFICANT = 5.0  # a piece's slope must stand this many standard errors off zero
MIN_LEVEL = 0.02  # a pause shorter than this fraction of the run belongs to its move
# A move between level runs starts once ONSET of the way from one level to the next (where
# a rise time starts) and ends once within 1 - SETTLED of the next (a settling time's band).
ONSET, SETTLED = 0.1, 0.95
REFINE = 2  # rounds: a level judged again once the tail of a move no longer blurs it
SPIKE_WINDOW = 40  # the running median spans 1/40 of the points (5 at least)
SPIKE_SIGMAS = 6.0  # a spike stands this many noise deviations off the running median ...
SPIKE_RANGE = 0.1  # ... and this fraction of the range off it
MAX_SPIKES = 5  # more bursts than this are heavy-tailed noise, not events

Segment = tuple[str, int, int]  # (label, first bin, end bin)


def bin_points(t: np.ndarray, z: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(bin of each point, points per bin, bin means of t, of z). Bins are uniform over the run plus
    geometric early on, where training moves fastest; empty bins (gaps) are left out."""
    span = float(t[-1] - t[0])
    edges = np.linspace(0.0, span, UNIFORM_BINS + 1)
    if span > 1:
        edges = np.union1d(edges, np.geomspace(1.0, span, EARLY_BINS))
    index = np.clip(np.searchsorted(edges, t - t[0], side="right") - 1, 0, len(edges) - 2)
    _, index = np.unique(index, return_inverse=True)
    counts = np.bincount(index)
    return index, counts, np.bincount(index, t) / counts, np.bincount(index, z) / counts


def spikes(z: np.ndarray, span: float
           ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(spikes, outliers): bursts [a, b) of points far off a running median, in runs too
    short for it to follow (half its window); runs closer than that are one burst, and
    runs at either end are no spike (nothing says they come back). More than MAX_SPIKES
    bursts are outliers of heavy-tailed noise: kept out of the segmentation all the same."""
    from scipy.ndimage import median_filter

    width = max(5, (len(z) // SPIKE_WINDOW) | 1)
    if len(z) < 2 * width or span == 0:
        return [], []
    residual = z - median_filter(z, size=width, mode="nearest")
    sigma = 1.4826 * float(np.median(np.abs(residual)))
    off = np.abs(residual) > max(SPIKE_SIGMAS * sigma, SPIKE_RANGE * span)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], off.astype(int), [0]])))
    runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])
            if b - a <= width // 2 and a > 0 and b < len(z)]
    bursts: list[tuple[int, int]] = []
    for a, b in runs:
        if bursts and a - bursts[-1][1] < width // 2:
            bursts[-1] = (bursts[-1][0], b)
        else:
            bursts.append((a, b))
    return (bursts, []) if len(bursts) <= MAX_SPIKES else ([], bursts)


@functools.cache
def _line_cost() -> Any:
    """ruptures' cost of a least-squares line, O(1) per segment from prefix sums (its
    own "linear" cost solves a least-squares problem per call)."""
    from ruptures.base import BaseCost
    from ruptures.costs import NotEnoughPoints

    class LineCost(BaseCost):
        min_size = 2

        @property
        def model(self) -> str:  # ruptures' name of the cost
            return "line"

        def fit(self, signal: np.ndarray) -> LineCost:  # (bins, 2): t, z
            self.signal = signal
            t, z = signal[:, 0], signal[:, 1]
            self.sums = [np.concatenate([[0.0], np.cumsum(a)]).tolist()
                         for a in (np.ones_like(t), t, z, t * t, t * z, z * z)]
            return self

        def error(self, start: int, end: int) -> float:
            if end - start < self.min_size:
                raise NotEnoughPoints
            n, t, z, tt, tz, zz = (s[end] - s[start] for s in self.sums)
            stt, stz, szz = tt - t * t / n, tz - t * z / n, zz - z * z / n
            return max(szz - (stz * stz / stt if stt > 0 else 0.0), 0.0)

    return LineCost


def noise(z: np.ndarray) -> float:
    """The noise level: the MAD of second differences (blind to slopes and bends)."""
    if len(z) < 4:
        return 0.0
    d2 = np.diff(z, 2)
    return float(1.4826 * np.median(np.abs(d2 - np.median(d2))) / math.sqrt(6.0))


def _pieces(tb: np.ndarray, zb: np.ndarray) -> list[tuple[int, int]]:
    """Straight pieces [a, b) of the bins, by ruptures' Pelt."""
    if len(tb) < 4:
        return [(0, len(tb))]
    import ruptures

    sigma = max(noise(zb), TOLERANCE)
    algo = ruptures.Pelt(custom_cost=_line_cost()(), min_size=2, jump=1)
    ends = algo.fit(np.column_stack([tb, zb])).predict(pen=PENALTY * sigma**2 * math.log(len(tb)))
    return list(zip([0, *ends[:-1]], ends))


def label(rate: float, delta: float, decade: float | None = None) -> str:
    """A piece's label from its rate and its change (ranges per run, ranges): level,
    rise, drop (a fast fall), exponential (a slow fall over a decade or more of a series
    segmented in log10, where `decade` is one decade in ranges) or fall."""
    if abs(delta) < LEVEL and abs(rate) < FAST:
        return "level"
    if delta > 0:
        return "rise"
    if abs(rate) >= FAST:
        return "drop"
    return "exponential" if decade is not None and -delta >= decade else "fall"


def _merged(parts: list[tuple[str, float, int, int]]) -> list[tuple[str, float, int, int]]:
    out: list[tuple[str, float, int, int]] = []
    for lab, delta, a, b in parts:
        if out and out[-1][0] == lab:
            out[-1] = (lab, out[-1][1] + delta, out[-1][2], b)
        else:
            out.append((lab, delta, a, b))
    return out


def _slope(t: np.ndarray, z: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """(slope, the sum of w (t - mean t)^2) of the weighted least-squares line."""
    tm = np.average(t, weights=w)
    stt = float(np.sum(w * (t - tm) ** 2))
    if stt == 0:
        return 0.0, 0.0
    return float(np.sum(w * (t - tm) * (z - np.average(z, weights=w))) / stt), stt


def segments(tb: np.ndarray, zb: np.ndarray, counts: np.ndarray, sigma: float,
             decade: float | None) -> list[Segment]:
    """The phases of a curve as labelled runs of bins, in order (t and z scaled to 0..1;
    `counts`: points per bin; `sigma`: the noise of one point)."""
    parts = []
    for a, b in _pieces(tb, zb):
        duration = (tb[b] if b < len(tb) else tb[-1]) - tb[a]
        slope, stt = _slope(tb[a:b], zb[a:b], counts[a:b])
        # A slope within the noise of the points behind it is no move (a few lone points
        # early on, where bins hold one step each).
        if abs(slope) * math.sqrt(stt) < SIGNIFICANT * sigma:
            slope = 0.0
        parts.append((label(slope, slope * duration, decade), slope * duration, a, b))
    parts = _merged(parts)
    # A move that, merged, still covers less than LEVEL of the range is level after all.
    parts = _merged([("level" if abs(d) < LEVEL else lab, d, a, b) for lab, d, a, b in parts])
    parts = _merged(_short_levels(parts, tb))
    runs = [(lab, a, b) for lab, _, a, b in parts]
    for _ in range(REFINE):
        runs = _refined(runs, tb, zb)
    return runs


def _short_levels(parts: list[tuple[str, float, int, int]], tb: np.ndarray
                  ) -> list[tuple[str, float, int, int]]:
    """A level run shorter than MIN_LEVEL of the run is part of the move before it (of the
    one after it at the start)."""
    out = list(parts)
    for i, (lab, delta, a, b) in enumerate(out):
        end = tb[b] if b < len(tb) else tb[-1]
        if lab != "level" or end - tb[a] >= MIN_LEVEL or len(out) == 1:
            continue
        neighbour = out[i - 1][0] if i > 0 else out[i + 1][0]
        out[i] = (neighbour, delta, a, b)
    return out


def _level_near(tb: np.ndarray, zb: np.ndarray, a: int, b: int, t: float,
                reach: float) -> float:
    """The level of a level run [a, b) as a move at t sees it: the median of its bins
    within `reach` (the move's duration) of t. A median ignores the tail of the move that
    the run still holds; staying near t follows a plateau that drifts."""
    near = np.abs(tb[a:b] - t) <= reach
    return float(np.median(zb[a:b][near] if near.any() else zb[a:b]))


def _refined(parts: list[Segment], tb: np.ndarray, zb: np.ndarray) -> list[Segment]:
    """A move that settles into a level run ends once SETTLED of the way there, and one
    between two level runs starts once ONSET of the way from the first: the knee of a
    straight line puts a gradual onset and a saturating end too early. A move out of or
    into a sharp knee starts up to 10% of its length late or ends up to 5% early by this;
    one that does not settle keeps its knees."""
    labels = [lab for lab, _, _ in parts]
    bounds = [a for _, a, _ in parts] + [len(zb)]
    for i, lab in enumerate(labels):
        if lab == "level" or i + 1 == len(labels) or labels[i + 1] != "level":
            continue
        before = i > 0 and labels[i - 1] == "level"
        a, b = bounds[i], bounds[i + 1]
        reach = tb[b] - tb[a]
        low = _level_near(tb, zb, bounds[i - 1], a, tb[a], reach) if before else float(zb[a])
        high = _level_near(tb, zb, b, bounds[i + 2], tb[b], reach)
        if high == low:
            continue
        way = (zb - low) / (high - low)  # 0 at the level before, 1 at the one after
        halfway = a + np.flatnonzero(way[a:b] >= 0.5)
        if not len(halfway):
            continue
        mid = int(halfway[0])
        if before:
            below = bounds[i - 1] + np.flatnonzero(way[bounds[i - 1]:mid] <= ONSET)
            if len(below) and bounds[i - 1] < below[-1] + 1 <= mid:
                bounds[i] = int(below[-1]) + 1
        above = mid + np.flatnonzero(way[mid:bounds[i + 2]] >= SETTLED)
        if len(above) and bounds[i] < above[0] < bounds[i + 2]:
            bounds[i + 1] = int(above[0])
    return list(zip(labels, bounds, bounds[1:]))
