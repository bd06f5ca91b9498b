"""The segmentation under `featurelab.engine.phases`: straight pieces of a curve found by
ruptures, labelled by how far and how fast each moves, jumps between pieces, and the
spikes set aside first; sharp moves are then placed on the points (`placed`).

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
SHARP = 3  # a move over this many bins or fewer is placed on the points around it
NEAR = 5  # ... between the levels of this many bins either side
NOISE_BAND = 3.0  # ... settled once within ONSET, 1 - SETTLED or this many noise deviations
# A jump in the last TAIL bins of a curve, too few for a piece, or a move over the last
# TAIL_BINS or fewer is placed on the points, ending in a level where SETTLES of its points
# are settled.
TAIL, TAIL_BINS, SETTLES = 2, 8, 0.8
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
    runs at either end are no spike (nothing says they come back), nor are those the curve
    does not come back from (the edge of a jump). More than MAX_SPIKES
    bursts are outliers of heavy-tailed noise: kept out of the segmentation all the same."""
    from scipy.ndimage import median_filter

    width = max(5, (len(z) // SPIKE_WINDOW) | 1)
    if len(z) < 2 * width or span == 0:
        return [], []
    residual = z - median_filter(z, size=width, mode="nearest")
    sigma = 1.4826 * float(np.median(np.abs(residual)))
    far = max(SPIKE_SIGMAS * sigma, SPIKE_RANGE * span)
    off = np.abs(residual) > far
    edges = np.flatnonzero(np.diff(np.concatenate([[0], off.astype(int), [0]])))
    runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])
            if b - a <= width // 2 and a > 0 and b < len(z)]
    bursts: list[tuple[int, int]] = []
    for a, b in runs:
        if bursts and a - bursts[-1][1] < width // 2:
            bursts[-1] = (bursts[-1][0], b)
        else:
            bursts.append((a, b))
    # A burst after which the curve does not come back is the edge of a jump (one into a
    # fast decay outruns the running median): no spike.
    near = max(2, width // 4)
    bursts = [(a, b) for a, b in bursts
              if abs(np.median(z[b:b + near]) - np.median(z[max(0, a - near):a])) <= far]
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


def _slope(t: np.ndarray, z: np.ndarray, w: np.ndarray) -> tuple[float, float, float, float]:
    """(slope, the sum of w (t - mean t)^2, mean t, mean z) of the weighted least-squares
    line."""
    tm, zm = np.average(t, weights=w), np.average(z, weights=w)
    stt = float(np.sum(w * (t - tm) ** 2))
    if stt == 0:
        return 0.0, 0.0, float(tm), float(zm)
    return float(np.sum(w * (t - tm) * (z - zm)) / stt), stt, float(tm), float(zm)


def segments(tb: np.ndarray, zb: np.ndarray, counts: np.ndarray, sigma: float,
             decade: float | None) -> list[Segment]:
    """The phases of a curve as labelled runs of bins, in order (t and z scaled to 0..1;
    `counts`: points per bin; `sigma`: the noise of one point). A jump between two pieces
    is a move ("rise" or "drop") of no bins, a == b, until `placed` puts it on the points.
    """
    parts: list[tuple[str, float, int, int]] = []
    lines = []  # (first bin, end bin, mean t, mean z, slope, points) of each piece
    for a, b in _pieces(tb, zb):
        duration = (tb[b] if b < len(tb) else tb[-1]) - tb[a]
        slope, stt, tm, zm = _slope(tb[a:b], zb[a:b], counts[a:b])
        # A slope within the noise of the points behind it is no move (a few lone points
        # early on, where bins hold one step each).
        if abs(slope) * math.sqrt(stt) < SIGNIFICANT * sigma:
            slope = 0.0
        lines.append((a, b, tm, zm, slope, float(np.sum(counts[a:b]))))
        # A piece is labelled by its own move: a jump between two is a move of its own
        # (else two levels at different heights would merge into one).
        jump = _jump(tb, zb, sigma, lines[-2], lines[-1]) if len(lines) > 1 else 0.0
        if jump:
            parts.append(("rise" if jump > 0 else "drop", jump, a, a))
        parts.append((label(slope, slope * duration, decade), slope * duration, a, b))
    parts = _merged(parts)
    # A move that, merged, still covers less than LEVEL of the range is level after all.
    parts = _merged([("level" if abs(d) < LEVEL else lab, d, a, b) for lab, d, a, b in parts])
    parts = _merged(_short_levels(parts, tb))
    runs = [(lab, a, b) for lab, _, a, b in parts]
    for _ in range(REFINE):
        runs = _refined(runs, tb, zb)
    return runs


def _jump(tb: np.ndarray, zb: np.ndarray, sigma: float, before: tuple, after: tuple
          ) -> float:
    """The jump from one piece to the next: the change from the line of one at its last bin
    to the line of the next at its first, no more than the bins change within two bins
    across it (the lines of a wandering curve may part where the curve does not); 0 unless
    it is LEVEL of the range or more, SIGNIFICANT standard errors of the points behind the
    lines, and SIGNIFICANT times the noise of a step between two bins around it."""
    (a0, a, t0, z0, s0, n0), (_, b, t1, z1, s1, n1) = before, after
    jump = float(z1 + s1 * (tb[a] - t1) - (z0 + s0 * (tb[a - 1] - t0)))
    across = [math.copysign(1, jump) * (zb[j] - zb[i]) for i in (a - 2, a - 1)
              for j in (a, a + 1) if a0 <= i and j < b and j - i <= 2]
    jump = math.copysign(min(abs(jump), max([0.0, *across])), jump)
    if abs(jump) < max(LEVEL, SIGNIFICANT * sigma * math.sqrt(1 / n0 + 1 / n1)):
        return 0.0
    # The noise of the bins around it, from their second differences (blind to slopes; a
    # jump makes two of them, which a median ignores).
    d2 = np.diff(zb[max(0, a - NEAR - 2):a + NEAR + 2], 2)
    if abs(jump) < SIGNIFICANT * 1.4826 * float(np.median(np.abs(d2))) / math.sqrt(3):
        return 0.0
    return jump


def _short_levels(parts: list[tuple[str, float, int, int]], tb: np.ndarray
                  ) -> list[tuple[str, float, int, int]]:
    """A level run shorter than MIN_LEVEL of the run is part of the move before it (of the
    one after it at the start), unless it is the first or last and beside a jump (a move
    over SHARP bins or fewer)."""
    out = list(parts)
    for i, (lab, delta, a, b) in enumerate(out):
        end = tb[b] if b < len(tb) else tb[-1]
        if lab != "level" or end - tb[a] >= MIN_LEVEL or len(out) == 1:
            continue
        # A level at either end, before or after a jump (a move over SHARP bins or fewer),
        # is no pause in a longer move.
        move = 1 if i == 0 else i - 1
        if i in (0, len(out) - 1) and out[move][3] - out[move][2] <= SHARP:
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
        if bounds[i] == bounds[i + 1]:  # a jump: placed on the points
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


def placed(runs: list[Segment], zb: np.ndarray, first: np.ndarray, zp: np.ndarray,
           sigma: float) -> list[Segment]:
    """The runs on the points: (label, first point, end point); `first`: the first point of
    each bin, `zp`: the points (scaled as the bins), `sigma`: their noise.

    A jump, or a move over SHARP bins or fewer, is placed on the points around it: from
    ONSET of the way from the level before to SETTLED of the way to the level after, one
    step at least (from the last point before a step to the first after it). So is one in
    the last bins (`_tail`)."""
    n = len(zp)
    labels = [lab for lab, _, _ in runs]
    bins = [a for _, a, _ in runs] + [len(zb)]
    edges = np.append(first, n)
    bounds = [int(edges[a]) for a in bins]
    for i, lab in enumerate(labels):
        a, b = bins[i], bins[i + 1]
        if lab == "level" or not 0 < i < len(labels) - 1 or b - a > SHARP:
            continue
        lo, hi = max(bins[i - 1], a - 1), min(bins[i + 2], b + 1)  # a bin either side
        # The levels either side: the median of a few bins next to the window (the bin
        # next to it of a move; the window's own at a run of one bin).
        before = zb[max(bins[i - 1], lo - (NEAR if labels[i - 1] == "level" else 1)):lo]
        after = zb[hi:min(bins[i + 2], hi + (NEAR if labels[i + 1] == "level" else 1))]
        before, after = before if len(before) else zb[lo:a], after if len(after) else zb[b:hi]
        p0, p1 = int(edges[lo]), int(edges[hi])
        if len(before) and len(after):
            start, end = _crossing(zp[p0:p1], float(np.median(before)),
                                   float(np.median(after)), sigma, None)
            if bounds[i - 1] < p0 + start < p0 + end < bounds[i + 2]:
                bounds[i], bounds[i + 1] = p0 + start, p0 + end
                continue
        if bounds[i] == bounds[i + 1] and bounds[i - 1] < bounds[i] - 1:
            bounds[i] -= 1  # a jump across two bins: the last point before it, the first after
    return _tail(labels, bins, bounds, zb, edges, zp, sigma)


def _tail(labels: list[str], bins: list[int], bounds: list[int], zb: np.ndarray,
          edges: np.ndarray, zp: np.ndarray, sigma: float) -> list[Segment]:
    """The runs on the points with a jump in the last TAIL bins of the last level (too few
    for a piece of their own), or the move after it over TAIL_BINS or fewer, placed on the
    points: a jump there is LEVEL of the range or more and SPIKE_SIGMAS standard errors
    off the level (a single last point SPIKE_SIGMAS deviations, as a spike); the points
    after it are a level where SETTLES of them are within 1 - SETTLED of it (or the
    noise), else the move runs to the end."""
    runs = list(zip(labels, bounds, bounds[1:]))
    i = len(labels) - 1 if labels[-1] == "level" else len(labels) - 2
    if i < 0 or labels[i] != "level" or (i < len(labels) - 1
                                         and bins[-1] - bins[-2] > TAIL_BINS):
        return runs
    a, b = bins[i], bins[i + 1]
    w = max(a + 1, b - TAIL)  # the window: the last TAIL bins of the level, and after
    low = float(np.median(zb[max(a, w - NEAR):w]))
    p0 = max(int(edges[w]), bounds[i] + 1)
    rest = zp[p0:] - low
    if len(rest) < 2:
        return runs
    # Where a step from the level to another fits the points best (one point before it, at
    # least): the most points the furthest off.
    sums = np.cumsum(rest[::-1])[::-1][1:]  # the sum of rest[k:], for k = 1 ...
    mid = 1 + int(np.argmax(sums**2 / np.arange(len(rest) - 1, 0, -1)))
    after = rest[mid:]
    jump = float(np.median(after[len(after) // 2:]))  # the later half: the more settled
    if abs(jump) < max(LEVEL, SPIKE_SIGMAS * sigma / math.sqrt(len(after))):
        return runs
    start, end = _crossing(rest, 0.0, jump, sigma, mid)
    band = max(1 - SETTLED, NOISE_BAND * sigma / abs(jump))
    move = "rise" if jump > 0 else "drop"
    if end < len(rest) and np.mean(np.abs(rest[end:] / jump - 1) <= band) >= SETTLES:
        return [*runs[:i], ("level", bounds[i], p0 + start), (move, p0 + start, p0 + end),
                ("level", p0 + end, len(zp))]
    return [*runs[:i], ("level", bounds[i], p0 + start), (move, p0 + start, len(zp))]


def _crossing(z: np.ndarray, low: float, high: float, sigma: float, mid: int | None
              ) -> tuple[int, int]:
    """(first, end) point of a move from the level `low` to `high` within the points z: from
    ONSET of the way to SETTLED of it (or as close as the noise lets, averaged over a few
    points where noisy), around where a step from one level to the other fits best (or
    `mid`); one point at least."""
    if high == low or len(z) < 2:
        return 0, len(z)
    way = (z - low) / (high - low)  # 0 at the level before, 1 at the one after
    if mid is None:
        mid = int(np.argmin(np.r_[0.0, np.cumsum(2 * way - 1)]))
    # Noisy points are averaged over (an odd number, centred) about as many as it takes to
    # tell ONSET of the way apart from the level by two deviations.
    noise = sigma / abs(high - low)
    k = 1 + 2 * min(int((2 * noise / ONSET) ** 2 / 2), len(way) // 8)
    if k > 1:
        way = np.convolve(np.pad(way, k // 2, mode="edge"), np.ones(k) / k, mode="valid")
    band = NOISE_BAND * noise / math.sqrt(k)
    below = np.flatnonzero(way[:mid] <= max(ONSET, band))
    above = mid + np.flatnonzero(way[mid:] >= min(SETTLED, 1 - band))
    start = int(below[-1]) + 1 if len(below) else 0
    end = int(above[0]) if len(above) else len(way)
    return min(start, end - 1), max(end, 1)
