import { afterEach, beforeEach, describe, expect, it } from "vitest";
import widget from "../src/widget.js";
import { explorationPlot, summaryText } from "../src/explorations.js";
import { setPlotFactory } from "../src/plot.js";
import { createFakeModel, createFakePlots, loadState } from "./fakes.js";

const EXPLORATION = {
  id: "explore_0", name: "lr", base: "exp_0", metric: "test_loss", goal: "min", rail: true,
  iterations: [
    { iteration: 1, changes: "optimizer.lr=0.003", value: 0.5, decision: "discard", best: 0.4, repeat: false },
    { iteration: 2, changes: "optimizer.lr=0.03", value: 0.3, decision: "keep", best: 0.3, repeat: false },
    { iteration: 3, changes: "seed=1", value: null, decision: "failed", best: 0.3, repeat: false },
  ],
  coverage: [{ knob: "optimizer.lr", tried: 2, values: 3 }, { knob: "seed", tried: 1, values: 4 }],
  knob_coverage: 1, pair_coverage: 3 / 7, repeat_rate: 0, recent_repeat_rate: 0, keeps: 1,
  mean_repeat_lag: null, refused: 2, keep_rate: 0.5, time_to_first_keep: 2, time_to_best_keep: 2,
  longest_plateau: 1, best: 0.3, best_experiment: "exp_2",
};

let fake;
let cleanup;
beforeEach(() => {
  fake = createFakePlots();
  setPlotFactory(fake.factory);
});
afterEach(() => {
  if (cleanup) cleanup();
  cleanup = null;
  setPlotFactory(null);
  document.body.textContent = "";
});

describe("explorations", () => {
  it("says coverage, repeats, keeps, plateau and the best in one line", () => {
    expect(summaryText(EXPLORATION)).toBe("3 iterations · knobs 100% · pairs 43% · repeats 0% (last 10: 0%)"
      + " · 2 refused · 1 kept (50%; first #2, best #2) · longest plateau 1 · best test_loss 0.3 (exp_2)");
  });

  it("plots each iteration's value and the best so far against the iteration", () => {
    const built = explorationPlot(EXPLORATION);
    expect(built.data).toEqual([[1, 2, 3], [0.5, 0.3, null], [0.4, 0.3, 0.3]]);
    expect(built.specs.map((s) => s.label)).toEqual(["test_loss", "best so far"]);
  });

  it("shows a section per exploration with coverage bars, hidden without any", () => {
    const state = loadState("reference-state");
    const model = createFakeModel({ state: { ...state, explorations: [EXPLORATION] } });
    const el = document.createElement("div");
    document.body.append(el);
    cleanup = widget.render({ model, el });
    const $ = (id) => el.querySelector(`[data-testid="${id}"]`);
    expect($("explorations-section").hidden).toBe(false);
    expect($("exploration-summary-explore_0").textContent).toContain("1 kept");
    const bars = $("exploration-coverage-explore_0").querySelectorAll("[role=progressbar]");
    expect([...bars].map((b) => b.getAttribute("aria-valuenow"))).toEqual(["67", "25"]);
    model.setState({ ...state, explorations: [] });
    expect($("explorations-section").hidden).toBe(true);
  });
});
