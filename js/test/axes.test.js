// Readable axes: log ticks at labelled decades in one notation, and a y range that fitted
// curves never stretch; the fits have a key under the chart.
import { describe, expect, it } from "vitest";
import { dataRange, logTickLabels } from "../src/plot.js";

const decades = (lo, hi) => Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i));

describe("log axis labels", () => {
  it("uses plain numbers when every label is between 0.01 and 1000", () => {
    expect(logTickLabels(decades(-2, 3))).toEqual(["0.01", "0.1", "1", "10", "100", "1000"]);
    expect(logTickLabels([1, 2, 5, 10, 20, 50, 100])).toEqual(["1", null, null, "10", null, null, "100"]);
  });

  it("uses powers of ten for all labels once one is outside, never mixing notations", () => {
    const labels = logTickLabels(decades(-5, -1), 6);
    expect(labels).toEqual(["10⁻⁵", "10⁻⁴", "10⁻³", "10⁻²", "10⁻¹"]);
    expect(logTickLabels([100, 1000, 10000], 6)).toEqual(["10²", "10³", "10⁴"]);
  });

  it("labels every k-th decade, on multiples of k, when there are too many", () => {
    // 100 .. 1e-12: 15 decades on an axis with room for 6 labels -> every 3rd
    const labels = logTickLabels(decades(-12, 2), 6);
    expect(labels.filter(Boolean)).toEqual(["10⁻¹²", "10⁻⁹", "10⁻⁶", "10⁻³", "10⁰"]);
    expect(labels.filter(Boolean).length).toBeLessThanOrEqual(6);
    // zooming keeps the labels it had (multiples of 3), not a shifted set
    expect(logTickLabels(decades(-10, 2), 6).filter(Boolean)).toEqual(["10⁻⁹", "10⁻⁶", "10⁻³", "10⁰"]);
  });
});

describe("y range of the data", () => {
  const specs = [{ kind: "experiment" }, { kind: "fit" }];
  it("leaves fitted curves out", () => {
    const data = [[0, 1, 2, 3], [0.2, 0.4, 0.6, 0.8], [0.1, 0.7, 1.3, 1.5]];
    const [lo, hi] = dataRange(data, specs, false);
    expect(lo).toBeLessThanOrEqual(0.2);
    expect(hi).toBeGreaterThanOrEqual(0.8);
    expect(hi).toBeLessThan(1.1); // not stretched to the fit's 1.5
  });

  it("on a log axis reads positive values only, and is null without data", () => {
    const data = [[0, 1, 2], [0, 1e-3, 10], [1e-9, 1e-9, 1e-9]];
    const [lo, hi] = dataRange(data, specs, true);
    expect(lo).toBeLessThanOrEqual(1e-3);
    expect(lo).toBeGreaterThan(1e-6);
    expect(hi).toBeGreaterThanOrEqual(10);
    expect(dataRange([[0], [null], [1]], specs, false)).toBeNull();
  });
});

describe("chart grid", () => {
  it("spans a card over its row when it would be alone in it", async () => {
    const { wideCards } = await import("../src/results.js");
    // cards: a, b (half), C (fits: whole row), d (half, alone), E (enlarged)
    expect(wideCards([false, false, true, false, true], 2)).toEqual([false, false, true, true, true]);
    expect(wideCards([false, false, false], 2)).toEqual([false, false, true]);
    expect(wideCards([false, false, false, false], 2)).toEqual([false, false, false, false]);
    expect(wideCards([false], 2)).toEqual([true]);
    expect(wideCards([false, false], 1)).toEqual([true, true]);
  });
});

describe("weight statistics in the panel", () => {
  it("offer weight points in the layer picker, and say what their values are", async () => {
    const { layerOptions, statisticBase } = await import("../src/activations.js");
    const { valuesText } = await import("../src/statistics.js");
    const state = {
      experiments: [{ id: "exp_0", point_labels: { "layers.0.pre": "Layer 0 pre (64 x 24)" },
        weight_labels: { "embed.weight": "Embedding (97 x 128)", "layers.1.weight": "Layer 1 weight (24 x 24)" } }],
      statistics: [{ name: "fourier_power", base: "weights", level: 1 }, { name: "active_rate", base: "activations", level: 1 }],
    };
    expect(statisticBase(state, "fourier_power")).toBe("weights");
    expect(statisticBase(state, "train_loss")).toBe("activations");
    expect(layerOptions(state, [], "weights").map((o) => o.value)).toEqual(["embed.weight", "layers.1.weight"]);
    expect(layerOptions(state, []).map((o) => o.value)).toEqual(["layers.0.pre"]);
    expect(valuesText({ base: "weights", level: 1 })).toBe("per row (weights)");
    expect(valuesText({ base: "weights", level: 2 })).toBe("per matrix");
    expect(valuesText({ base: "activations", level: 2 })).toBe("per layer");
  });
});

describe("phase spans", () => {
  it("shade the latest labelling of the chart's metric and layer, in their kinds' colours", async () => {
    const { phaseSpans } = await import("../src/chart.js");
    const state = {
      phase_colors: { drop: "#ff0000", plateau: "#00ff00" },
      phases: [
        { id: "phases_0", experiment: "exp_1", metric: "nonlinear_rate", layer: "layers.1.pre",
          phases: [{ start: 0, end: 50, kind: "plateau" }] },
        { id: "phases_1", experiment: "exp_1", metric: "nonlinear_rate", layer: "layers.1.pre",
          phases: [{ start: 0, end: 33, kind: "drop" }, { start: 33, end: 400, kind: "plateau" }] },
        { id: "phases_2", experiment: "exp_1", metric: "nonlinear_rate", layer: "layers.0.pre",
          phases: [{ start: 0, end: 9, kind: "flat" }] },
      ],
    };
    expect(phaseSpans(state, "nonlinear_rate", "layers.1.pre", ["exp_0", "exp_1"])).toEqual([
      { start: 0, end: 33, kind: "drop", color: "#ff0000" },
      { start: 33, end: 400, kind: "plateau", color: "#00ff00" }]);
    expect(phaseSpans(state, "nonlinear_rate", "layers.1.pre", ["exp_0"])).toEqual([]);
    expect(phaseSpans(state, "train_loss", null, ["exp_1"])).toEqual([]);
  });

  it("are drawn under the curves as shaded rectangles with their names", async () => {
    const { drawSpans } = await import("../src/plot.js");
    const calls = [];
    const ctx = new Proxy({}, { get: (t, k) => (k in t ? t[k] : (...a) => { calls.push([k, ...a]); return { width: 20 }; }),
      set: (t, k, v) => { t[k] = v; calls.push(["set", k, v]); return true; } });
    const u = { ctx, bbox: { left: 10, top: 5, width: 400, height: 200 }, valToPos: (v) => 10 + v };
    drawSpans(u, [{ start: 0, end: 100, kind: "drop", color: "#ff0000" }, { start: 100, end: 105, kind: "spike", color: "#0000ff" }]);
    const rects = calls.filter((c) => c[0] === "fillRect");
    expect(rects).toEqual([["fillRect", 10, 5, 100, 200], ["fillRect", 110, 5, 5, 200]]);
    const texts = calls.filter((c) => c[0] === "fillText").map((c) => c[1]);
    expect(texts).toEqual(["drop"]); // "spike" has no room in 5 px
  });
});
