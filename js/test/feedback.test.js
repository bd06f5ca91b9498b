// Feedback while working: a new experiment is selected, a reused run says so (and offers
// to train again), a click that changes nothing sends nothing, and a running experiment
// shows its step, speed and time left.
import { afterEach, describe, expect, it, vi } from "vitest";
import { createProgressTracker, fmtDuration, fmtRate, setClock } from "../src/progress.js";
import { ack, flush, loadState, mountPanel, unmountPanels } from "./fakes.js";

afterEach(() => {
  unmountPanels();
  setClock(null);
});

const mount = mountPanel;
const withSelected = (state, selected) => ({ ...state, view: { ...state.view, selected } });
const click = (el) => el.dispatchEvent(new MouseEvent("click", { bubbles: true }));

describe("progress tracker", () => {
  it("gives steps, a rate over the last seconds and the time left", () => {
    const t = createProgressTracker({ span: 5 });
    t.observe("exp_0", 0, 2000, 10.0);
    expect(t.line("exp_0")).toBe("step 0 of 2,000");
    t.observe("exp_0", 250, 2000, 10.5);
    t.observe("exp_0", 500, 2000, 11.0);
    expect(t.rate("exp_0")).toBeCloseTo(500, 6);
    expect(t.line("exp_0")).toBe("step 500 of 2,000 · 500/s · 3 s left");
    // the same step again (a push without progress) keeps the rate of real progress
    t.observe("exp_0", 500, 2000, 11.2);
    expect(t.rate("exp_0")).toBeCloseTo(500, 6);
    // older samples fall out of the window: the rate follows a slowdown
    for (let s = 1; s <= 10; s += 1) t.observe("exp_0", 500 + 10 * s, 2000, 11 + s);
    expect(t.rate("exp_0")).toBeCloseTo(10, 6);
    expect(t.line("exp_0")).toBe("step 600 of 2,000 · 10/s · 2 min 20 s left");
    // a new run (fewer steps done) starts over
    t.observe("exp_0", 5, 100, 30);
    expect(t.line("exp_0")).toBe("step 5 of 100");
  });

  it("formats rates and durations for people", () => {
    expect([fmtRate(0.35), fmtRate(42.4), fmtRate(1234), fmtRate(56789), fmtRate(0)])
      .toEqual(["0.35/s", "42/s", "1.2k/s", "57k/s", ""]);
    expect([fmtDuration(4.4), fmtDuration(125), fmtDuration(4800), fmtDuration(-1)])
      .toEqual(["4 s", "2 min 05 s", "1 h 20 min", ""]);
  });

  it("shows a running experiment's step, speed and time left above the table", () => {
    let clock = 100;
    setClock(() => clock);
    const base = loadState("reference-state");
    const running = (done) => ({ ...base, experiments: base.experiments.map((e, i) => (i === 1
      ? { ...e, status: "running", steps_done: done, progress: done / e.config.optimizer.steps } : e)) });
    expect(base.experiments[1].config.optimizer.steps).toBe(150);
    const { $, model } = mount(running(0));
    expect($("run-progress").hidden).toBe(false);
    clock = 101;
    model.setState(running(50));
    expect($("run-progress").textContent).toBe("exp_1: step 50 of 150 · 50/s · 2 s left");
    expect($("exp-row-exp_1").querySelector(".fl-progress-cell").title).toBe($("run-progress").textContent.slice(7));
    model.setState(base);
    expect($("run-progress").hidden).toBe(true);
  });
});

describe("selection and reuse", () => {
  it("selects the experiment it just created", async () => {
    const { $, model } = mount(loadState("empty-state"));
    $("new-experiment").click();
    $("create").click();
    ack(model, model.lastAction(), { experiment: "exp_0" });
    await flush();
    expect(model.lastAction().action).toEqual({ type: "select_experiments", params: { experiments: ["exp_0"] } });
  });

  it("sends nothing when a click leaves the selection as it is", () => {
    const { $, model } = mount(withSelected(loadState("reference-state"), ["exp_0"]));
    const before = model.actions().length;
    click($("exp-row-exp_0"));
    expect(model.actions().length).toBe(before);
    click($("exp-row-exp_1"));
    expect(model.lastAction().action).toEqual({ type: "select_experiments", params: { experiments: ["exp_1"] } });
  });

  it("says when Run reused a finished run, and trains again on request", async () => {
    const { $, model } = mount(withSelected(loadState("reference-state"), ["exp_0"]));
    expect($("run-notice").hidden).toBe(true);
    $("run").click();
    expect(model.lastAction().action).toEqual({ type: "run", params: { experiment: "exp_0", background: true } });
    ack(model, model.lastAction(), { run: "run_0", reused: true, status: "finished" });
    await flush();
    await flush();
    expect($("run-notice").hidden).toBe(false);
    expect($("run-notice").textContent).toContain("exp_0: reused the finished run run_0");
    $("train-again").click();
    expect(model.lastAction().action).toEqual({ type: "run",
      params: { experiment: "exp_0", background: true, force: true } });
    expect($("run-notice").hidden).toBe(true);
  });
});

describe("the DIY source box", () => {
  it("indents with Tab and outdents with Shift+Tab, Escape then Tab leaves", async () => {
    const { indent } = await import("../src/statistics.js");
    const area = document.createElement("textarea");
    area.value = "def f(t):\nreturn t";
    area.selectionStart = area.selectionEnd = 10; // start of line 2
    indent(area);
    expect(area.value).toBe("def f(t):\n    return t");
    expect(area.selectionStart).toBe(14);
    area.selectionStart = 0;
    area.selectionEnd = area.value.length;
    indent(area); // every selected line
    expect(area.value).toBe("    def f(t):\n        return t");
    indent(area, true);
    expect(area.value).toBe("def f(t):\n    return t");
    const { $ } = mount(loadState("empty-state"));
    const source = $("diy-source");
    source.value = "x";
    source.selectionStart = source.selectionEnd = 0;
    const tab = new KeyboardEvent("keydown", { key: "Tab", bubbles: true, cancelable: true });
    source.dispatchEvent(tab);
    expect(tab.defaultPrevented).toBe(true);
    expect(source.value).toBe("    x");
    source.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    const leave = new KeyboardEvent("keydown", { key: "Tab", bubbles: true, cancelable: true });
    source.dispatchEvent(leave);
    expect(leave.defaultPrevented).toBe(false);
  });
});

describe("the heatmap over steps", () => {
  it("plays the snapshots one after another and stops at the last", async () => {
    vi.useFakeTimers();
    try {
      const state = loadState("reference-state");
      state.view.charts.hidden_activations.method = "heatmap";
      const { $, model, el } = mount(state);
      const ha = el.querySelector('[data-testid="chart-hidden_activations"]');
      const q = (id) => ha.querySelector(`[data-testid="${id}"]`);
      const answer = () => {
        for (const m of model.sent.filter((x) => x.kind === "activations" && !x.answered)) {
          m.answered = true;
          const steps = [0, 10, 20];
          model.kernelSends({ kind: "activations", request: m.request, experiment: m.experiment, layer: m.layer,
            step: m.step, steps, shape: [2, 2] }, [Float32Array.from([1, -1, 0.5, 2]).buffer]);
        }
      };
      answer();
      await vi.advanceTimersByTimeAsync(0);
      expect(q("neuron-order").hidden).toBe(false);
      const asked = () => model.sent.filter((x) => x.kind === "activations").map((x) => x.step);
      const before = asked().length;
      q("play-steps").click();
      expect(q("play-steps").getAttribute("aria-pressed")).toBe("true");
      for (let i = 0; i < 6; i++) {
        answer();
        await vi.advanceTimersByTimeAsync(200);
      }
      answer();
      await vi.advanceTimersByTimeAsync(200);
      expect(asked().slice(before)).toEqual([0, 10, 20]);
      expect(q("play-steps").getAttribute("aria-pressed")).toBe("false"); // stopped at the last
      expect($("step-label").textContent).toBe("step 20");
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("the create form's training knobs", () => {
  it("sends eval_every, an early stop and muon's AdamW lr only when changed", async () => {
    const { stopText } = await import("../src/experiment-form.js");
    expect(stopText({ metric: "test_accuracy", when: "above", value: 0.99, for_steps: 100 }))
      .toBe("test_accuracy > 0.99 for 100");
    expect(stopText({ metric: "train_loss", when: "below", value: 0.01, for_steps: 1 })).toBe("train_loss < 0.01");
    expect(stopText({ metric: "", when: "above", value: 0, for_steps: 1 })).toBe("");
    const state = loadState("reference-state");
    const { $, model } = mount({ ...state, view: { ...state.view, selected: ["exp_0"] } });
    $("new-experiment").click();
    expect($("cfg-stop").value).toBe("");
    expect($("cfg-eval_every").value).toBe("1");
    const type = (input, value) => {
      input.value = value;
      input.dispatchEvent(new Event("input", { bubbles: true }));
    };
    type($("cfg-eval_every"), "50");
    type($("cfg-stop"), "test_loss < 0.5 for 20");
    type($("cfg-optimizer-adamw_lr"), "0.002");
    $("create").click();
    expect(model.lastAction().action).toEqual({ type: "create_experiment", params: {
      based_on: "exp_0", optimizer: { adamw_lr: 0.002 }, eval_every: 50, stop: "test_loss < 0.5 for 20" } });
  });
});

describe("every error at once", () => {
  it("shows each error of a create at its own field", async () => {
    const { $, model } = mount(loadState("empty-state"));
    $("new-experiment").click();
    $("create").click();
    model.kernelSends({ kind: "error", request: model.lastAction().request, field: "model.widths[1]",
      message: "model.widths[1]: got 0", errors: [{ field: "optimizer.lr", message: "optimizer.lr: got 500" },
        { field: "seed", message: "seed: got -1" }] });
    await flush();
    const at = (path) => $(`cfg-${path.replace(/\./g, "-")}`).closest("[data-field]").querySelector(".fl-error").textContent;
    expect(at("model.widths")).toBe("model.widths[1]: got 0");
    expect(at("optimizer.lr")).toBe("optimizer.lr: got 500");
    expect(at("seed")).toBe("seed: got -1");
    expect($("cfg-optimizer-lr").getAttribute("aria-invalid")).toBe("true");
  });
});
