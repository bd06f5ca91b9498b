// A stand-in for the anywidget model (get/set/save_changes/send/on/off) with test hooks,
// and a fake uPlot that records what the panel asks of it.
import widget from "../src/widget.js";
import { setPlotFactory } from "../src/plot.js";
import emptyState from "./fixtures/empty-state.json";
import referenceState from "./fixtures/reference-state.json";

// lab_state() of featurelab/ui/widget.py: a fresh lab, and one after a reference-like
// session (exp_0, exp_1 viewed; hidden_activations, train_loss and nonlinear_rate charts;
// fit_0). Generated from Python by tests/test_panel_state.py, which fails when they are
// stale; regenerate them with
//   FEATURELAB_WRITE_FIXTURES=1 .venv/bin/python -m pytest -q tests/test_panel_state.py
// (or `npm run fixtures`). Never edit them by hand.
const STATES = { "empty-state": emptyState, "reference-state": referenceState };

export function loadState(name) {
  return structuredClone(STATES[name]);
}

export function createFakeModel(initial = {}) {
  const values = { ...initial };
  const handlers = new Map();
  const sent = [];
  const emit = (evt, ...args) => (handlers.get(evt) || []).slice().forEach((cb) => cb(...args));
  return {
    get: (k) => values[k],
    set: (k, v) => { values[k] = v; emit(`change:${k}`, v); },
    save_changes: () => {},
    send: (content, callbacks, buffers) => { sent.push(content); },
    on: (evt, cb) => handlers.set(evt, [...(handlers.get(evt) || []), cb]),
    off: (evt, cb) => handlers.set(evt, (handlers.get(evt) || []).filter((h) => h !== cb)),
    // test-only helpers
    sent,
    actions: () => sent.filter((m) => m.kind === "action"),
    lastAction: () => sent.filter((m) => m.kind === "action").at(-1),
    kernelSends: (msg, buffers = []) => emit("msg:custom", msg, buffers),
    setState: (state) => { values.state = state; emit("change:state", state); },
    listenerCount: (evt) => (handlers.get(evt) || []).length,
  };
}

/** The kernel's reply to the last action: an ack, or an error with a field. */
export function ack(model, msg = model.lastAction(), result = {}) {
  model.kernelSends({ kind: "ack", request: msg.request, result });
}

export function fail(model, field, message, msg = model.lastAction()) {
  model.kernelSends({ kind: "error", request: msg.request, field, message });
}

/** A series reply as the kernel sends it: two buffers (float64 steps, float32 values) per
 *  series, here as DataViews into a larger buffer (as ipywidgets hands them over). */
export function seriesReply(request, metric, layer, series) {
  const buffers = [];
  const out = series.map((s) => {
    if (s.error) return { experiment: s.experiment, shape: [], error: s.error };
    const steps = Float64Array.from(s.steps);
    const values = Float32Array.from(s.values.flat());
    for (const arr of [steps, values]) {
      const padded = new Uint8Array(arr.byteLength + 3);
      padded.set(new Uint8Array(arr.buffer), 3);
      buffers.push(new DataView(padded.buffer, 3, arr.byteLength));
    }
    return { experiment: s.experiment, shape: s.shape || [s.values.length], error: null };
  });
  return [{ kind: "series", request, metric, layer, series: out }, buffers];
}

/** A fake uPlot: keeps the options, data and calls; tests fire its hooks. */
export function createFakePlots() {
  const plots = [];
  const factory = (opts, data, target) => {
    const plot = {
      opts, data, target, calls: [], destroyed: false, width: opts.width,
      select: { left: 0, top: 0, width: 0, height: 0 },
      cursor: { idx: null },
      setData(d, reset) { this.data = d; this.calls.push(["setData", reset]); },
      setScale(key, limits) { this.calls.push(["setScale", key, limits]); },
      setSelect(sel) { this.select = { ...this.select, ...sel }; },
      setSize(size) { this.calls.push(["setSize", size]); },
      posToVal(px) { return px / 2; }, // 2 pixels a step
      destroy() { this.destroyed = true; },
      fire(hook) { (opts.hooks?.[hook] || []).forEach((fn) => fn(this)); },
    };
    plots.push(plot);
    return plot;
  };
  return { plots, factory, live: () => plots.filter((p) => !p.destroyed) };
}

export const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

// A whole panel rendered into the document with fake plots: {model, el, cleanup, $}.
// unmountPanels() (in afterEach) takes every mounted one down again.
const mountedPanels = [];

export function mountPanel(state) {
  setPlotFactory(createFakePlots().factory);
  const model = createFakeModel({ state });
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = widget.render({ model, el });
  const $ = (testid) => el.querySelector(`[data-testid="${testid}"]`);
  const mounted = { model, el, cleanup, $ };
  mountedPanels.push(mounted);
  return mounted;
}

export function unmountPanels() {
  while (mountedPanels.length) mountedPanels.pop().cleanup();
  setPlotFactory(null);
  document.body.textContent = "";
}
