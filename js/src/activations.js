// Activations: the layer picker ("Layer 1 pre (500 x 100)"), the method (neuron stats,
// heatmap, histogram), neuron statistics over steps, and heatmap / histogram of the
// activations at one snapshot step, drawn on canvas.
import { blankCanvas, context2d, drawCells } from "./canvas.js";
import { fillSelect, h, replaceChildren } from "./dom.js";
import { fmtG } from "./format.js";
import { methodLabels } from "./facts.js";
import { createSeriesPlot } from "./plot.js";
import { createStepPlayer } from "./step-player.js";
import { parseColor } from "./theme.js";

/** Hook points of some experiments (all when none given), with their labels. */
export function layerOptions(state, experiments = [], base = "activations") {
  const out = new Map();
  const exps = (state.experiments || []).filter((e) => !experiments.length || experiments.includes(e.id));
  // a statistic on weights is measured on weight matrices (and the embedding), not on
  // the activations' hook points
  const key = base === "weights" ? "weight_labels" : "point_labels";
  for (const e of exps) {
    for (const [point, label] of Object.entries(e[key] || {})) if (!out.has(point)) out.set(point, label);
  }
  return [...out].map(([value, label]) => ({ value, label }));
}

/** What a statistic is measured on: "activations" or "weights" (its chain's start). */
export function statisticBase(state, name) {
  const stat = (state.statistics || []).find((s) => s.name === name);
  return stat?.base || "activations";
}

export function statisticLevel(state, name) {
  const stat = (state.statistics || []).find((s) => s.name === name);
  return stat ? stat.level : 0;
}

/** The layer select: choose_layer on change; a placeholder while no layer is chosen. */
export function createLayerSelect(ctx, metric, slot) {
  const select = h("select", { class: "fl-select", testid: "layer-select", "aria-label": "Layer" });
  select.addEventListener("change", () => {
    if (select.value) ctx.act("choose_layer", { metric, layer: select.value }, slot);
  });
  return {
    el: select,
    update(state, layer, experiments) {
      const options = layerOptions(state, experiments, statisticBase(state, metric));
      if (layer && !options.some((o) => o.value === layer)) options.push({ value: layer, label: layer });
      fillSelect(select, [{ value: "", label: "Choose a layer…", disabled: true }, ...options], layer || "");
    },
  };
}

/** Counts of values in `bins` equal bins over [lo, hi] (finite values only). */
export function histogram(values, bins = 60) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const counts = new Int32Array(bins);
  if (lo === Infinity) return { lo: 0, hi: 0, counts, total: 0 };
  if (hi === lo) hi = lo + 1;
  const scale = bins / (hi - lo);
  let total = 0;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    counts[Math.min(bins - 1, Math.floor((v - lo) * scale))] += 1;
    total += 1;
  }
  return { lo, hi, counts, total };
}

/** Diverging colour of t in [-1, 1]: blue below zero, red above, `mid` at zero. */
export function divergingColor(t, mid = [247, 247, 247]) {
  const neg = [37, 99, 235];
  const pos = [220, 38, 38];
  const c = Math.max(-1, Math.min(1, Number.isFinite(t) ? t : 0));
  const end = c < 0 ? neg : pos;
  const a = Math.abs(c);
  return [0, 1, 2].map((i) => Math.round(mid[i] + (end[i] - mid[i]) * a));
}

/** Heatmap of a (rows = samples, cols = neurons) array; false when there is no canvas. */
export function drawHeatmap(canvas, values, rows, cols, theme, cssHeight = 260) {
  const blank = blankCanvas(canvas, cssHeight);
  if (!blank) return false;
  const { g, width, height } = blank;
  let maxAbs = 0;
  for (const v of values) if (Number.isFinite(v) && Math.abs(v) > maxAbs) maxAbs = Math.abs(v);
  maxAbs = maxAbs || 1;
  const mid = theme.dark ? [40, 40, 44] : [247, 247, 247];
  const colors = Array.from({ length: rows * cols }, (_, i) => divergingColor(values[i] / maxAbs, mid));
  const left = 48;
  const right = 64;
  const top = 6;
  const bottom = 30;
  const w = width - left - right;
  const hgt = height - top - bottom;
  drawCells(g, colors, rows, cols, { left, top, width: w, height: hgt }, theme,
    { xName: `neuron (${cols})`, yName: `sample (${rows})` });
  const barX = left + w + 12;
  for (let y = 0; y < hgt; y++) {
    const [r, gg, b] = divergingColor(1 - (2 * y) / hgt, mid);
    g.fillStyle = `rgb(${r},${gg},${b})`;
    g.fillRect(barX, top + y, 10, 1);
  }
  g.strokeRect(barX - 0.5, top - 0.5, 11, hgt + 1);
  g.fillStyle = theme.fg2;
  g.textAlign = "left";
  g.textBaseline = "top";
  g.fillText(fmtG(maxAbs, 3), barX + 14, top);
  g.textBaseline = "middle";
  g.fillText("0", barX + 14, top + hgt / 2);
  g.textBaseline = "bottom";
  g.fillText(fmtG(-maxAbs, 3), barX + 14, top + hgt);
  return true;
}

/** Histogram bars of the activations; false when there is no canvas. */
export function drawHistogram(canvas, hist, theme, cssHeight = 260) {
  const blank = blankCanvas(canvas, cssHeight);
  if (!blank) return false;
  const { g, width, height } = blank;
  const left = 56;
  const right = 12;
  const top = 8;
  const bottom = 30;
  const w = width - left - right;
  const hgt = height - top - bottom;
  const max = Math.max(1, ...hist.counts);
  const n = hist.counts.length;
  const rgb = parseColor(theme.brand) || [25, 118, 210];
  g.fillStyle = `rgba(${rgb[0]}, ${rgb[1]}, ${rgb[2]}, 0.85)`;
  for (let i = 0; i < n; i++) {
    const bh = (hist.counts[i] / max) * hgt;
    g.fillRect(left + (i * w) / n + 0.5, top + hgt - bh, Math.max(1, w / n - 1), bh);
  }
  g.strokeStyle = theme.axis;
  g.beginPath();
  g.moveTo(left, top);
  g.lineTo(left, top + hgt);
  g.lineTo(left + w, top + hgt);
  g.stroke();
  g.fillStyle = theme.fg2;
  g.font = `11px ${theme.font}`;
  g.textBaseline = "top";
  g.textAlign = "left";
  g.fillText(fmtG(hist.lo, 3), left, top + hgt + 4);
  g.textAlign = "right";
  g.fillText(fmtG(hist.hi, 3), left + w, top + hgt + 4);
  g.textAlign = "center";
  g.fillText("activation", left + w / 2, top + hgt + 15);
  if (hist.lo < 0 && hist.hi > 0) {
    const zx = left + ((0 - hist.lo) / (hist.hi - hist.lo)) * w;
    g.strokeStyle = theme.fg2;
    g.setLineDash([3, 3]);
    g.beginPath();
    g.moveTo(zx, top);
    g.lineTo(zx, top + hgt);
    g.stroke();
    g.setLineDash([]);
    g.fillText("0", zx, top + hgt + 4);
  }
  g.textAlign = "right";
  g.textBaseline = "top";
  g.fillText(String(max), left - 6, top);
  g.textBaseline = "bottom";
  g.fillText("0", left - 6, top + hgt);
  g.save();
  g.translate(14, top + hgt / 2);
  g.rotate(-Math.PI / 2);
  g.textAlign = "center";
  g.textBaseline = "middle";
  g.fillText("count", 0, 0);
  g.restore();
  return true;
}

/** The neuron order of a heatmap: as they are, or sorted by a per-neuron measure of
 *  this snapshot (descending), so neurons that do alike sit together. */
export const NEURON_ORDERS = { none: "neurons as they are", mean: "sorted by mean activation",
  active: "sorted by fraction active (> 0)" };

/** values (rows x cols, row-major) with its columns permuted by `order`; the same array
 *  for "none". Returns {values, order: the column indices in their new order}. */
export function sortNeurons(values, rows, cols, order = "none") {
  const index = Array.from({ length: cols }, (_, c) => c);
  if (order === "none" || !cols) return { values, order: index };
  const key = new Float64Array(cols);
  for (let c = 0; c < cols; c++) {
    let sum = 0;
    let n = 0;
    for (let r = 0; r < rows; r++) {
      const v = values[r * cols + c];
      if (!Number.isFinite(v)) continue;
      sum += order === "active" ? (v > 0 ? 1 : 0) : v;
      n += 1;
    }
    key[c] = n ? sum / n : -Infinity;
  }
  index.sort((a, b) => key[b] - key[a] || a - b);
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) out[r * cols + j] = values[r * cols + index[j]];
  }
  return { values: out, order: index };
}

/** A one-line summary of activations at a step. */
export function describeActivations(values) {
  let n = 0;
  let sum = 0;
  let sq = 0;
  let positive = 0;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    n += 1;
    sum += v;
    sq += v * v;
    if (v > 0) positive += 1;
  }
  if (!n) return "no values";
  const mean = sum / n;
  const std = Math.sqrt(Math.max(0, sq / n - mean * mean));
  return `mean ${fmtG(mean, 3)} · std ${fmtG(std, 3)} · fraction > 0: ${fmtG(positive / n, 3)}`;
}

/**
 * The body of the chart of the activation snapshots (`metric`, hidden_activations).
 * Neuron stats: one plot per added statistic (faint per-neuron lines and the mean for a
 * per-neuron statistic, one line for a per-layer one). Heatmap / histogram: the
 * activations at a snapshot step.
 */
export function createActivationsBody(ctx, { metric, slot, zoomSlot }) {
  const method = h("select", { class: "fl-select", testid: "method-select", "aria-label": "Method" });
  method.addEventListener("change", () => ctx.act("choose_method", { metric, method: method.value }, slot));
  const addSelect = h("select", { class: "fl-select", testid: "add-stat-select", "aria-label": "Statistic to add" });
  const addButton = h("button", { type: "button", class: "fl-button", testid: "add-stat" }, "Add stat");
  const expSelect = h("select", { class: "fl-select", testid: "act-experiment", "aria-label": "Experiment" });
  const player = createStepPlayer((step) => requestActivations(step));
  const order = h("select", { class: "fl-select", testid: "neuron-order", "aria-label": "Neuron order",
    title: "Order of the heatmap's neuron columns" },
  Object.entries(NEURON_ORDERS).map(([value, label]) => h("option", { value }, label)));
  const canvas = h("canvas", { class: "fl-canvas", role: "img" });
  const actNote = h("div", { class: "fl-note", "aria-live": "polite" });
  const hint = h("div", { class: "fl-hint" });
  const statsBox = h("div", { class: "fl-stat-plots" });
  const statTools = h("div", { class: "fl-toolbar" }, addSelect, addButton);
  const stepTools = h("div", { class: "fl-toolbar" }, expSelect, ...player.el, order);
  const snapshotBox = h("div", { class: "fl-snapshot" }, canvas, actNote);
  const el = h("div", { class: "fl-activations" },
    h("div", { class: "fl-toolbar" }, h("label", { class: "fl-inline" }, "Method ", method), statTools, stepTools),
    hint, statsBox, snapshotBox);

  const plots = new Map();
  let state = {};
  let view = {};
  let experiments = [];
  let token = 0;
  let last = null; // the last activations reply drawn
  let requested = null;
  let height = 260;

  addButton.addEventListener("click", () => {
    if (!addSelect.value || !view.layer) return;
    ctx.act("add_neuron_stat", { stat: addSelect.value, layer: view.layer }, slot);
  });

  const wantedStep = () => player.wanted();
  async function requestActivations(step) {
    const experiment = expSelect.value;
    if (!experiment || !view.layer) return;
    const mine = ++token;
    requested = JSON.stringify([experiment, view.layer, step]);
    const reply = await ctx.proto.activations(experiment, view.layer, step);
    if (mine !== token) return; // a newer request is on its way
    if (reply.kind === "error") {
      last = null;
      actNote.textContent = reply.message;
      drawSnapshot();
      return;
    }
    player.setSteps(reply.steps, reply.step);
    last = reply;
    drawSnapshot();
  }
  order.addEventListener("change", () => drawSnapshot());
  expSelect.addEventListener("change", () => requestActivations(wantedStep()));

  function drawSnapshot() {
    if (!last || !last.values) {
      const g = context2d(canvas);
      if (g) g.clearRect(0, 0, canvas.width, canvas.height);
      return;
    }
    const [rows, cols] = last.shape.length === 2 ? last.shape : [1, last.values.length];
    const heatmap = view.method === "heatmap";
    canvas.dataset.testid = heatmap ? "heatmap" : "histogram";
    const label = methodLabels(state)[view.method] || view.method;
    canvas.setAttribute("aria-label", `${label} of ${last.layer} of ${last.experiment} at step ${last.step}`);
    canvas.style.height = `${height}px`;
    const theme = ctx.theme();
    if (heatmap) drawHeatmap(canvas, sortNeurons(last.values, rows, cols, order.value).values, rows, cols, theme, height);
    else drawHistogram(canvas, histogram(last.values), theme, height);
    actNote.textContent = `${last.experiment}, ${last.layer} at step ${last.step} (${rows} x ${cols}): ${describeActivations(last.values)}`;
  }

  function updateStatPlots() {
    const wanted = view.layer ? (view.stats || []) : [];
    for (const [stat, p] of plots) {
      if (!wanted.includes(stat)) {
        p.series.destroy();
        p.el.remove();
        plots.delete(stat);
      }
    }
    const plotHeight = view.enlarged ? 300 : 200;
    wanted.forEach((stat, i) => {
      let p = plots.get(stat);
      if (!p || p.height !== plotHeight) {
        if (p) { p.series.destroy(); p.el.remove(); }
        const series = createSeriesPlot(ctx, { metric: stat, chartMetric: metric, height: plotHeight,
          testid: `stat-plot-${stat}`, zoomSlot });
        const level = statisticLevel(state, stat);
        const title = h("div", { class: "fl-subtitle" }, h("strong", {}, stat), " ",
          h("span", { class: "fl-muted" }, level === 1 ? "per neuron (faint) and their mean" : "one value per layer"));
        p = { series, height: plotHeight, el: h("div", { class: "fl-stat-plot" }, title, series.el) };
        plots.set(stat, p);
      }
      if (statsBox.children[i] !== p.el) statsBox.insertBefore(p.el, statsBox.children[i] || null);
      p.series.update({ experiments, layer: view.layer, view, state, fits: [] });
    });
  }

  return {
    el,
    update(nextView, nextState, viewed) {
      const prevLive = JSON.stringify((state.experiments || []).map((e) => [e.id, e.status]));
      view = nextView;
      state = nextState;
      experiments = viewed;
      height = view.enlarged ? 380 : 260;
      fillSelect(method, Object.entries(methodLabels(state)).map(([value, label]) => ({ value, label })), view.method);
      const stats = (state.statistics || []).filter((s) => s.level === 1 || s.level === 2);
      const current = addSelect.value;
      fillSelect(addSelect, stats.map((s) => ({ value: s.name,
        label: `${s.name} (${s.level === 1 ? "per neuron" : "per layer"})` })));
      const fallback = stats.find((s) => !(view.stats || []).includes(s.name))?.name || stats[0]?.name || "";
      addSelect.value = stats.some((s) => s.name === current) && current ? current : fallback;
      addButton.disabled = !view.layer;
      const neuron = view.method === "neuron_stats" || !view.method;
      statTools.hidden = !neuron;
      stepTools.hidden = neuron;
      order.hidden = view.method !== "heatmap";
      if (neuron && player.playing) player.stop();
      statsBox.hidden = !neuron;
      snapshotBox.hidden = neuron;
      if (!view.layer) hint.textContent = "Choose a layer to see its activations.";
      else if (neuron && !(view.stats || []).length) hint.textContent = "Add a statistic to plot it over training steps.";
      else hint.textContent = "";
      hint.hidden = !hint.textContent;
      if (!experiments.length) {
        hint.textContent = "View the results of an experiment first.";
        hint.hidden = false;
      }
      updateStatPlots();
      if (!neuron) {
        const exps = (state.experiments || []).filter((e) => experiments.includes(e.id));
        const prefer = exps.find((e) => e.observables.includes(metric))?.id || exps[0]?.id || "";
        fillSelect(expSelect, exps.map((e) => e.id), experiments.includes(expSelect.value) ? expSelect.value : prefer);
        expSelect.hidden = exps.length < 2;
        const key = JSON.stringify([expSelect.value, view.layer, wantedStep()]);
        const live = JSON.stringify((state.experiments || []).map((e) => [e.id, e.status]));
        if (key !== requested || live !== prevLive) requestActivations(wantedStep());
        else drawSnapshot();
      }
    },
    destroy() {
      player.stop();
      token += 1;
      for (const p of plots.values()) p.series.destroy();
      plots.clear();
      replaceChildren(el);
    },
  };
}
