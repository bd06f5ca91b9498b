// The uPlot wrapper. uPlot is constructed through a factory that tests replace
// (jsdom has no canvas): setPlotFactory(fn) with fn(opts, data, target) -> plot.
import uPlot from "uplot";
import { h, replaceChildren } from "./dom.js";
import { fmtG } from "./format.js";
import { buildPlot, hasPoints, shownGroups, stepsToSeconds } from "./series.js";
import { experimentColor } from "./facts.js";
import { withAlpha } from "./theme.js";

const defaultFactory = (opts, data, target) => new uPlot(opts, data, target);
let factory = defaultFactory;

/** Replaces how plots are constructed (tests); null restores uPlot. Returns the old one. */
export function setPlotFactory(fn) {
  const old = factory;
  factory = fn || defaultFactory;
  return old;
}

/** A drawn plot's data as CSV: a step column, then one column per drawn curve (neuron
 *  curves and raw curves under a smoothed one included), empty where a curve has no
 *  point. */
export function plotCsv(built) {
  if (!built) return "";
  const quote = (t) => (/[",\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t);
  const header = ["step", ...built.specs.map((s) => quote(s.label))].join(",");
  const [x, ...ys] = built.data;
  const rows = Array.from(x, (step, i) => [step, ...ys.map((y) => (y[i] == null || !Number.isFinite(y[i]) ? "" : y[i]))].join(","));
  return [header, ...rows].join("\n") + "\n";
}

/** Saves text or a data URL as a file through the browser's download. */
export function download(name, content, type = "text/csv") {
  const url = content.startsWith("data:") ? content : URL.createObjectURL(new Blob([content], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  if (!content.startsWith("data:")) setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** A drag-zoom range rounded for people and logs: whole steps on wide ranges. */
export function niceRange(lo, hi, log = false) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return null;
  if (lo > hi) [lo, hi] = [hi, lo];
  const round = (v) => Number(fmtG(v, 4));
  let out;
  if (!log && hi - lo >= 20) out = [Math.round(lo), Math.round(hi)];
  else out = [round(lo), round(hi)];
  return out[0] < out[1] ? out : null;
}

/** The zoom action for an x range (null resets the zoom). */
export function zoomAction(metric, xRange, yRange = null) {
  const params = { metric, x_range: xRange ? [xRange[0], xRange[1]] : null };
  if (yRange) params.y_range = [yRange[0], yRange[1]];
  return { type: "zoom", params };
}

const isDecade = (v) => v > 0 && Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9;
const decadesOnly = (u, splits) => splits.map((v) => (v != null && isDecade(v) ? v : null));
const SUPERSCRIPT = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };

/**
 * The labels of a log axis: decades only, at most `most` of them (every 2nd, 3rd, ...
 * decade, on exponents that are multiples of the step, so labels do not jump while
 * zooming), and one notation per axis: plain numbers when every label is between 0.01
 * and 1000, else powers of ten (10⁻⁵) for all.
 */
export function logTickLabels(splits, most = 6) {
  const exps = splits.map((v) => (v != null && isDecade(v) ? Math.round(Math.log10(v)) : null));
  const decades = exps.filter((e) => e != null);
  const step = Math.max(1, Math.ceil(decades.length / Math.max(1, most)));
  const shown = exps.map((e) => (e != null && e % step === 0 ? e : null));
  const plain = shown.every((e) => e == null || (e >= -2 && e <= 3));
  return shown.map((e) => {
    if (e == null) return null;
    if (plain) return e < 0 ? (10 ** e).toFixed(-e) : String(10 ** e);
    return `10${String(e).replace(/./g, (c) => SUPERSCRIPT[c])}`;
  });
}

/** Log axes: ticks at every power of ten, grid lines and labels at the labelled ones. */
function withLogAxis(base, length) {
  const most = Math.max(2, Math.floor(length / (base.space || 30)));
  const labelled = (u, splits) => {
    const labels = logTickLabels(splits, most);
    return splits.map((v, i) => (labels[i] == null ? null : v));
  };
  return {
    ...base,
    grid: { ...base.grid, filter: labelled },
    ticks: { ...base.ticks, filter: decadesOnly },
    values: (u, splits) => logTickLabels(splits, most),
  };
}

/**
 * The y range of the data alone: fitted curves may run past the data (a sigmoid's
 * asymptote, an extrapolated power law) and must not stretch the axis the data is read
 * on. Padded as uPlot pads its own auto range.
 */
export function dataRange(data, specs, log) {
  let lo = Infinity;
  let hi = -Infinity;
  specs.forEach((s, i) => {
    if (s.kind === "fit") return;
    const ys = data[i + 1];
    for (let j = 0; j < ys.length; j += 1) {
      const v = ys[j];
      if (v == null || !Number.isFinite(v) || (log && v <= 0)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  });
  if (!(lo <= hi)) return null;
  return log ? uPlot.rangeLog(lo, hi, 10, true) : uPlot.rangeNum(lo, hi, 0.1, true);
}

/** Shaded phase spans ({start, end, kind, color}) under the curves, each named at the
 *  top of the plot if it has room. */
export function drawSpans(u, spans) {
  if (!spans || !spans.length) return;
  const { ctx } = u;
  const { left, top, width, height } = u.bbox;
  const dpr = typeof devicePixelRatio === "number" ? devicePixelRatio : 1;
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top, width, height);
  ctx.clip();
  ctx.font = `${Math.round(10 * dpr)}px sans-serif`;
  ctx.textBaseline = "top";
  for (const s of spans) {
    const a = u.valToPos(s.start, "x", true);
    const b = u.valToPos(s.end, "x", true);
    if (!Number.isFinite(a) || !Number.isFinite(b) || b <= a) continue;
    ctx.fillStyle = withAlpha(s.color, 0.13);
    ctx.fillRect(a, top, b - a, height);
    const label = s.kind;
    if (ctx.measureText(label).width + 6 * dpr < b - a) {
      ctx.fillStyle = withAlpha(s.color, 0.95);
      ctx.fillText(label, a + 3 * dpr, top + 2 * dpr);
    }
  }
  ctx.restore();
}

function plotOptions({ width, height, specs, bands = [], logX, logY, theme, onSelect, onReset, readout,
  xLabel = "step", spans = () => [] }) {
  const font = `11px ${theme.font}`;
  const axis = (label) => ({
    stroke: theme.fg2,
    grid: { stroke: withAlpha(theme.axis, 0.5), width: 1 },
    ticks: { stroke: withAlpha(theme.axis, 0.8), width: 1, size: 4 },
    font,
    labelFont: font,
    label,
    labelSize: 14,
    labelGap: 0,
  });
  return {
    width,
    height,
    pxAlign: 0,
    legend: { show: false },
    scales: {
      x: { time: false, distr: logX ? 3 : 1, log: 10 },
      y: { distr: logY ? 3 : 1, log: 10,
        range: (u, min, max) => dataRange(u.data, specs, logY)
          ?? (logY ? uPlot.rangeLog(min, max, 10, true) : uPlot.rangeNum(min, max, 0.1, true)) },
    },
    axes: [
      (logX ? (a) => withLogAxis(a, width) : (a) => a)({ ...axis(xLabel), space: 60, size: 30,
        // iterations are whole: no tick at 1.5
        ...(xLabel === "iteration" ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] } : {}) }),
      (logY ? (a) => withLogAxis(a, height) : (a) => a)({ ...axis(null), size: 56, space: 30 }),
    ],
    series: [
      { label: xLabel },
      ...specs.map((s) => ({
        label: s.label,
        stroke: s.alpha < 1 ? withAlpha(s.color, s.alpha) : s.color,
        width: s.width,
        dash: s.dash || undefined,
        spanGaps: true,
        // a point per value where they are few and apart (an exploration's iterations)
        points: s.points ? { show: true, size: 6, fill: s.color } : { show: false },
      })),
    ],
    // A sweep group's band: filled between its upper and lower edge series.
    bands: bands.map((b) => ({ series: [b.hi, b.lo], fill: withAlpha(b.color, 0.18) })),
    cursor: {
      drag: { x: true, y: false, setScale: false },
      points: { show: false },
      bind: { dblclick: () => () => { onReset(); return null; } },
    },
    select: { show: true },
    hooks: {
      drawClear: [(u) => drawSpans(u, spans())],
      setSelect: [(u) => {
        const { left, width: w } = u.select;
        if (w > 3) onSelect(u.posToVal(left, "x"), u.posToVal(left + w, "x"));
        u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
      }],
      setCursor: [(u) => readout(u.cursor.idx)],
    },
  };
}

/**
 * One plot in a fixed-height box. draw(built, view) redraws: setData when the series are
 * the same as before, a new uPlot when they or the axes' kind changed.
 */
export function createPlot({ height = 220, theme, onZoom, onReset, testid = "plot", xLabel: defaultXLabel = "step" }) {
  let xLabel = defaultXLabel;
  const box = h("div", { class: "fl-plot", testid, style: { height: `${height}px` } });
  const readout = h("div", { class: "fl-readout", "aria-hidden": "true" });
  const el = h("div", { class: "fl-plot-wrap" }, box, readout);
  let plot = null;
  let signature = null;
  let built = null;
  let current = { logX: false, logY: false };
  let spans = []; // shaded phases, read by the plot's drawClear hook
  let themeNow = theme;
  let observer = null;

  const width = () => Math.max(240, Math.floor(box.clientWidth || box.parentElement?.clientWidth || 600));

  // Under the plot: which colour is which experiment, or the values under the cursor.
  const showLegend = () => {
    readout.textContent = "";
    if (!built) return;
    const seen = new Set();
    for (const s of built.specs) {
      if (s.kind === "fit" || seen.has(s.experiment)) continue;
      seen.add(s.experiment);
      readout.append(h("span", { class: "fl-key" }, h("span", { class: "fl-swatch", style: { background: s.color } }), ` ${s.experiment}`));
    }
    // overlaid series (Chart.also): which line style is which
    const styles = new Map();
    for (const s of built.specs) {
      if ((s.kind === "line" || s.kind === "smooth") && s.series && !styles.has(s.series)) styles.set(s.series, s.dash);
    }
    if (styles.size > 1) {
      for (const [series, dash] of styles) {
        readout.append(h("span", { class: "fl-key fl-key-series", testid: `series-key-${series}` },
          h("span", { class: dash ? "fl-dash fl-dash-neutral" : "fl-solid" }), ` ${series}`));
      }
    }
    // the fitted curves, dashed in their family's colour
    const fits = new Set();
    for (const s of built.specs) {
      if (s.kind !== "fit" || fits.has(s.family)) continue;
      fits.add(s.family);
      readout.append(h("span", { class: "fl-key fl-key-fit", testid: `fit-key-${s.family}` },
        h("span", { class: "fl-dash", style: { borderColor: s.color } }), ` ${s.familyLabel || s.family} fit`));
    }
  };
  const showReadout = (idx) => {
    if (idx == null || !built) {
      showLegend();
      return;
    }
    const x = built.data[0][idx];
    const parts = [];
    built.specs.forEach((s, i) => {
      if (s.kind === "neuron" || s.kind === "raw" || s.kind === "band-lo" || s.kind === "band-hi"
        || parts.length >= 6) return;
      const v = built.data[i + 1][idx];
      if (v != null) parts.push(`${s.label} ${fmtG(v, 4)}`);
    });
    readout.textContent = `${xLabel} ${fmtG(x, 6)}${parts.length ? " · " + parts.join(" · ") : ""}`;
  };

  function destroyPlot() {
    if (plot) plot.destroy();
    plot = null;
    signature = null;
  }

  function draw(next, view = {}) {
    built = next;
    const { xRange = null, yRange = null, logX = false, logY = false } = view;
    current = { logX, logY };
    xLabel = view.xLabel || defaultXLabel;
    spans = view.spans || [];
    if (view.theme) themeNow = view.theme;
    if (!next || !hasPoints(next)) {
      destroyPlot();
      replaceChildren(box, h("div", { class: "fl-plot-empty" }, view.emptyText || "No data yet"));
      return;
    }
    const sig = JSON.stringify([next.specs.map((s) => [s.label, s.color, s.alpha, s.width, s.dash, s.points]),
      next.bands || [], logX, logY, height, themeNow, xLabel]);
    showLegend();
    if (plot && sig === signature) {
      plot.setData(next.data, true);
    } else {
      destroyPlot();
      box.textContent = "";
      const opts = plotOptions({ width: width(), height, specs: next.specs, bands: next.bands, logX, logY,
        theme: themeNow, readout: showReadout, xLabel, spans: () => spans,
        onSelect: (lo, hi) => onZoom && onZoom(lo, hi, current.logX),
        onReset: () => onReset && onReset() });
      plot = factory(opts, next.data, box);
      signature = sig;
      // Built while the box was being re-laid out (a theme switch re-renders with every
      // box 0 px wide for a moment): measure again once layout has settled.
      if (typeof requestAnimationFrame !== "undefined") {
        const built = plot;
        requestAnimationFrame(() => {
          if (plot === built && box.clientWidth && Math.abs(plot.width - width()) > 2) {
            plot.setSize({ width: width(), height });
          }
        });
      }
    }
    if (xRange && (!logX || xRange[0] > 0)) plot.setScale("x", { min: xRange[0], max: xRange[1] });
    if (yRange && (!logY || yRange[0] > 0)) plot.setScale("y", { min: yRange[0], max: yRange[1] });
    if (!observer && typeof ResizeObserver !== "undefined") {
      observer = new ResizeObserver(() => {
        if (plot && box.clientWidth && Math.abs(plot.width - width()) > 2) {
          plot.setSize({ width: width(), height });
        }
      });
      observer.observe(box);
    }
  }

  return {
    el,
    draw,
    get plot() { return plot; },
    /** What is drawn now ({data, specs, bands}), for downloads. */
    get built() { return built; },
    destroy() {
      destroyPlot();
      if (observer) observer.disconnect();
      observer = null;
    },
  };
}

// The dashes of a chart's overlaid series, in order (export/charts.py OVERLAY_STYLES).
export const OVERLAY_DASHES = [[5, 3], [1, 2], [8, 3, 2, 3], [3, 3]];

/** "test_loss" -> {metric: "test_loss", layer: null}; "nonlinear_rate@layers.0.pre" ->
 *  {metric, layer}. */
export function parseSeries(spec) {
  const at = spec.indexOf("@");
  return at < 0 ? { metric: spec, layer: null } : { metric: spec.slice(0, at), layer: spec.slice(at + 1) };
}

/** One reply of several series requests: the chart's own series first, then each
 *  overlaid one named and dashed; the first error reply, if any, stands for all. */
export function mergeReplies(replies, asks, also) {
  const failed = replies.find((r) => r.kind === "error");
  if (failed) return failed;
  if (!also.length) return replies[0];
  const own = asks[0].layer ? `${asks[0].metric}@${asks[0].layer}` : asks[0].metric;
  const series = replies.flatMap((r, i) => r.series.map((s) => ({ ...s,
    series: i === 0 ? own : also[i - 1], dash: i === 0 ? null : OVERLAY_DASHES[(i - 1) % OVERLAY_DASHES.length] })));
  return { ...replies[0], series };
}

/**
 * A plot of one metric (and layer) of several experiments, fed by series requests:
 * update() refetches when the request or a viewed experiment's progress changed, and
 * redraws from the last reply when only the view (smoothing, axes, zoom, fits) changed.
 */
export function createSeriesPlot(ctx, { metric, chartMetric = metric, height, testid, zoomSlot, onDrawn }) {
  const note = h("div", { class: "fl-note", "aria-live": "polite" });
  let args = null;
  let reply = null;
  let requestKey = null;
  let liveKey = null;
  let inFlight = false;
  let again = false;
  let destroyed = false;

  const plot = createPlot({
    height,
    theme: ctx.theme(),
    testid,
    onZoom: (lo, hi, log) => {
      const range = niceRange(lo, hi, log);
      if (range) ctx.act("zoom", zoomAction(chartMetric, range).params, zoomSlot);
    },
    onReset: () => ctx.act("zoom", zoomAction(chartMetric, null).params, zoomSlot),
  });
  const el = h("div", { class: "fl-series-plot" }, plot.el, note);

  async function fetch() {
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    const { experiments, layer, also = [] } = args;
    const asks = [{ metric, layer }, ...also.map(parseSeries)];
    const replies = await Promise.all(asks.map((a) => ctx.proto.series(experiments, a.metric, a.layer)));
    const r = mergeReplies(replies, asks, also);
    inFlight = false;
    if (destroyed) return;
    if (again) {
      again = false;
      fetch();
      return;
    }
    reply = r;
    redraw();
  }

  function redraw() {
    if (!args) return;
    const { state, view, fits = [], layer } = args;
    if (!reply) {
      plot.draw(null, { emptyText: "Loading…" });
      return;
    }
    if (reply.kind === "error") {
      note.textContent = reply.message;
      plot.draw(null, { emptyText: "No data" });
      return;
    }
    let ok = reply.series.filter((s) => !s.error);
    const problems = reply.series.filter((s) => s.error).map((s) => `${s.experiment}: ${s.error}`);
    const time = view.x === "time";
    if (time) { // each run against its own clock: seconds since its first step
      const timed = ok.map((s) => ({ ...s, steps: stepsToSeconds(s.steps, s.clock) }));
      for (const s of timed) if (!s.steps) problems.push(`${s.experiment}: recorded before runs kept a clock; drawn on steps only`);
      ok = timed.filter((s) => s.steps);
    }
    note.textContent = problems.join("\n");
    const traces = ok.map((s) => ({ ...s, color: experimentColor(state, s.experiment) }));
    const band = (args.also || []).length ? null : view.band || null; // groups of one series only
    const built = buildPlot(traces, {
      smoothing: view.smoothing || 0, logX: !!view.log_x, logY: !!view.log_y,
      // fits and phases are functions of the step: not drawn against seconds
      fits: time ? [] : fits, fitsVisible: view.fits_visible !== false, families: state.families || [],
      band, bandGroups: band ? shownGroups(state, ok.map((s) => s.experiment),
        (e) => experimentColor(state, e)) : [],
    });
    plot.draw(built, { xRange: view.x_range, yRange: view.y_range, logX: !!view.log_x,
      logY: !!view.log_y, theme: ctx.theme(), spans: time ? [] : args.spans || [],
      xLabel: time ? "seconds" : undefined,
      emptyText: layer ? "No data yet for this layer" : "No data yet" });
    if (onDrawn) onDrawn(built, view);
  }

  return {
    el,
    note,
    plot,
    /** The chart as a PNG data URL (its canvas) and its data as CSV; null when empty. */
    png: () => plot.plot?.ctx?.canvas?.toDataURL?.("image/png") ?? null,
    csv: () => (plot.built ? plotCsv(plot.built) : null),
    /** {experiments, layer, view, state, fits} */
    update(next) {
      args = next;
      const key = JSON.stringify([next.experiments, metric, next.layer ?? null, next.also || []]);
      const live = JSON.stringify((next.state.experiments || [])
        .filter((e) => next.experiments.includes(e.id)).map((e) => [e.id, e.status, e.steps_done]));
      if (!next.experiments.length) {
        requestKey = key;
        reply = null;
        note.textContent = "";
        plot.draw(null, { emptyText: "Nothing to plot" });
        return;
      }
      if (key !== requestKey || live !== liveKey) {
        if (key !== requestKey) reply = null;
        requestKey = key;
        liveKey = live;
        fetch();
      }
      redraw();
    },
    redraw,
    destroy() {
      destroyed = true;
      plot.destroy();
    },
  };
}
