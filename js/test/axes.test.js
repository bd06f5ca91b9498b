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

describe("other series on a chart (Chart.also)", () => {
  const state = {
    metric_kinds: { nonlinear_fraction: "per_layer", active_rate: "per_neuron", hidden_activations: "activations" },
    statistics: [{ name: "nonlinear_fraction", base: "activations", level: 2 }],
    experiments: [{ id: "exp_0", observables: ["train_loss", "test_loss", "weight_l2_norm", "active_rate", "nonlinear_fraction"],
      point_labels: { "layers.0.pre": "L0 pre", "layers.0.post": "L0 post", "layers.1.pre": "L1 pre", "layers.2.pre": "L2 pre" } }],
  };

  it("offers the other per-step metrics, or a statistic's other layers of the same kind", async () => {
    const { overlayChoices } = await import("../src/chart.js");
    expect(overlayChoices(state, "train_loss", null, ["exp_0"])).toEqual([
      { label: "test_loss", specs: ["test_loss"] }, { label: "weight_l2_norm", specs: ["weight_l2_norm"] }]);
    expect(overlayChoices(state, "nonlinear_fraction", "layers.1.pre", ["exp_0"])).toEqual([
      { label: "all layers", specs: ["nonlinear_fraction@layers.0.pre", "nonlinear_fraction@layers.2.pre"] }]);
    expect(overlayChoices(state, "nonlinear_fraction", null, ["exp_0"])).toEqual([]);
    expect(overlayChoices(state, "active_rate", "layers.1.pre", ["exp_0"])).toEqual([]);
    expect(overlayChoices(state, "train_loss", null, [])).toEqual([]);
  });

  it("toggles a choice in and out of the chart's list", async () => {
    const { toggleAlso } = await import("../src/chart.js");
    expect(toggleAlso([], ["test_loss"])).toEqual(["test_loss"]);
    expect(toggleAlso(["test_loss", "x"], ["test_loss"])).toEqual(["x"]);
    expect(toggleAlso(["a"], ["a", "b"])).toEqual(["a", "b"]);
    expect(toggleAlso(["a", "b"], ["a", "b"])).toEqual([]);
  });

  it("merges the replies: its own series first, each other one named and dashed", async () => {
    const { mergeReplies, parseSeries, OVERLAY_DASHES } = await import("../src/plot.js");
    const { buildPlot } = await import("../src/series.js");
    expect(parseSeries("nonlinear_fraction@layers.0.pre")).toEqual({ metric: "nonlinear_fraction", layer: "layers.0.pre" });
    expect(parseSeries("test_loss")).toEqual({ metric: "test_loss", layer: null });
    const one = (metric) => ({ kind: "series", metric, series: [{ experiment: "exp_0", shape: [3],
      steps: Float64Array.from([0, 1, 2]), values: Float32Array.from([3, 2, 1]) }] });
    const merged = mergeReplies([one("train_loss"), one("test_loss")],
      [{ metric: "train_loss", layer: null }, { metric: "test_loss", layer: null }], ["test_loss"]);
    expect(merged.series.map((s) => [s.series, s.dash])).toEqual([["train_loss", null], ["test_loss", OVERLAY_DASHES[0]]]);
    const built = buildPlot(merged.series.map((s) => ({ ...s, color: "#000" })));
    expect(built.specs.map((s) => [s.label, s.dash])).toEqual([["exp_0 train_loss", null], ["exp_0 test_loss", OVERLAY_DASHES[0]]]);
    const error = { kind: "error", message: "no" };
    expect(mergeReplies([one("a"), error], [{}, {}], ["b"])).toBe(error);
    expect(mergeReplies([one("a")], [{ metric: "a", layer: null }], [])).toEqual(one("a"));
  });
});

describe("heatmap neurons", () => {
  it("sort by mean activation or fraction active, ties in their own order", async () => {
    const { sortNeurons } = await import("../src/activations.js");
    // 2 samples x 3 neurons: means -1, 2, 0.5; active fractions 0, 1, 0.5
    const values = Float32Array.from([-1, 1, 0, -1, 3, 1]);
    expect(sortNeurons(values, 2, 3, "none").values).toBe(values);
    const byMean = sortNeurons(values, 2, 3, "mean");
    expect(byMean.order).toEqual([1, 2, 0]);
    expect([...byMean.values]).toEqual([1, 0, -1, 3, 1, -1]);
    expect(sortNeurons(values, 2, 3, "active").order).toEqual([1, 2, 0]);
    expect(sortNeurons(Float32Array.from([0, 0, 1, 1]), 2, 2, "active").order).toEqual([0, 1]);
  });
});

describe("the wall-clock x axis", () => {
  it("maps steps to seconds through the run's clock", async () => {
    const { stepsToSeconds } = await import("../src/series.js");
    const clock = [[0, 0], [50, 1], [100, 3]];
    expect([...stepsToSeconds(Float64Array.from([0, 25, 50, 75, 100, 125]), clock)])
      .toEqual([0, 0.5, 1, 2, 3, 4]); // after the last flush: the last interval's pace
    expect([...stepsToSeconds(Float64Array.from([10]), [[20, 0], [40, 2]])]).toEqual([0]);
    expect(stepsToSeconds(Float64Array.from([1]), [])).toBeNull();
    expect([...stepsToSeconds(Float64Array.from([0, 5]), [[0, 0]])]).toEqual([0, 0]);
  });

  it("draws against seconds, without fits, and names a run without a clock", async () => {
    const { setPlotFactory, createSeriesPlot } = await import("../src/plot.js");
    const { createFakePlots } = await import("./fakes.js");
    const fake = createFakePlots();
    setPlotFactory(fake.factory);
    const replies = [];
    const ctx = { theme: () => ({ fg2: "#000", axis: "#000", font: "sans" }), act: () => {},
      proto: { series: (experiments, metric) => new Promise((resolve) => replies.push({ resolve, metric })) } };
    const plot = createSeriesPlot(ctx, { metric: "train_loss", height: 100 });
    document.body.append(plot.el);
    const state = { experiments: [{ id: "exp_0", color: "#f00" }, { id: "exp_1", color: "#00f" }], families: [] };
    const fit = { experiment: "exp_0", table: { x_range: [0, 2], rows: [{ family: "linear", ok: true, coefficients: [1, 0] }] } };
    plot.update({ experiments: ["exp_0", "exp_1"], layer: null, view: { x: "time" }, state, fits: [fit] });
    replies[0].resolve({ kind: "series", series: [
      { experiment: "exp_0", shape: [3], steps: Float64Array.from([0, 1, 2]), values: Float32Array.from([3, 2, 1]),
        clock: [[0, 0], [2, 4]] },
      { experiment: "exp_1", shape: [3], steps: Float64Array.from([0, 1, 2]), values: Float32Array.from([3, 2, 1]), clock: [] }] });
    await new Promise((r) => setTimeout(r, 0));
    const drawn = fake.live().at(-1);
    expect([...drawn.data[0]]).toEqual([0, 2, 4]);
    expect(drawn.opts.series.map((s) => s.label)).toEqual(["seconds", "exp_0"]); // no fit drawn
    expect(plot.note.textContent).toContain("exp_1: recorded before runs kept a clock");
    setPlotFactory(null);
    plot.el.remove();
  });
});
