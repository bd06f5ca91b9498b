import { describe, expect, it } from "vitest";
import { chartFits, equationMathML, fitParams, fitTable, formatRow, sortRows } from "../src/fits.js";
import { loadState } from "./fakes.js";

const state = loadState("reference-state");
const fit = state.fits[0];

describe("fit table", () => {
  it("ranks rows by R^2, failed rows last", () => {
    const rows = [
      { family: "power", ok: true, r2: 0.84 },
      { family: "linear", ok: false, r2: null },
      { family: "sigmoid", ok: true, r2: 0.996 },
      { family: "exponential", ok: true, r2: 0.96 },
    ];
    expect(sortRows(rows).map((r) => r.family)).toEqual(["sigmoid", "exponential", "power", "linear"]);
  });

  it("formats R^2 with 4 decimals, coefficients like -9.31e-1, RMSE with 3 digits", () => {
    const row = { family: "sigmoid", label: "Sigmoid", ok: true, r2: 0.99643, rmse: 0.0120444,
      coefficients: [-0.931, -0.153, 2.61, 1.06] };
    expect(formatRow(row)).toEqual(["Sigmoid", "0.9964", "-9.31e-1, -1.53e-1, 2.61e+0, 1.06e+0", "0.012"]);
    expect(formatRow({ label: "Linear", ok: false, reason: "too short" })).toEqual(["Linear", "failed", "too short", "–"]);
  });

  it("renders the engine's table with sigmoid first and MathML equations", () => {
    const shuffled = { ...fit, table: { ...fit.table, rows: [...fit.table.rows].reverse() } };
    const table = fitTable(shuffled, state.families);
    const rows = [...table.querySelectorAll("tbody tr")];
    expect(rows.map((r) => r.dataset.family)).toEqual(["sigmoid", "exponential", "log_power", "power"]);
    expect(rows[0].cells[1].textContent).toBe("0.9979");
    expect(rows[0].cells[3].textContent).toBe("-7.66e-1, -2.35e-1, 4.50e+0, 1.01e+0");
    expect(rows[0].querySelector("math")).not.toBeNull();
    expect(table.querySelector("caption").textContent).toContain("steps 0 to 100");
  });

  it("has MathML for every family", () => {
    for (const f of ["sigmoid", "exponential", "power", "log_power", "linear"]) {
      const math = equationMathML(f);
      expect(math.namespaceURI).toBe("http://www.w3.org/1998/Math/MathML");
      expect(math.textContent).toContain("c1");
    }
    expect(equationMathML("sigmoid").querySelector("mfrac")).not.toBeNull();
    expect(equationMathML("nope")).toBeNull();
  });

  it("finds the latest fit of a chart's metric and layer among viewed experiments", () => {
    expect(chartFits(state, "nonlinear_rate", "layers.1.pre").map((f) => f.id)).toEqual(["fit_0"]);
    expect(chartFits(state, "nonlinear_rate", "layers.0.pre")).toEqual([]);
    const later = { ...fit, id: "fit_1" };
    expect(chartFits({ ...state, fits: [fit, later] }, "nonlinear_rate", "layers.1.pre").map((f) => f.id)).toEqual(["fit_1"]);
  });

  it("leaves the default families out of the fit action", () => {
    expect(fitParams({ experiment: "exp_1", metric: "m", layer: null, xRange: [0, 100],
      families: ["log_power", "power", "exponential", "sigmoid"] }))
      .toEqual({ experiment: "exp_1", metric: "m", layer: null, x_range: [0, 100] });
    expect(fitParams({ experiment: "exp_1", metric: "m", layer: "l", xRange: null, families: ["linear"] }))
      .toEqual({ experiment: "exp_1", metric: "m", layer: "l", x_range: null, families: ["linear"] });
  });
});
