import { describe, expect, it } from "vitest";
import { chartFits, equationMathML, fitParams, fitTable, formatRow } from "../src/fits.js";
import { defaultFamilies, familyOf } from "../src/facts.js";
import { loadState } from "./fakes.js";

const state = loadState("reference-state");
const fit = state.fits[0];
const DEFAULTS = defaultFamilies(state);

describe("fit table", () => {
  it("shows the rows in the order the engine ranked them (by R^2, failed rows last)", () => {
    const rows = [
      { family: "sigmoid", label: "Sigmoid", ok: true, r2: 0.996, coefficients: [] },
      { family: "power", label: "Power", ok: true, r2: 0.84, coefficients: [] },
      { family: "linear", label: "Linear", ok: false, r2: null, coefficients: [] },
    ];
    const table = fitTable({ ...fit, table: { ...fit.table, rows } }, state.families);
    expect([...table.querySelectorAll("tbody tr")].map((r) => r.dataset.family))
      .toEqual(["sigmoid", "power", "linear"]);
    // as sent, even when not sorted: the ranking is the engine's, not the panel's
    const reversed = fitTable({ ...fit, table: { ...fit.table, rows: [...rows].reverse() } }, state.families);
    expect([...reversed.querySelectorAll("tbody tr")].map((r) => r.dataset.family))
      .toEqual(["linear", "power", "sigmoid"]);
  });

  it("formats R^2 with 4 decimals, coefficients like -9.31e-1, RMSE with 3 digits", () => {
    const row = { family: "sigmoid", label: "Sigmoid", ok: true, r2: 0.99643, rmse: 0.0120444,
      coefficients: [-0.931, -0.153, 2.61, 1.06] };
    expect(formatRow(row)).toEqual(["Sigmoid", "0.9964", "-9.31e-1, -1.53e-1, 2.61e+0, 1.06e+0", "0.012"]);
    expect(formatRow({ label: "Linear", ok: false, reason: "too short" })).toEqual(["Linear", "failed", "too short", "–"]);
  });

  it("renders the engine's table with sigmoid first, MathML equations and family colours", () => {
    const table = fitTable(fit, state.families);
    const rows = [...table.querySelectorAll("tbody tr")];
    expect(rows.map((r) => r.dataset.family)).toEqual(["sigmoid", "exponential", "log_power", "power"]);
    expect(rows[0].cells[1].textContent).toBe("0.9979");
    expect(rows[0].cells[3].textContent).toBe("-7.66e-1, -2.35e-1, 4.50e+0, 1.01e+0");
    expect(rows[0].querySelector("math")).not.toBeNull();
    expect(rows[0].querySelector(".fl-swatch").style.borderColor).toBe("rgb(217, 70, 239)"); // #d946ef
    expect(table.querySelector("caption").textContent).toContain("steps 0 to 100");
  });

  it("has MathML for every family, from the state", () => {
    expect(state.families.map((f) => f.name)).toEqual(["sigmoid", "exponential", "power", "log_power", "linear"]);
    for (const f of state.families) {
      const math = equationMathML(f);
      expect(math.namespaceURI).toBe("http://www.w3.org/1998/Math/MathML");
      expect(math.getAttribute("displaystyle")).toBe("true");
      expect(math.textContent.startsWith("f(t)=")).toBe(true);
      expect(math.textContent).toContain("c1");
    }
    const sigmoid = equationMathML(familyOf(state.families, "sigmoid"));
    expect(sigmoid.querySelector("mfrac")).not.toBeNull();
    expect(sigmoid.querySelector("mfrac").namespaceURI).toBe("http://www.w3.org/1998/Math/MathML");
    // what js/src/fits.js wrote by hand before the state carried it
    expect(equationMathML(familyOf(state.families, "exponential")).innerHTML).toBe(
      "<mrow><mi>f</mi><mo>(</mo><mi>t</mi><mo>)</mo><mo>=</mo><msub><mi>c</mi><mn>1</mn></msub>" +
      "<mo>·</mo><msup><mi>e</mi><mrow><mo>−</mo><msub><mi>c</mi><mn>2</mn></msub><mi>t</mi></mrow></msup>" +
      "<mo>+</mo><msub><mi>c</mi><mn>3</mn></msub></mrow>");
    expect(equationMathML(null)).toBeNull();
    expect(equationMathML({ name: "nope" })).toBeNull();
  });

  it("finds the latest fit of a chart's metric and layer among viewed experiments", () => {
    expect(chartFits(state, "nonlinear_rate", "layers.1.pre").map((f) => f.id)).toEqual(["fit_0"]);
    expect(chartFits(state, "nonlinear_rate", "layers.0.pre")).toEqual([]);
    const later = { ...fit, id: "fit_1" };
    expect(chartFits({ ...state, fits: [fit, later] }, "nonlinear_rate", "layers.1.pre").map((f) => f.id)).toEqual(["fit_1"]);
  });

  it("leaves the default families out of the fit action", () => {
    expect(DEFAULTS).toEqual(["sigmoid", "exponential", "power", "log_power"]);
    expect(fitParams({ experiment: "exp_1", metric: "m", layer: null, xRange: [0, 100],
      families: ["log_power", "power", "exponential", "sigmoid"], defaults: DEFAULTS }))
      .toEqual({ experiment: "exp_1", metric: "m", layer: null, x_range: [0, 100] });
    expect(fitParams({ experiment: "exp_1", metric: "m", layer: "l", xRange: null, families: ["linear"],
      defaults: DEFAULTS }))
      .toEqual({ experiment: "exp_1", metric: "m", layer: "l", x_range: null, families: ["linear"] });
  });
});

describe("fits on a log axis, standard errors", () => {
  it("fits log10 y when the chart's y axis is log, and says so under the table", () => {
    const base = { experiment: "exp_0", metric: "train_loss", layer: null, xRange: null,
      families: ["exponential"], defaults: ["sigmoid", "exponential", "power", "log_power"] };
    expect(fitParams({ ...base, logY: true })).toEqual({ experiment: "exp_0", metric: "train_loss",
      layer: null, x_range: null, families: ["exponential"], log_y: true });
    expect(fitParams(base).log_y).toBeUndefined();
    const fit = { id: "fit_0", experiment: "exp_0", metric: "train_loss", layer: null,
      table: { x_range: [0, 10], space: "log_y", rows: [{ family: "exponential", label: "Exponential",
        ok: true, r2: 0.99, rmse: 0.01, coefficients: [2, 0.5, 0.1], stderr: [0.02, 0.004, null] }] } };
    const table = fitTable(fit, []);
    expect(table.querySelector("caption").textContent).toContain("fitted on log10 y");
  });

  it("shows each coefficient with its standard error on demand", () => {
    const row = { family: "exponential", label: "Exponential", ok: true, r2: 0.99, rmse: 0.01,
      coefficients: [2, 0.5, 0.1], stderr: [0.0213, 0.004, null] };
    expect(formatRow(row)[2]).toBe("2.00e+0, 5.00e-1, 1.00e-1");
    expect(formatRow(row, { stderr: true })[2]).toBe("2.00e+0 ± 0.021, 5.00e-1 ± 0.004, 1.00e-1 ± ?");
  });
});
