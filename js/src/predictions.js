// The data and the network's predictions on it, at a snapshot step (the observable
// "predictions"), as TensorFlow Playground shows them: a 1-D input as the samples and
// the learned curve, a 2-D input as the learned function over the plane with the
// samples on it, a modular task as its p x p table of right and wrong answers, and any
// other input as prediction against target.
import { blankCanvas, context2d, drawAxes, drawCells, finiteRange } from "./canvas.js";
import { fillSelect, h, replaceChildren } from "./dom.js";
import { experimentColor } from "./facts.js";
import { fmtG } from "./format.js";
import { createStepPlayer } from "./step-player.js";
import { parseColor, withAlpha } from "./theme.js";

export const TEST_COLOR = "#e8590c";
// modular pairs: right and wrong, paler for the training pairs the network was fitted on
export const PAIR_COLORS = {
  train_right: "#8fd19e", train_wrong: "#f4a5a5", test_right: "#15803d", test_wrong: "#c92a2a",
};
const PAIR_LABELS = {
  train_right: "train, right", train_wrong: "train, wrong", test_right: "test, right", test_wrong: "test, wrong",
};
const NOT_FINITE = [158, 158, 158]; // a diverged network's NaN on the plane
// A perceptually ordered colour map (viridis at 5 stops) for values over the plane.
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

/** viridis at t in [0, 1] as [r, g, b]. */
export function viridis(t) {
  const c = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(c));
  const f = c - i;
  return [0, 1, 2].map((k) => Math.round(VIRIDIS[i][k] + (VIRIDIS[i + 1][k] - VIRIDIS[i][k]) * f));
}

/** The sample rows of a reply split by train and test: {train: [i...], test: [i...]}. */
function splitRows(reply) {
  const all = Array.from({ length: reply.n_train + reply.n_test }, (_, i) => i);
  return { train: all.slice(0, reply.n_train), test: all.slice(reply.n_train) };
}

/** One line saying how good the predictions are at this step. */
export function predictionSummary(reply) {
  const fmt = (v) => (v == null ? "–" : reply.n_classes ? `${(100 * v).toFixed(1)}%` : fmtG(v, 3));
  const what = reply.n_classes ? "accuracy" : "MSE";
  const parts = [`train ${what} ${fmt(reply.train)}`];
  if (reply.n_test) parts.push(`test ${what} ${fmt(reply.test)}`);
  return `${reply.experiment} at step ${reply.step}: ${parts.join(" · ")}`;
}

/** The p x p table of a modular task: per cell (row a, column b) a key of PAIR_COLORS,
 *  or null where the pair is not a sample (b = 0 for division). */
export function pairCells(reply) {
  const { inputs, target, prediction } = reply.data;
  const p = reply.n_classes;
  const cells = new Array(p * p).fill(null);
  const samples = reply.n_train + reply.n_test;
  for (let i = 0; i < samples; i++) {
    const a = inputs[2 * i];
    const b = inputs[2 * i + 1];
    const split = i < reply.n_train ? "train" : "test";
    cells[a * p + b] = `${split}_${prediction[i] === target[i] ? "right" : "wrong"}`;
  }
  return cells;
}

/** The CSV of a reply: split, inputs, target, prediction per row (grid rows last). */
export function predictionsCsv(reply) {
  const { inputs, target, prediction } = reply.data;
  const dim = inputs ? reply.dim : 0;
  const names = reply.n_classes ? ["a", "b"] : Array.from({ length: dim }, (_, i) => `x${i}`);
  const lines = [["split", ...names, "target", "prediction"].join(",")];
  const samples = reply.n_train + reply.n_test;
  for (let i = 0; i < samples; i++) {
    const x = inputs ? Array.from(inputs.subarray(i * dim, (i + 1) * dim)) : [];
    lines.push([i < reply.n_train ? "train" : "test", ...x, target[i], prediction[i]].join(","));
  }
  for (const [i, x] of gridInputs(reply).entries()) lines.push(["grid", ...x, "", prediction[samples + i]].join(","));
  return lines.join("\n") + "\n";
}

/** The inputs of the grid rows, in the kernel's order (x0 fastest). */
export function gridInputs(reply) {
  const grid = reply.grid || [];
  const e = reply.extent || [];
  const at = (k, i, n) => e[2 * k] + ((e[2 * k + 1] - e[2 * k]) * i) / Math.max(1, n - 1);
  if (grid.length === 1) return Array.from({ length: grid[0] }, (_, i) => [at(0, i, grid[0])]);
  if (grid.length === 2) {
    const out = [];
    for (let r = 0; r < grid[1]; r++) for (let c = 0; c < grid[0]; c++) out.push([at(0, c, grid[0]), at(1, r, grid[1])]);
    return out;
  }
  return [];
}

function dot(g, x, y, r, fill, stroke) {
  g.beginPath();
  g.arc(x, y, r, 0, 2 * Math.PI);
  if (fill) { g.fillStyle = fill; g.fill(); }
  if (stroke) { g.strokeStyle = stroke; g.lineWidth = 1.2; g.stroke(); }
}

const MARGIN = { left: 52, right: 16, top: 10, bottom: 36 };

function plotBox(width, height, right = MARGIN.right) {
  return { left: MARGIN.left, top: MARGIN.top, width: width - MARGIN.left - right,
    height: height - MARGIN.top - MARGIN.bottom };
}

/** A 1-D input: the samples (train filled, test hollow) and the learned curve. */
function drawCurve(g, width, height, reply, theme, color) {
  const { inputs, target, prediction } = reply.data;
  const samples = reply.n_train + reply.n_test;
  const grid = gridInputs(reply).map((x) => x[0]);
  const curve = prediction.subarray(samples);
  const x = [reply.extent[0], reply.extent[1]];
  const y = finiteRange([target, curve]) || [0, 1];
  const { sx, sy } = drawAxes(g, plotBox(width, height), x, y, theme, { xLabel: "x", yLabel: "y" });
  const { train, test } = splitRows(reply);
  for (const i of train) dot(g, sx(inputs[i]), sy(target[i]), 2.2, withAlpha(theme.fg2, 0.55));
  for (const i of test) dot(g, sx(inputs[i]), sy(target[i]), 2.6, null, TEST_COLOR);
  g.strokeStyle = color;
  g.lineWidth = 2;
  g.beginPath();
  let drawing = false; // a gap where the prediction is not finite (a diverged network)
  grid.forEach((gx, i) => {
    if (!Number.isFinite(curve[i])) { drawing = false; return; }
    const py = Math.max(MARGIN.top, Math.min(height - MARGIN.bottom, sy(curve[i])));
    if (drawing) g.lineTo(sx(gx), py);
    else g.moveTo(sx(gx), py);
    drawing = true;
  });
  g.stroke();
}

/** A 2-D input: the learned function over the plane, the samples coloured by target. */
function drawPlane(g, width, height, reply, theme) {
  const { inputs, target, prediction } = reply.data;
  const samples = reply.n_train + reply.n_test;
  const [gx, gy] = reply.grid;
  const surface = prediction.subarray(samples);
  const [lo, hi] = finiteRange([target, surface], 0) || [0, 1];
  // +-inf at the ends of the scale, NaN grey: a diverged network still draws
  const scale = (v) => (v === Infinity ? 1 : v === -Infinity ? 0 : hi > lo ? (v - lo) / (hi - lo) : 0.5);
  const colorOf = (v) => (Number.isNaN(v) ? NOT_FINITE : viridis(scale(v)));
  const box = plotBox(width, height, 78);
  const e = reply.extent;
  // one unit as long on both axes, so the plane is not stretched by a wide card
  box.width = Math.min(box.width, Math.round(box.height * ((e[1] - e[0]) / (e[3] - e[2] || 1))));
  const off = document.createElement("canvas");
  off.width = gx;
  off.height = gy;
  const image = new ImageData(gx, gy);
  for (let r = 0; r < gy; r++) {
    for (let c = 0; c < gx; c++) {
      const [R, G, B] = colorOf(surface[r * gx + c]);
      const at = 4 * ((gy - 1 - r) * gx + c); // the image's top row is the largest x1
      image.data.set([R, G, B, 255], at);
    }
  }
  off.getContext("2d").putImageData(image, 0, 0);
  g.imageSmoothingEnabled = true;
  g.drawImage(off, box.left, box.top, box.width, box.height);
  const { sx, sy } = drawAxes(g, box, [e[0], e[1]], [e[2], e[3]], theme, { xLabel: "x0", yLabel: "x1" });
  const { train, test } = splitRows(reply);
  for (const i of [...train, ...test]) {
    const [R, G, B] = viridis(scale(target[i]));
    const isTest = i >= reply.n_train;
    dot(g, sx(inputs[2 * i]), sy(inputs[2 * i + 1]), isTest ? 3 : 2.6, `rgb(${R},${G},${B})`,
      isTest ? TEST_COLOR : (theme.dark ? "#111" : "#fff"));
  }
  const barX = box.left + box.width + 14;
  for (let py = 0; py < box.height; py++) {
    const [R, G, B] = viridis(1 - py / box.height);
    g.fillStyle = `rgb(${R},${G},${B})`;
    g.fillRect(barX, box.top + py, 10, 1);
  }
  g.strokeStyle = theme.axis;
  g.strokeRect(barX - 0.5, box.top - 0.5, 11, box.height + 1);
  g.fillStyle = theme.fg2;
  g.textAlign = "left";
  g.textBaseline = "top";
  g.fillText(fmtG(hi, 3), barX + 14, box.top);
  g.textBaseline = "bottom";
  g.fillText(fmtG(lo, 3), barX + 14, box.top + box.height);
}

/** A modular task: the p x p table of pairs, right and wrong, train and test. */
function drawPairs(g, width, height, reply, theme) {
  const p = reply.n_classes;
  const cells = pairCells(reply);
  const side = Math.max(10, Math.min(width - MARGIN.left - MARGIN.right, height - MARGIN.top - MARGIN.bottom));
  const empty = parseColor(theme.grid) || [224, 224, 224];
  const rgb = Object.fromEntries(Object.entries(PAIR_COLORS).map(([k, c]) => [k, parseColor(c)]));
  drawCells(g, cells.map((cell) => (cell ? rgb[cell] : empty)), p, p,
    { left: MARGIN.left, top: MARGIN.top, width: side, height: side }, theme, { xName: "b", yName: "a" });
  return side;
}

/** Any other input: prediction against target, with the line where they agree. */
function drawScatter(g, width, height, reply, theme) {
  const { target, prediction } = reply.data;
  const r = finiteRange([target, prediction.subarray(0, reply.n_train + reply.n_test)]) || [0, 1];
  const { sx, sy } = drawAxes(g, plotBox(width, height), r, r, theme, { xLabel: "target", yLabel: "prediction" });
  g.strokeStyle = theme.fg2;
  g.setLineDash([4, 4]);
  g.beginPath();
  g.moveTo(sx(r[0]), sy(r[0]));
  g.lineTo(sx(r[1]), sy(r[1]));
  g.stroke();
  g.setLineDash([]);
  const { train, test } = splitRows(reply);
  const shown = (i) => Number.isFinite(prediction[i]);
  for (const i of train.filter(shown)) dot(g, sx(target[i]), sy(prediction[i]), 2.2, withAlpha(theme.fg2, 0.55));
  for (const i of test.filter(shown)) dot(g, sx(target[i]), sy(prediction[i]), 2.6, null, TEST_COLOR);
}

/** Draws a decoded predictions reply; false when there is no canvas. */
export function drawPredictions(canvas, reply, theme, color, cssHeight = 280) {
  const height = reply.view === "pairs" ? Math.min(cssHeight + 60, 420) : cssHeight;
  const blank = blankCanvas(canvas, height);
  if (!blank) return false;
  const { g, width } = blank;
  g.font = `11px ${theme.font}`;
  if (reply.view === "curve") drawCurve(g, width, height, reply, theme, color);
  else if (reply.view === "plane") drawPlane(g, width, height, reply, theme);
  else if (reply.view === "pairs") drawPairs(g, width, height, reply, theme);
  else drawScatter(g, width, height, reply, theme);
  return true;
}

/** The key under the picture: what each mark and colour is, with counts. */
export function predictionKey(reply, color) {
  const swatch = (style) => h("span", { class: "fl-swatch", style });
  if (reply.view === "pairs") {
    const counts = {};
    for (const c of pairCells(reply)) if (c) counts[c] = (counts[c] || 0) + 1;
    const items = Object.keys(PAIR_COLORS).map((k) => h("span", { class: "fl-key-item" },
      swatch(`background:${PAIR_COLORS[k]}`), `${PAIR_LABELS[k]} (${counts[k] || 0})`));
    if (reply.left_out) {
      items.push(h("span", { class: "fl-key-item", title: "pairs past the first 32,768 samples: their predictions are not kept" },
        swatch("border:1px solid currentColor;opacity:.5"), `not kept (${reply.left_out})`));
    }
    return items;
  }
  const items = [
    h("span", { class: "fl-key-item" }, swatch("border-radius:50%;background:currentColor;opacity:.55"), `train (${reply.n_train})`),
  ];
  if (reply.n_test) {
    items.push(h("span", { class: "fl-key-item" },
      swatch(`border-radius:50%;border:1.5px solid ${TEST_COLOR};background:transparent`), `test (${reply.n_test})`));
  }
  if (reply.view === "curve") {
    items.push(h("span", { class: "fl-key-item" }, swatch(`height:3px;background:${color}`), "prediction"));
  } else if (reply.view === "plane") {
    items.push(h("span", { class: "fl-key-item fl-muted" }, "background: prediction, dots: target (same colours)"));
  } else {
    items.push(h("span", { class: "fl-key-item fl-muted" }, "dashed: prediction = target"));
  }
  return items;
}

/**
 * The body of the predictions chart: which experiment, the step slider with play, the
 * picture, its key, and a line with the train and test error at that step.
 */
export function createPredictionsBody(ctx) {
  const expSelect = h("select", { class: "fl-select", testid: "pred-experiment", "aria-label": "Experiment" });
  const player = createStepPlayer((step) => request(step), { what: "the predictions" });
  const canvas = h("canvas", { class: "fl-canvas", role: "img", testid: "predictions" });
  const key = h("div", { class: "fl-pred-key", testid: "predictions-key" });
  const note = h("div", { class: "fl-note", "aria-live": "polite", testid: "predictions-note" });
  const el = h("div", { class: "fl-predictions" },
    h("div", { class: "fl-toolbar" }, expSelect, ...player.el), canvas, key, note);
  let state = {};
  let height = 280;
  let token = 0;
  let last = null;
  let asked = null;

  async function request(step) {
    const experiment = expSelect.value;
    if (!experiment) return;
    const mine = ++token;
    asked = JSON.stringify([experiment, step]);
    const reply = await ctx.proto.request({ kind: "predictions", experiment, step });
    if (mine !== token) return;
    if (reply.kind === "error") {
      last = null;
      const g = context2d(canvas);
      if (g) g.clearRect(0, 0, canvas.width, canvas.height);
      replaceChildren(key);
      note.textContent = reply.message;
      return;
    }
    player.setSteps(reply.steps, reply.step);
    last = reply;
    draw();
  }
  expSelect.addEventListener("change", () => request(null));

  function draw() {
    if (!last) return;
    const color = experimentColor(state, last.experiment);
    canvas.style.height = `${last.view === "pairs" ? Math.min(height + 60, 420) : height}px`;
    drawPredictions(canvas, last, ctx.theme(), color, height);
    canvas.setAttribute("aria-label", `Predictions of ${last.experiment} at step ${last.step}`);
    replaceChildren(key, predictionKey(last, color));
    note.textContent = predictionSummary(last);
  }

  return {
    el,
    png: () => (last && canvas.toDataURL ? canvas.toDataURL("image/png") : null),
    /** What the card shows: the SVG download draws the same experiment and step. */
    shown: () => (last ? { experiment: last.experiment, step: last.step } : {}),
    csv: () => (last ? predictionsCsv(last) : ""),
    update(view, nextState, viewed) {
      const prevLive = JSON.stringify((state.experiments || []).map((e) => [e.id, e.status, e.steps_done]));
      state = nextState;
      height = view.enlarged ? 420 : 280;
      const exps = (state.experiments || []).filter((e) => viewed.includes(e.id));
      const recorded = exps.filter((e) => (e.observables || []).includes("predictions"));
      const prefer = (recorded[0] || exps[0])?.id || "";
      fillSelect(expSelect, exps.map((e) => e.id), viewed.includes(expSelect.value) ? expSelect.value : prefer);
      expSelect.hidden = exps.length < 2;
      if (!exps.length) {
        last = null;
        replaceChildren(key);
        note.textContent = "View the results of an experiment first.";
        return;
      }
      const live = JSON.stringify((state.experiments || []).map((e) => [e.id, e.status, e.steps_done]));
      const wanted = last && last.experiment === expSelect.value ? player.wanted() : null;
      // follow a training run to its newest snapshot unless a step was chosen
      const following = !last || last.step === last.steps.at(-1);
      const step = following ? null : wanted;
      if (JSON.stringify([expSelect.value, step]) !== asked || live !== prevLive) request(step);
      else draw();
    },
    destroy() {
      player.stop();
      token += 1;
      replaceChildren(el);
    },
  };
}
