import { describe, expect, it } from "vitest";
import { align, buildPlot, compileExpression, filledRows, fittedCurve, movingAverage } from "../src/series.js";
import { familyOf } from "../src/facts.js";
import { loadState } from "./fakes.js";
import familyValues from "./fixtures/family-values.json";

const { families } = loadState("empty-state");

const near = (a, b) => a.forEach((v, i) => (Number.isNaN(b[i]) ? expect(v).toBeNaN() : expect(v).toBeCloseTo(b[i], 10)));

describe("movingAverage", () => {
  it("is the trailing mean of the last `window` steps", () => {
    const x = [0, 1, 2, 3, 4, 5];
    const y = [1, 2, 3, 4, 5, 6];
    near(Array.from(movingAverage(x, y, 3)), [1, 1.5, 2, 3, 4, 5]);
    near(Array.from(movingAverage(x, y, 1)), y);
    near(Array.from(movingAverage(x, y, 0)), y);
  });

  it("matches a brute-force mean on random data", () => {
    const n = 500;
    const x = Array.from({ length: n }, (_, i) => i);
    const y = Array.from({ length: n }, (_, i) => Math.sin(i / 7) + (i % 13) / 10);
    const w = 25;
    const out = movingAverage(x, y, w);
    for (let i = 0; i < n; i++) {
      const part = y.slice(Math.max(0, i - w + 1), i + 1);
      expect(out[i]).toBeCloseTo(part.reduce((a, b) => a + b, 0) / part.length, 9);
    }
  });

  it("uses the window in steps when steps are uneven, and skips NaN", () => {
    const x = [0, 10, 20, 25, 30];
    const y = [1, 3, NaN, 5, 7];
    // window 12: (x_i - 12, x_i]
    near(Array.from(movingAverage(x, y, 12)), [1, 2, NaN, 5, 6]);
  });
});

describe("align", () => {
  it("shares x when every group has the same steps", () => {
    const { x, ys } = align([{ x: Float64Array.from([0, 1, 2]), ys: [[1, NaN, 3]] }, { x: Float64Array.from([0, 1, 2]), ys: [[4, 5, 6]] }]);
    expect(Array.from(x)).toEqual([0, 1, 2]);
    expect(ys).toEqual([[1, null, 3], [4, 5, 6]]);
  });

  it("takes the union of steps, null where a group has no point", () => {
    const { x, ys } = align([{ x: Float64Array.from([0, 1, 2, 3]), ys: [[1, 2, 3, 4]] }, { x: Float64Array.from([0, 2, 4]), ys: [[10, 20, 40]] }]);
    expect(Array.from(x)).toEqual([0, 1, 2, 3, 4]);
    expect(ys).toEqual([[1, 2, 3, 4, null], [10, null, 20, null, 40]]);
  });
});

describe("buildPlot", () => {
  const trace = (experiment, steps, values, shape) => ({ experiment, color: "#3b82f6", steps: Float64Array.from(steps),
    values: Float32Array.from(values), shape: shape || [values.length] });

  it("draws one line per experiment, and the raw curve faint behind the smoothed one", () => {
    const plain = buildPlot([trace("exp_0", [0, 1, 2], [3, 2, 1]), trace("exp_1", [0, 1, 2], [1, 1, 1])]);
    expect(plain.specs.map((s) => [s.label, s.kind])).toEqual([["exp_0", "line"], ["exp_1", "line"]]);
    expect(plain.data.length).toBe(3);
    const smooth = buildPlot([trace("exp_0", [0, 1, 2, 3], [4, 2, 2, 0])], { smoothing: 2 });
    expect(smooth.specs.map((s) => s.kind)).toEqual(["raw", "smooth"]);
    expect(smooth.specs[0].alpha).toBeLessThan(0.5);
    expect(smooth.data[1]).toEqual([4, 2, 2, 0]);
    expect(smooth.data[2]).toEqual([4, 3, 2, 1]);
  });

  it("draws per-neuron values as faint lines and their mean", () => {
    const built = buildPlot([trace("exp_0", [0, 1], [0, 1, 0.5, 1, 1, 1], [2, 3])]);
    expect(built.specs.map((s) => s.kind)).toEqual(["neuron", "neuron", "neuron", "mean"]);
    expect(built.data[1]).toEqual([0, 1]);
    expect(built.data[3]).toEqual([0.5, 1]);
    expect(built.data[4][0]).toBeCloseTo(0.5);
    expect(built.data[4][1]).toBeCloseTo(1);
  });

  it("leaves out the rows a running experiment has not filled in yet", () => {
    expect(filledRows(Float32Array.from([1, 2, NaN, NaN]), 4, 1)).toBe(2);
    const built = buildPlot([trace("exp_0", [0, 1, 2, 3], [1, 2, NaN, NaN])]);
    expect(Array.from(built.data[0])).toEqual([0, 1]);
  });

  it("drops x <= 0 on a log x axis and y <= 0 on a log y axis", () => {
    const built = buildPlot([trace("exp_0", [0, 1, 2], [0, 1, -2])], { logX: true, logY: true });
    expect(Array.from(built.data[0])).toEqual([1, 2]);
    expect(built.data[1]).toEqual([1, null]);
  });

  it("adds fitted curves from the coefficients inside the fitted range", () => {
    const fit = { experiment: "exp_0", table: { x_range: [0, 1], rows: [
      { family: "linear", label: "Linear", ok: true, coefficients: [2, 1] },
      { family: "power", label: "Power", ok: false, coefficients: [null, null, null] }] } };
    const built = buildPlot([trace("exp_0", [0, 1, 2], [1, 3, 5])], { fits: [fit], families });
    expect(built.specs.at(-1)).toMatchObject({ kind: "fit", family: "linear", dash: [6, 4], color: "#78716c" });
    expect(built.data.at(-1)).toEqual([1, 3, null]);
    const hidden = buildPlot([trace("exp_0", [0, 1, 2], [1, 3, 5])], { fits: [fit], fitsVisible: false, families });
    expect(hidden.specs.length).toBe(1);
  });
});

describe("fitted families", () => {
  const value = (name, c, t) => compileExpression(familyOf(families, name).expression)(c, t);

  it("evaluate the expressions the state carries", () => {
    const c = [-0.931, -0.153, 2.61, 1.06];
    expect(value("sigmoid", c, 10)).toBeCloseTo(-0.931 / (1 + Math.exp(-1.53 + 2.61)) + 1.06, 12);
    expect(value("exponential", [1, 0.5, 2], 2)).toBeCloseTo(Math.exp(-1) + 2, 12);
    expect(value("power", [2, -1, 0], 3)).toBeCloseTo(0.5, 12);
    expect(value("log_power", [1, 2, 0], Math.E - 1)).toBeCloseTo(1, 12);
    const linear = familyOf(families, "linear").expression;
    expect(fittedCurve({ family: "linear", coefficients: [1, 0] }, [0, 5, 10], [1, 9], linear)).toEqual([null, 5, null]);
    expect(fittedCurve({ family: "nope", coefficients: [1, 0] }, [0, 5], null, undefined)).toEqual([null, null]);
  });

  it("give the engine's values (family-values.json, computed by featurelab/engine/fit.py)", () => {
    expect(Object.keys(familyValues)).toEqual(families.map((f) => f.name));
    for (const [name, { coefficients, t, values }] of Object.entries(familyValues)) {
      t.forEach((ti, i) => expect(value(name, coefficients, ti)).toBeCloseTo(values[i], 10));
    }
  });

  it("read nothing they do not know", () => {
    expect(compileExpression(["sqrt", 4])([], 0)).toBeNaN();
    expect(compileExpression({ op: "+" })([], 0)).toBeNaN();
    expect(compileExpression(["c", 3])([1], 0)).toBeNaN();
  });
});
