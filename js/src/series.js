// Data shaping for the charts (no DOM): columns of a series reply, smoothing, aligning
// several experiments on one x axis, log-axis filtering, fitted curves.
import { familyColor, familyOf } from "./facts.js";

/** Trailing moving average over a window in x units (steps): point i averages the
 *  finite values with x in (x_i - window, x_i]. For one point a step it is the mean of
 *  the last `window` values. NaN stays NaN; window <= 1 returns the values. */
export function movingAverage(x, y, window) {
  const n = y.length;
  const out = new Float64Array(n);
  if (!(window > 1)) {
    for (let i = 0; i < n; i++) out[i] = y[i];
    return out;
  }
  let lo = 0;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (Number.isFinite(y[i])) {
      sum += y[i];
      count += 1;
    }
    while (x[lo] <= x[i] - window) {
      if (Number.isFinite(y[lo])) {
        sum -= y[lo];
        count -= 1;
      }
      lo += 1;
    }
    out[i] = Number.isFinite(y[i]) && count ? sum / count : NaN;
  }
  return out;
}

/** Number of leading rows up to and including the last row holding a finite value
 *  (a running experiment's series end in NaN rows that are not filled in yet). */
export function filledRows(values, rows, cols) {
  for (let r = rows - 1; r >= 0; r--) {
    for (let c = 0; c < cols; c++) if (Number.isFinite(values[r * cols + c])) return r + 1;
  }
  return 0;
}

/** Column c of a row-major (rows, cols) array, as Float64Array. */
export function column(values, rows, cols, c) {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) out[r] = values[r * cols + c];
  return out;
}

/** Mean over the columns of each row (finite values only). */
export function rowMean(values, rows, cols) {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    let count = 0;
    for (let c = 0; c < cols; c++) {
      const v = values[r * cols + c];
      if (Number.isFinite(v)) {
        sum += v;
        count += 1;
      }
    }
    out[r] = count ? sum / count : NaN;
  }
  return out;
}

function sameX(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** One x axis for several (x, [y...]) groups: the sorted union of their x; each y gets
 *  null where its group has no point. Returns {x, ys} with ys as plain arrays. */
export function align(groups) {
  if (!groups.length) return { x: new Float64Array(0), ys: [] };
  const first = groups[0].x;
  let x;
  if (groups.every((g) => sameX(g.x, first))) {
    x = Float64Array.from(first);
  } else {
    const all = Float64Array.from(groups.flatMap((g) => Array.from(g.x))).sort();
    const unique = [];
    for (let i = 0; i < all.length; i++) if (i === 0 || all[i] !== all[i - 1]) unique.push(all[i]);
    x = Float64Array.from(unique);
  }
  const ys = [];
  for (const g of groups) {
    const shared = g.x.length === x.length && sameX(g.x, x);
    let index = null;
    if (!shared) {
      index = new Int32Array(g.x.length);
      let j = 0;
      for (let i = 0; i < g.x.length; i++) {
        while (x[j] < g.x[i]) j++;
        index[i] = j;
      }
    }
    for (const y of g.ys) {
      const out = new Array(x.length).fill(null);
      for (let i = 0; i < g.x.length; i++) {
        const v = y[i];
        out[shared ? i : index[i]] = Number.isFinite(v) ? v : null;
      }
      ys.push(out);
    }
  }
  return { x, ys };
}

const UNARY = { neg: (a) => -a, exp: Math.exp, log: Math.log };
const BINARY = { "+": (a, b) => a + b, "*": (a, b) => a * b, "/": (a, b) => a / b,
  "^": (a, b) => a ** b };

/** A fit family's expression (state.families[].expression, from featurelab/ui/
 *  panel_state.py: a number, "t", ["c", i] or [op, operand...]) as a function (c, t)
 *  with c[0] the coefficient c1. An expression it cannot read gives NaN. */
export function compileExpression(expr) {
  if (typeof expr === "number") return () => expr;
  if (expr === "t") return (c, t) => t;
  if (!Array.isArray(expr)) return () => NaN;
  const [op, a, b] = expr;
  if (op === "c") return (c) => c[a - 1] ?? NaN;
  if (op in UNARY && expr.length === 2) {
    const f = UNARY[op];
    const fa = compileExpression(a);
    return (c, t) => f(fa(c, t));
  }
  if (op in BINARY && expr.length === 3) {
    const f = BINARY[op];
    const fa = compileExpression(a);
    const fb = compileExpression(b);
    return (c, t) => f(fa(c, t), fb(c, t));
  }
  return () => NaN;
}

/** Values of a fitted row on x, null outside the fitted x range; `expression` is its
 *  family's (none: no curve). */
export function fittedCurve(row, x, xRange, expression) {
  const [lo, hi] = xRange || [-Infinity, Infinity];
  const c = (row.coefficients || []).map((v) => (v == null ? NaN : v));
  const f = compileExpression(expression);
  const out = new Array(x.length).fill(null);
  for (let i = 0; i < x.length; i++) {
    if (x[i] < lo || x[i] > hi) continue;
    const v = f(c, x[i]);
    out[i] = Number.isFinite(v) ? v : null;
  }
  return out;
}

/** The statistics across runs at each x of an aligned group (ys: arrays with null where
 *  a run has no point): mean, the sample standard deviation (ddof=1, as lab.bands), min,
 *  max and how many runs have a value there. */
export function bandStats(ys, length) {
  const mean = new Array(length).fill(null);
  const std = new Array(length).fill(null);
  const min = new Array(length).fill(null);
  const max = new Array(length).fill(null);
  const n = new Array(length).fill(0);
  for (let i = 0; i < length; i++) {
    let sum = 0;
    let count = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (const y of ys) {
      const v = y[i];
      if (v == null || !Number.isFinite(v)) continue;
      sum += v;
      count += 1;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    n[i] = count;
    if (!count) continue;
    const m = sum / count;
    mean[i] = m;
    min[i] = lo;
    max[i] = hi;
    if (count > 1) {
      let sq = 0;
      for (const y of ys) {
        const v = y[i];
        if (v != null && Number.isFinite(v)) sq += (v - m) ** 2;
      }
      std[i] = Math.sqrt(sq / (count - 1));
    }
  }
  return { mean, std, min, max, n };
}

/** The sweep groups among the shown experiments: [{label, members, color}] for each
 *  group of state.sweeps with at least two members shown (one run is not a band). */
export function shownGroups(state, experiments, colorOf) {
  const out = [];
  for (const sweep of state.sweeps || []) {
    for (const [label, members] of Object.entries(sweep.groups || {})) {
      const shown = members.filter((m) => experiments.includes(m));
      if (shown.length > 1) out.push({ label, members: shown, color: colorOf(shown[0]) });
    }
  }
  return out;
}

/** Everything one plot draws.
 *  traces: [{experiment, color, steps, values, shape}] (decoded series replies)
 *  options: {smoothing, logX, logY, fits: [{experiment, table}], fitsVisible,
 *  families: state.families (the fitted curves' expressions and colours),
 *  band: "std" | "minmax" | null, bandGroups: shownGroups(...): runs of a group as one
 *  mean line and a band, N in its label}
 *  -> {data: [x, ...ys], specs: [{label, color, alpha, width, dash, kind, experiment}],
 *  bands: [{hi, lo, color}] (uPlot series indices of a band's edges)} */
export function buildPlot(traces, options = {}) {
  const { smoothing = 0, logX = false, logY = false, fits = [], fitsVisible = true,
    families = [], band = null, bandGroups = [] } = options;
  const groups = [];
  const specs = [];
  // Runs of a sweep group drawn as one band: their curves (a per-neuron statistic's
  // mean over neurons) are collected here, not drawn one by one.
  const inGroup = new Map();
  if (band) for (const g of bandGroups) for (const m of g.members) if (!inGroup.has(m)) inGroup.set(m, g);
  const collected = new Map(); // group -> [{x, y}]
  for (const t of traces) {
    const grouped = inGroup.get(t.experiment);
    if (grouped) {
      const rows = t.steps.length;
      const cols = t.shape && t.shape.length === 2 ? t.shape[1] : 1;
      const n = filledRows(t.values, rows, cols);
      const y = cols === 1 ? Float64Array.from(t.values.subarray(0, n)) : rowMean(t.values, n, cols);
      if (!collected.has(grouped)) collected.set(grouped, []);
      collected.get(grouped).push({ x: t.steps.subarray(0, n), ys: [y] });
      continue;
    }
    const rows = t.steps.length;
    const cols = t.shape && t.shape.length === 2 ? t.shape[1] : 1;
    const n = filledRows(t.values, rows, cols);
    const x = t.steps.subarray(0, n);
    const ys = [];
    const push = (y, spec) => {
      ys.push(y);
      specs.push({ experiment: t.experiment, color: t.color, width: 1.5, alpha: 1, dash: null, ...spec });
    };
    if (cols === 1) {
      const y = t.values.subarray(0, n);
      // an overlaid series (Chart.also) is named and dashed: "exp_0 test_loss"
      const name = t.series ? `${t.experiment} ${t.series}` : t.experiment;
      const line = { dash: t.dash || null, series: t.series || "" };
      if (smoothing > 1) {
        push(y, { label: `${name} (raw)`, kind: "raw", alpha: 0.25, width: 1, ...line });
        push(movingAverage(x, y, smoothing), { label: name, kind: "smooth", width: 2, ...line });
      } else {
        push(y, { label: name, kind: "line", width: 1.75, ...line });
      }
    } else {
      const alpha = cols > 50 ? 0.12 : 0.22;
      for (let c = 0; c < cols; c++) {
        push(column(t.values, n, cols, c), { label: `${t.experiment} neuron ${c}`, kind: "neuron", alpha, width: 1 });
      }
      const mean = rowMean(t.values, n, cols);
      if (smoothing > 1) {
        push(mean, { label: `${t.experiment} mean (raw)`, kind: "raw", alpha: 0.35, width: 1 });
        push(movingAverage(x, mean, smoothing), { label: `${t.experiment} mean`, kind: "mean", width: 2.5 });
      } else {
        push(mean, { label: `${t.experiment} mean`, kind: "mean", width: 2.5 });
      }
    }
    groups.push({ x, ys });
  }
  const bands = [];
  for (const [g, runs] of collected) {
    const aligned = align(runs);
    const stats = bandStats(aligned.ys, aligned.x.length);
    const smooth = (y) => (smoothing > 1
      ? Array.from(movingAverage(aligned.x, Float64Array.from(y, (v) => v ?? NaN), smoothing),
        (v) => (Number.isFinite(v) ? v : null))
      : y);
    const lo = band === "minmax" ? stats.min
      : stats.mean.map((m, i) => (m == null || stats.std[i] == null ? m : m - stats.std[i]));
    const hi = band === "minmax" ? stats.max
      : stats.mean.map((m, i) => (m == null || stats.std[i] == null ? m : m + stats.std[i]));
    const label = `${g.label} (N=${runs.length})`;
    const base = { experiment: label, color: g.color, dash: null, group: g.label, n: runs.length };
    groups.push({ x: aligned.x, ys: [smooth(stats.mean), smooth(lo), smooth(hi)].map(
      (y) => Float64Array.from(y, (v) => v ?? NaN)) });
    const at = specs.length + 1; // uPlot's series index (0 is x)
    specs.push({ ...base, label, kind: "band-mean", width: 2.25, alpha: 1 });
    specs.push({ ...base, label: `${label} ${band === "minmax" ? "min" : "-1 std"}`, kind: "band-lo", width: 0, alpha: 0 });
    specs.push({ ...base, label: `${label} ${band === "minmax" ? "max" : "+1 std"}`, kind: "band-hi", width: 0, alpha: 0 });
    bands.push({ hi: at + 2, lo: at + 1, color: g.color });
  }
  let { x, ys } = align(groups);
  if (logX) {
    const keep = [];
    for (let i = 0; i < x.length; i++) if (x[i] > 0) keep.push(i);
    if (keep.length !== x.length) {
      x = Float64Array.from(keep, (i) => x[i]);
      ys = ys.map((y) => keep.map((i) => y[i]));
    }
  }
  if (fitsVisible) {
    for (const fit of fits) {
      const table = fit.table || {};
      for (const row of table.rows || []) {
        if (!row.ok) continue;
        ys.push(fittedCurve(row, x, table.x_range, familyOf(families, row.family)?.expression));
        specs.push({ experiment: fit.experiment, color: familyColor(families, row.family), alpha: 1,
          width: 1.5, dash: [6, 4], kind: "fit", family: row.family, familyLabel: row.label,
          label: `${fit.experiment} ${row.label} fit` });
      }
    }
  }
  if (logY) {
    for (const y of ys) for (let i = 0; i < y.length; i++) if (y[i] != null && y[i] <= 0) y[i] = null;
  }
  return { data: [x, ...ys], specs, bands };
}

/** True when a plot built by buildPlot has at least one finite point. */
export function hasPoints(built) {
  return built.data.slice(1).some((y) => y.some((v) => v != null));
}

/** The residuals of each drawn fitted curve: the data of its experiment minus the curve,
 *  where both have a value (the fit's x range). A plot of its own, under the chart: a
 *  pattern in them is what R^2 hides. */
export function residualPlot(built) {
  if (!built) return null;
  const [x, ...ys] = built.data;
  const data = [x];
  const specs = [];
  built.specs.forEach((fit, j) => {
    if (fit.kind !== "fit") return;
    const source = built.specs.findIndex((s) => s.experiment === fit.experiment
      && (s.kind === "line" || s.kind === "raw"));
    if (source < 0) return;
    const y = ys[source];
    const f = ys[j];
    data.push(Array.from(x, (_, i) => (y[i] == null || f[i] == null || !Number.isFinite(y[i])
      || !Number.isFinite(f[i]) ? null : y[i] - f[i])));
    specs.push({ ...fit, kind: "residual", dash: null, width: 1.25,
      label: `${fit.experiment} ${fit.familyLabel || fit.family} residual` });
  });
  return specs.length ? { data, specs, bands: [] } : null;
}

/** Steps as wall-clock seconds since the run's first step, from the run's clock
 *  ([[step, seconds], ...] at its first step and every flush): linear between clock
 *  points, the last interval's pace after the last one (a run still going), 0 before
 *  the first. null without a clock (a run recorded before runs kept one). */
export function stepsToSeconds(steps, clock) {
  if (!clock || !clock.length) return null;
  const out = new Float64Array(steps.length);
  const n = clock.length;
  let j = 0;
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i];
    if (s <= clock[0][0]) { out[i] = clock[0][1]; continue; }
    while (j < n - 2 && clock[j + 1][0] < s) j += 1;
    const [s0, t0] = n > 1 ? clock[Math.min(j, n - 2)] : clock[0];
    const [s1, t1] = n > 1 ? clock[Math.min(j + 1, n - 1)] : clock[0];
    out[i] = s1 > s0 ? t0 + ((s - s0) * (t1 - t0)) / (s1 - s0) : t0;
  }
  return out;
}

