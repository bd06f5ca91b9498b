import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import widget from "../src/widget.js";
import { runControls } from "../src/experiments.js";
import { setPlotFactory } from "../src/plot.js";
import { fmtValue } from "../src/format.js";
import { ack, createFakeModel, createFakePlots, fail, flush, loadState, seriesReply } from "./fakes.js";

const REFERENCE_SOURCE = "def compute_nonlinear_rate(tensor, dim, keepdim=False):\n" +
  "    t = tensor.float()\n    return ((t > 0) * (t < 1)).float().mean(dim=dim, keepdim=keepdim)\n";

let fake;
let mounted;

beforeEach(() => {
  fake = createFakePlots();
  setPlotFactory(fake.factory);
});

afterEach(() => {
  if (mounted) mounted.cleanup();
  mounted = null;
  setPlotFactory(null);
  document.body.textContent = "";
});

function mount(state) {
  const model = createFakeModel({ state: typeof state === "string" ? loadState(state) : state });
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = widget.render({ model, el });
  const $ = (testid, root = el) => root.querySelector(`[data-testid="${testid}"]`);
  const card = (metric) => $(`chart-${metric}`);
  mounted = { model, el, cleanup, $, card };
  return mounted;
}

const withView = (state, view) => ({ ...state, view: { ...state.view, ...view } });
const params = (model) => model.lastAction().action;
const type = (input, value) => {
  input.value = value;
  input.dispatchEvent(new Event("input", { bubbles: true }));
  input.dispatchEvent(new Event("change", { bubbles: true }));
};

/** Answers every series request not answered yet, with `make(experiment, metric, layer)`. */
function answerSeries(model, make) {
  for (const msg of model.sent.filter((m) => m.kind === "series" && !m.answered)) {
    msg.answered = true;
    const series = msg.experiments.map((e) => ({ experiment: e, ...make(e, msg.metric, msg.layer) }));
    const [reply, buffers] = seriesReply(msg.request, msg.metric, msg.layer, series);
    model.kernelSends(reply, buffers);
  }
}
const line = (n) => ({ steps: [...Array(n).keys()], values: [...Array(n).keys()].map((i) => 1 / (i + 1)) });

describe("experiments", () => {
  it("renders a row per experiment with status, progress and final losses", () => {
    const { $, model } = mount("reference-state");
    const row = $("exp-row-exp_0");
    expect(row).not.toBeNull();
    expect($("exp-row-exp_1")).not.toBeNull();
    const cells = [...row.cells].map((c) => c.textContent);
    const { final } = model.get("state").experiments[0];
    // knobs: the config values that differ between the reference session's experiments
    expect(cells.slice(1)).toEqual(["exp_0", "", "MLP 10, 100, 100, 1, relu", cells[4], "finished",
      "100%", fmtValue(final.train_loss), fmtValue(final.test_loss)]);
    expect(cells[4]).toMatch(/=/);
    expect(cells.slice(7).every((c) => /^\d/.test(c))).toBe(true);
    // the colours of the state (featurelab/ui/panel_state.py: #3b82f6, #f97316)
    expect(row.querySelector(".fl-swatch").style.background).toBe("rgb(59, 130, 246)");
    expect($("exp-row-exp_1").querySelector(".fl-swatch").style.background).toBe("rgb(249, 115, 22)");
    expect(row.getAttribute("aria-selected")).toBe("true");
    expect(row.tabIndex).toBe(0);
  });

  it("selects on click, adds with shift/ctrl-click, and on Enter", () => {
    const { model, $ } = mount(withView(loadState("reference-state"), { selected: ["exp_0"] }));
    $("exp-row-exp_1").dispatchEvent(new MouseEvent("click", { bubbles: true }));
    expect(params(model)).toEqual({ type: "select_experiments", params: { experiments: ["exp_1"] } });
    $("exp-row-exp_1").dispatchEvent(new MouseEvent("click", { bubbles: true, shiftKey: true }));
    expect(params(model)).toEqual({ type: "select_experiments", params: { experiments: ["exp_0", "exp_1"] } });
    $("exp-row-exp_0").dispatchEvent(new MouseEvent("click", { bubbles: true, ctrlKey: true }));
    expect(params(model)).toEqual({ type: "select_experiments", params: { experiments: [] } });
    $("exp-row-exp_1").dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    expect(params(model)).toEqual({ type: "select_experiments", params: { experiments: ["exp_1"] } });
  });

  it("runs the selection in the background and cancels a running experiment", () => {
    const state = withView(loadState("reference-state"), { selected: ["exp_0"] });
    state.experiments[0].status = "new";
    const { model, $ } = mount(state);
    expect($("cancel").disabled).toBe(true);
    $("run").click();
    expect(model.lastAction()).toEqual({ kind: "action", request: expect.any(String),
      action: { type: "run", params: { experiment: "exp_0", background: true } } });
    const running = structuredClone(state);
    Object.assign(running.experiments[0], { status: "running", progress: 0.25, steps_done: 500 });
    model.setState(running);
    expect($("run").disabled).toBe(true);
    expect($("exp-row-exp_0").textContent).toContain("25%");
    $("cancel").click();
    expect(params(model)).toEqual({ type: "cancel", params: { experiment: "exp_0" } });
  });

  it("offers to continue a cancelled run from its checkpoint, or to start over", () => {
    const state = withView(loadState("reference-state"), { selected: ["exp_0"] });
    Object.assign(state.experiments[0], { status: "cancelled", progress: 0.617, steps_done: 1234,
      checkpoint_step: 1234, runs: [{ id: "run-a", status: "cancelled", steps_done: 1234 }] });
    const { model, $ } = mount(state);
    expect($("run").hidden).toBe(true);
    expect($("continue").hidden).toBe(false);
    expect($("continue").textContent).toBe("Continue from step 1234");
    expect($("continue").className).toBe($("run").className); // the primary look of Run
    expect($("start-over").hidden).toBe(false);
    expect($("start-over").textContent).toBe("Start over");
    $("continue").click();
    expect(params(model)).toEqual({ type: "run",
      params: { experiment: "exp_0", background: true, resume: true } });
    $("start-over").click();
    expect(params(model)).toEqual({ type: "run",
      params: { experiment: "exp_0", background: true, force: true } });
    // continued: finished again, and the cancelled run is still listed
    const done = structuredClone(state);
    Object.assign(done.experiments[0], { status: "finished", progress: 1, steps_done: 2000,
      checkpoint_step: null, runs: [...state.experiments[0].runs,
        { id: "run-b", status: "finished", steps_done: 2000 }] });
    model.setState(done);
    expect($("run").hidden).toBe(false);
    expect($("continue").hidden).toBe(true);
    expect($("start-over").hidden).toBe(true);
    const status = $("exp-row-exp_0").querySelector(".fl-status");
    expect(status.title).toBe("Runs, oldest first:\nrun-a: cancelled, 1234 steps\n" +
      "run-b: finished, 2000 steps");
  });

  it("runs plainly what has no checkpoint, and splits a mixed selection", () => {
    const state = withView(loadState("reference-state"), { selected: ["exp_0", "exp_1"] });
    Object.assign(state.experiments[0], { status: "cancelled", checkpoint_step: 70 });
    Object.assign(state.experiments[1], { status: "cancelled", checkpoint_step: null });
    const { model, $ } = mount(state);
    expect($("run").hidden).toBe(false);
    expect($("run").textContent).toBe("Run");
    expect($("continue").textContent).toBe("Continue from step 70");
    $("run").click(); // only exp_1: exp_0 is continued or started over by name
    expect(model.actions().map((m) => m.action.params)).toEqual([
      { experiment: "exp_1", background: true }]);
    expect(runControls([{ id: "a", status: "cancelled", checkpoint_step: 5 },
      { id: "b", status: "cancelled", checkpoint_step: 9 }, { id: "c", status: "running" }]))
      .toEqual({
        run: { ids: [], hidden: true, label: "Run" },
        resume: { ids: ["a", "b"], hidden: false, label: "Continue (2)" },
        restart: { ids: ["a", "b"], hidden: false, label: "Start over (2)" },
      });
  });

  it("shows an error reply next to the toolbar, in plain text", async () => {
    const state = withView(loadState("reference-state"), { selected: ["exp_0"] });
    state.experiments[0].status = "new";
    const { model, $ } = mount(state);
    $("run").click();
    fail(model, null, "exp_0 is already running; lab.cancel('exp_0') stops it");
    await flush();
    expect($("experiments-error").textContent).toBe("exp_0 is already running; lab.cancel('exp_0') stops it");
  });
});

describe("the New experiment form", () => {
  it("creates the reference experiment from the defaults when nothing is selected", async () => {
    const { model, $ } = mount("empty-state");
    expect($("experiment-form").hidden).toBe(true);
    $("new-experiment").click();
    expect($("experiment-form").hidden).toBe(false);
    expect($("cfg-model-widths").value).toBe("10, 100, 100, 1");
    expect($("cfg-optimizer-lr").value).toBe("0.001");
    $("create").click();
    expect(params(model)).toEqual({ type: "create_experiment", params: {
      model: { kind: "mlp", widths: [10, 100, 100, 1], activation: "relu" },
      data: { task: "sin2", dim: 10, freq: 10, n_train: 500, n_test: 200 },
      optimizer: { name: "adam", lr: 0.001, steps: 2000 },
      loss: "mse", observables: ["train_loss", "test_loss", "weight_l2_norm", "hidden_activations"], seed: 0 } });
    ack(model, undefined, { experiment: "exp_0" });
    await flush();
    expect($("experiment-form").hidden).toBe(true);
  });

  it("creates experiment 1 = experiment 0 plus the observable nonlinear_rate", () => {
    const { model, $ } = mount(withView(loadState("reference-state"), { selected: ["exp_0"] }));
    $("new-experiment").click();
    expect($("based-on").checked).toBe(true);
    expect($("obs-hidden_activations").checked).toBe(true);
    expect($("obs-nonlinear_rate").checked).toBe(false);
    $("obs-nonlinear_rate").click();
    $("create").click();
    expect(params(model)).toEqual({ type: "create_experiment",
      params: { based_on: "exp_0", observables_add: ["nonlinear_rate"] } });
  });

  it("shows an error at the field it names and keeps what was typed", async () => {
    const { model, $ } = mount("empty-state");
    $("new-experiment").click();
    type($("cfg-model-widths"), "10, abc, 100, 1");
    type($("cfg-optimizer-lr"), "1e-2");
    $("create").click();
    expect(params(model).params.model.widths).toEqual([10, "abc", 100, 1]);
    const message = "model.widths[1]: got 'abc'; allowed: an integer from 1 to 65536";
    fail(model, "model.widths[1]", message);
    await flush();
    const wrapper = $("cfg-model-widths").closest("[data-field]");
    expect(wrapper.querySelector(".fl-error").textContent).toBe(message);
    expect($("cfg-model-widths").getAttribute("aria-invalid")).toBe("true");
    expect($("cfg-model-widths").value).toBe("10, abc, 100, 1");
    expect($("cfg-optimizer-lr").value).toBe("1e-2");
    expect($("experiment-form").hidden).toBe(false);

    type($("cfg-model-widths"), "10, 100, 1");
    $("create").click();
    fail(model, "optimizer.lr", "optimizer.lr: got 500; allowed: a number in (0, 100]");
    await flush();
    expect(wrapper.querySelector(".fl-error").textContent).toBe("");
    expect($("cfg-optimizer-lr").closest("[data-field]").querySelector(".fl-error").textContent)
      .toBe("optimizer.lr: got 500; allowed: a number in (0, 100]");
    fail(model, null, "something else");
  });
});

describe("rename, tag and delete", () => {
  const one = () => withView(loadState("reference-state"), { selected: ["exp_1"] });

  it("shows the bar for one selected experiment, filled from it", () => {
    const { $ } = mount(one());
    expect($("experiment-edit").hidden).toBe(false);
    expect($("edit-name").value).toBe("");
    const { $: $2 } = mount(withView(loadState("reference-state"), { selected: ["exp_0", "exp_1"] }));
    expect($2("experiment-edit").hidden).toBe(true);
  });

  it("renames, then changes tags as one add/remove action", async () => {
    const { model, $ } = mount(one());
    type($("edit-name"), "  wide net ");
    type($("edit-tags"), "baseline,  seed  0 , baseline");
    $("edit-save").click();
    expect(params(model)).toEqual({ type: "rename_experiment", params: { experiment: "exp_1", name: "wide net" } });
    ack(model);
    await flush();
    expect(params(model)).toEqual({ type: "tag_experiments",
      params: { experiments: ["exp_1"], add: ["baseline", "seed 0"], remove: null } });
  });

  it("asks once before deleting, and shows tags in the table and the filter", async () => {
    const state = one();
    state.experiments = state.experiments.map((e) => (e.id === "exp_0" ? { ...e, tags: ["baseline"] } : e));
    const { model, $, el } = mount(state);
    $("edit-delete").click();
    expect(model.lastAction()).toBeUndefined();
    expect($("edit-delete").textContent).toBe("Delete exp_1? Click again");
    $("edit-delete").click();
    expect(params(model)).toEqual({ type: "delete_experiment", params: { experiment: "exp_1" } });
    expect($("exp-row-exp_0").querySelector(".fl-tag").textContent).toBe("baseline");
    type($("filter-experiments"), "basel");
    expect($("exp-row-exp_1").hidden).toBe(true);
    expect($("exp-row-exp_0").hidden).toBe(false);
    expect(el.querySelectorAll(".fl-tag")).toHaveLength(1);
  });
});

describe("statistics", () => {
  it("defines a DIY statistic on active_rate from a template that follows the name", () => {
    const { model, $ } = mount("empty-state");
    expect($("diy-source").value).toContain("def compute_NAME(tensor, dim, keepdim=False):");
    type($("diy-name"), "nonlinear_rate");
    expect($("diy-source").value).toContain("def compute_nonlinear_rate(tensor, dim, keepdim=False):");
    expect([...$("diy-on").options].map((o) => o.value)).toEqual(["activations", "weights", "active_rate", "mean", "std",
      "max", "row_norm", "fourier_power"]);
    expect([...$("diy-on").options].at(-1).textContent).toBe("fourier_power (one value per matrix)");
    type($("diy-on"), "active_rate");
    type($("diy-source"), REFERENCE_SOURCE);
    $("diy-submit").click();
    expect(params(model)).toEqual({ type: "define_statistic",
      params: { name: "nonlinear_rate", source: REFERENCE_SOURCE, on: "active_rate" } });
  });

  it("marks a statistic from elsewhere as disabled, with its source to read", () => {
    const state = loadState("reference-state");
    const diy = state.statistics.find((s) => !s.builtin);
    const { el } = mount({ ...state, statistics: [...state.statistics.filter((s) => s !== diy),
      { ...diy, trusted: false }] });
    const marked = el.querySelector(".fl-untrusted");
    expect(marked.textContent).toBe("DIY, disabled (not signed by you)");
    expect(marked.title).toContain("lab.trust()");
    expect(marked.title).toContain(diy.source);
  });

  it("shows errors inline and keeps the source", async () => {
    const { model, $ } = mount("empty-state");
    type($("diy-name"), "max");
    type($("diy-source"), "def f(t, dim, keepdim=False):\n    return t.sum(dim)\n");
    $("diy-submit").click();
    fail(model, "statistic.name", "statistic.name: got 'max'; allowed: a name that is not a built-in statistic");
    await flush();
    expect($("diy-name").closest("[data-field]").querySelector(".fl-error").textContent).toMatch(/not a built-in/);
    $("diy-submit").click();
    fail(model, null, "statistic 'max': source does not run: SyntaxError: invalid syntax");
    await flush();
    expect($("diy-error").textContent).toMatch(/SyntaxError/);
    expect($("diy-source").value).toBe("def f(t, dim, keepdim=False):\n    return t.sum(dim)\n");
    expect($("diy-name").value).toBe("max");
  });
});

describe("results and charts", () => {
  it("views results for the selection and lists metrics once", () => {
    const { model, $, el } = mount(withView(loadState("reference-state"), { selected: ["exp_1"] }));
    $("view-results").click();
    expect(params(model)).toEqual({ type: "view_results", params: { experiments: ["exp_1"] } });
    const metrics = [...$("metric-list").children].map((b) => b.dataset.testid);
    expect(metrics).toEqual(["metric-train_loss", "metric-test_loss", "metric-weight_l2_norm",
      "metric-hidden_activations", "metric-nonlinear_rate"]);
    $("metric-test_loss").click();
    expect(params(model)).toEqual({ type: "open_chart", params: { metric: "test_loss" } });
    expect(el.querySelectorAll(".fl-card").length).toBe(3);
  });

  it("hidden_activations: layer, enlarge, method and add stat each send one action", () => {
    const { model, $, card } = mount("reference-state");
    const ha = card("hidden_activations");
    const layer = $("layer-select", ha);
    expect(layer.value).toBe("layers.1.pre");
    expect(layer.selectedOptions[0].textContent).toBe("Layer 1 pre (500 x 100)");
    type(layer, "layers.0.pre");
    expect(params(model)).toEqual({ type: "choose_layer", params: { metric: "hidden_activations", layer: "layers.0.pre" } });
    $("enlarge", ha).click();
    expect(params(model)).toEqual({ type: "enlarge_chart", params: { metric: "hidden_activations", enlarged: false } });
    expect($("method-select", ha).value).toBe("neuron_stats");
    type($("method-select", ha), "heatmap");
    expect(params(model)).toEqual({ type: "choose_method", params: { metric: "hidden_activations", method: "heatmap" } });
    const add = $("add-stat-select", ha);
    expect([...add.options].map((o) => o.value)).toContain("nonlinear_rate");
    type(add, "std");
    $("add-stat", ha).click();
    expect(params(model)).toEqual({ type: "add_neuron_stat", params: { stat: "std", layer: "layers.1.pre" } });
    $("close-chart", ha).click();
    expect(params(model)).toEqual({ type: "hide_chart", params: { metric: "hidden_activations" } });
  });

  it("a chart without a layer asks for one before plotting", () => {
    const state = loadState("reference-state");
    state.view.charts.nonlinear_rate.layer = null;
    const { model, $, card } = mount(state);
    const nr = card("nonlinear_rate");
    expect($("layer-select", nr).value).toBe("");
    expect(nr.querySelector(".fl-hint").textContent).toMatch(/Choose a layer/);
    expect(model.sent.some((m) => m.kind === "series" && m.metric === "nonlinear_rate")).toBe(false);
    type($("layer-select", nr), "layers.1.pre");
    expect(params(model)).toEqual({ type: "choose_layer", params: { metric: "nonlinear_rate", layer: "layers.1.pre" } });
  });

  it("axes, smoothing, zoom inputs and reset send one action each", async () => {
    const { model, $, card } = mount("reference-state");
    const tl = card("train_loss");
    expect($("log-y", tl).getAttribute("aria-pressed")).toBe("true");
    $("log-y", tl).click();
    expect(params(model)).toEqual({ type: "set_axes", params: { metric: "train_loss", log_y: false } });
    $("log-x", tl).click();
    expect(params(model)).toEqual({ type: "set_axes", params: { metric: "train_loss", log_x: true } });
    type($("smoothing", tl), "10");
    expect(params(model)).toEqual({ type: "set_smoothing", params: { metric: "train_loss", window: 10 } });

    const nr = card("nonlinear_rate");
    expect($("zoom-x-lo", nr).value).toBe("0");
    expect($("zoom-x-hi", nr).value).toBe("100");
    type($("zoom-x-hi", nr), "50");
    $("zoom-apply", nr).click();
    expect(params(model)).toEqual({ type: "zoom", params: { metric: "nonlinear_rate", x_range: [0, 50] } });
    type($("zoom-y-lo", nr), "0.1");
    type($("zoom-y-hi", nr), "1");
    $("zoom-apply", nr).click();
    expect(params(model)).toEqual({ type: "zoom", params: { metric: "nonlinear_rate", x_range: [0, 50], y_range: [0.1, 1] } });
    fail(model, "y_range", "y_range: got [0.1, 1]; allowed: nope");
    await flush();
    expect(nr.querySelector('[data-testid="zoom-error"]').textContent).toBe("y_range: got [0.1, 1]; allowed: nope");
    expect($("zoom-y-lo", nr).getAttribute("aria-invalid")).toBe("true");
    $("zoom-reset", nr).click();
    expect(params(model)).toEqual({ type: "zoom", params: { metric: "nonlinear_rate", x_range: null } });
  });

  it("requests series, draws them with uPlot, and reports a drag as a zoom action", async () => {
    const { model, card } = mount("reference-state");
    const requests = model.sent.filter((m) => m.kind === "series").map(({ experiments, metric, layer }) => ({ experiments, metric, layer }));
    expect(requests).toEqual([
      { experiments: ["exp_0", "exp_1"], metric: "active_rate", layer: "layers.1.pre" },
      { experiments: ["exp_0", "exp_1"], metric: "train_loss", layer: null },
      { experiments: ["exp_0", "exp_1"], metric: "nonlinear_rate", layer: "layers.1.pre" },
    ]);
    answerSeries(model, (e, metric) => (metric === "active_rate"
      ? { steps: [0, 1, 2], values: [[0, 1, 0.5], [0, 1, 0.6], [0, 1, 0.7]], shape: [3, 3] }
      : line(200)));
    await flush();
    expect(fake.live().length).toBe(3);
    const nrPlot = fake.live().find((p) => card("nonlinear_rate").contains(p.target));
    // two experiments and the four fitted curves of fit_0
    expect(nrPlot.data.length).toBe(1 + 2 + 4);
    expect(nrPlot.opts.series.slice(3).every((s) => s.dash)).toBe(true);
    expect(nrPlot.calls).toContainEqual(["setScale", "x", { min: 0, max: 100 }]);
    // a key for each fitted family under the chart, and a y range of the data alone
    const keys = [...card("nonlinear_rate").querySelectorAll(".fl-key-fit")].map((k) => k.textContent.trim());
    expect(keys).toEqual(["Sigmoid fit", "Exponential fit", "Log-power fit", "Power fit"]); // by R^2
    expect(nrPlot.opts.scales.y.range(nrPlot, -5, 50)).toEqual(expect.any(Array));
    expect(nrPlot.opts.scales.y.range(nrPlot, -5, 50)[1]).toBeLessThan(2);
    const haPlot = fake.live().find((p) => card("hidden_activations").contains(p.target));
    expect(haPlot.data.length).toBe(1 + 2 * (3 + 1)); // per experiment: 3 neurons and the mean
    const tlPlot = fake.live().find((p) => card("train_loss").contains(p.target));
    expect(tlPlot.opts.scales.y.distr).toBe(3); // log y

    nrPlot.select = { left: 21, top: 0, width: 180, height: 100 };
    nrPlot.fire("setSelect");
    expect(params(model)).toEqual({ type: "zoom", params: { metric: "nonlinear_rate", x_range: [11, 101] } });
  });

  it("shows an experiment's series error next to the chart", async () => {
    const { model, card } = mount("reference-state");
    answerSeries(model, (e) => (e === "exp_0" ? { error: "exp_0 has not been run; lab.run('exp_0')" } : line(10)));
    await flush();
    expect(card("train_loss").querySelector(".fl-note").textContent).toBe("exp_0: exp_0 has not been run; lab.run('exp_0')");
  });

  it("re-requests series while an experiment runs, and redraws without asking when only the view changes", async () => {
    const state = loadState("reference-state");
    const { model } = mount(state);
    answerSeries(model, () => line(50));
    await flush();
    const count = () => model.sent.filter((m) => m.kind === "series").length;
    const before = count();
    model.setState(structuredClone(state));
    expect(count()).toBe(before);
    const running = structuredClone(state);
    Object.assign(running.experiments[1], { status: "running", steps_done: 700, progress: 0.35 });
    model.setState(running);
    expect(count()).toBe(before + 3);
    answerSeries(model, () => line(60));
    await flush();
    const smoothed = structuredClone(running);
    smoothed.view.charts.train_loss.smoothing = 5;
    model.setState(smoothed);
    expect(count()).toBe(before + 3);
    const tlPlot = fake.live().find((p) => p.opts.series.some((s) => s.label === "exp_0 (raw)"));
    expect(tlPlot).toBeDefined();
  });

  it("setData redraws 10 series x 2000 points quickly", async () => {
    const state = loadState("reference-state");
    state.experiments = Array.from({ length: 10 }, (_, i) => ({ ...structuredClone(state.experiments[0]), id: `exp_${i}` }));
    state.view.viewed = state.experiments.map((e) => e.id);
    state.view.charts = { train_loss: state.view.charts.train_loss };
    const { model } = mount(state);
    answerSeries(model, () => line(2000));
    await flush();
    const [plot] = fake.live();
    expect(plot.data.length).toBe(11);
    expect(plot.data[0].length).toBe(2000);
    const t0 = performance.now();
    const again = structuredClone(state);
    again.view.charts.train_loss.x_range = [0, 100];
    model.setState(again);
    expect(performance.now() - t0).toBeLessThan(500); // jsdom; the browser bench is the real check
    expect(plot.calls.filter((c) => c[0] === "setData").length).toBe(1);
  });
});

describe("fits", () => {
  it("fits the chart's zoom range with the default families and shows the table", async () => {
    const { model, $, card } = mount("reference-state");
    const nr = card("nonlinear_rate");
    expect($("fit-x-lo", nr).value).toBe("0");
    expect($("fit-x-hi", nr).value).toBe("100");
    expect($("fit-experiment", nr).value).toBe("exp_1");
    expect(["sigmoid", "exponential", "power", "log_power", "linear"].map((f) => $(`fit-family-${f}`, nr).checked))
      .toEqual([true, true, true, true, false]);
    $("fit", nr).click();
    expect(params(model)).toEqual({ type: "fit", params: { experiment: "exp_1", metric: "nonlinear_rate",
      layer: "layers.1.pre", x_range: [0, 100] } });
    const table = $("fit-table", nr);
    expect([...table.querySelectorAll("tbody tr")].map((r) => r.dataset.family)[0]).toBe("sigmoid");
    ack(model, model.lastAction());
    await flush();
    $("hide-fits", nr).click();
    expect(params(model)).toEqual({ type: "show_fits", params: { metric: "nonlinear_rate", visible: false } });
    $("fit-family-linear", nr).click();
    $("fit", nr).click();
    expect(params(model).params.families).toEqual(["sigmoid", "exponential", "power", "log_power", "linear"]);
    fail(model, "families", "families: got 'x'; allowed: ...");
    await flush();
    expect($("fit-error", nr).textContent).toBe("families: got 'x'; allowed: ...");
  });

  it("shows 'Show fits' when they are hidden", () => {
    const state = loadState("reference-state");
    state.view.charts.nonlinear_rate.fits_visible = false;
    const { model, $, card } = mount(state);
    $("show-fits", card("nonlinear_rate")).click();
    expect(params(model)).toEqual({ type: "show_fits", params: { metric: "nonlinear_rate", visible: true } });
  });
});

describe("code", () => {
  it("lists the recorded cells and copies them", async () => {
    const writeText = vi.fn(() => Promise.resolve());
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    const state = loadState("reference-state");
    const { $ } = mount(state);
    const cells = $("code-cells").querySelectorAll("li");
    expect(cells.length).toBe(state.cells.length);
    expect(cells[0].querySelector("code").textContent).toBe(state.cells[0].code);
    $("copy-cell-0").click();
    await flush();
    expect(writeText).toHaveBeenCalledWith(state.cells[0].code);
    $("copy-code").click();
    await flush();
    expect(writeText.mock.calls[1][0]).toContain("lab.fit('exp_1', 'nonlinear_rate'");
  });
});

describe("cleanup", () => {
  it("removes its listeners, its plots and its elements", async () => {
    const { model, el, cleanup } = mount("reference-state");
    answerSeries(model, () => line(10));
    await flush();
    expect(fake.live().length).toBe(3);
    expect(model.listenerCount("change:state")).toBe(1);
    expect(model.listenerCount("msg:custom")).toBe(1);
    cleanup();
    mounted = null;
    expect(model.listenerCount("change:state")).toBe(0);
    expect(model.listenerCount("msg:custom")).toBe(0);
    expect(fake.live().length).toBe(0);
    expect(el.children.length).toBe(0);
  });
});

describe("live updates", () => {
  it("keep what the person typed and where the focus is", () => {
    const state = withView(loadState("reference-state"), { selected: ["exp_0"] });
    const { model, $, card } = mount(state);
    const nr = card("nonlinear_rate");
    type($("zoom-x-hi", nr), "42");
    $("new-experiment").click();
    type($("cfg-optimizer-lr"), "0.5");
    $("obs-nonlinear_rate").focus();
    const running = structuredClone(state);
    Object.assign(running.experiments[1], { status: "running", steps_done: 10, progress: 0.005 });
    model.setState(running);
    running.experiments[1].steps_done = 20;
    model.setState(structuredClone(running));
    expect($("zoom-x-hi", nr).value).toBe("42");
    expect($("cfg-optimizer-lr").value).toBe("0.5");
    expect(document.activeElement).toBe($("obs-nonlinear_rate"));
    // a zoom that did change in the state is shown
    const zoomed = structuredClone(running);
    zoomed.view.charts.nonlinear_rate.x_range = [0, 50];
    model.setState(zoomed);
    expect($("zoom-x-hi", nr).value).toBe("50");
  });
});

describe("cells notice", () => {
  it("appears when no front end can insert cells, and stays dismissed", () => {
    const model = createFakeModel({ state: loadState("empty-state"), cells: "unknown" });
    const el = document.createElement("div");
    const cleanup = widget.render({ model, el });
    const notice = el.querySelector('[data-testid="cells-notice"]');
    expect(notice.hidden).toBe(true);
    model.set("cells", "none");
    expect(notice.hidden).toBe(false);
    expect(notice.textContent).toContain("lab.to_notebook(path)");
    notice.querySelector('[data-testid="cells-notice-close"]').click();
    expect(notice.hidden).toBe(true);
    model.set("cells", "unknown");
    model.set("cells", "none");
    expect(notice.hidden).toBe(true);
    model.set("cells", "extension");
    expect(notice.hidden).toBe(true);
    cleanup();
  });

  it("stays hidden where the extension answered", () => {
    const model = createFakeModel({ state: loadState("empty-state"), cells: "extension" });
    const el = document.createElement("div");
    widget.render({ model, el });
    expect(el.querySelector('[data-testid="cells-notice"]').hidden).toBe(true);
  });
});
