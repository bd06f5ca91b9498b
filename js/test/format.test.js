import { describe, expect, it } from "vitest";
import { fmtBound, fmtCoef, fmtG, fmtR2 } from "../src/format.js";

describe("formatting", () => {
  it("writes coefficients as the published table does", () => {
    expect([-0.931, -0.153, 2.61, 1.06].map(fmtCoef)).toEqual(["-9.31e-1", "-1.53e-1", "2.61e+0", "1.06e+0"]);
    expect(fmtCoef(0.0555)).toBe("5.55e-2");
    expect(fmtCoef(null)).toBe("nan");
  });

  it("writes R^2 with 4 decimals", () => {
    expect(fmtR2(0.99643)).toBe("0.9964");
    expect(fmtR2(null)).toBe("–");
  });

  it("matches Python's {:.3g}", () => {
    expect(fmtG(0.012044, 3)).toBe("0.012");
    expect(fmtG(0.0000361748, 3)).toBe("3.62e-05");
    expect(fmtG(2.63899, 3)).toBe("2.64");
    expect(fmtG(1234.5, 3)).toBe("1.23e+03");
    expect(fmtG(100, 3)).toBe("100");
    expect(fmtG(0, 3)).toBe("0");
    expect(fmtG(-0.5, 3)).toBe("-0.5");
  });

  it("writes range bounds for the inputs", () => {
    expect(fmtBound(100)).toBe("100");
    expect(fmtBound(0.123456)).toBe("0.1235");
    expect(fmtBound(null)).toBe("");
  });
});
