import { describe, expect, it } from "vitest";
import { describeActivations, divergingColor, histogram, layerOptions } from "../src/activations.js";
import { loadState } from "./fakes.js";

describe("activations helpers", () => {
  it("labels layers with their shapes", () => {
    const state = loadState("reference-state");
    expect(layerOptions(state, ["exp_0"])).toEqual([
      { value: "layers.0.pre", label: "Layer 0 pre (500 x 100)" },
      { value: "layers.0.post", label: "Layer 0 post (500 x 100)" },
      { value: "layers.1.pre", label: "Layer 1 pre (500 x 100)" },
      { value: "layers.1.post", label: "Layer 1 post (500 x 100)" },
    ]);
  });

  it("counts values into equal bins", () => {
    const h = histogram(Float32Array.from([0, 0.1, 0.5, 0.9, 1, NaN]), 2);
    expect(h.lo).toBe(0);
    expect(h.hi).toBe(1);
    expect(Array.from(h.counts)).toEqual([2, 3]);
    expect(h.total).toBe(5);
    expect(histogram([], 3).total).toBe(0);
  });

  it("colours negative blue, positive red, zero as the background", () => {
    expect(divergingColor(0, [1, 2, 3])).toEqual([1, 2, 3]);
    expect(divergingColor(-1)).toEqual([37, 99, 235]);
    expect(divergingColor(5)).toEqual([220, 38, 38]);
  });

  it("summarises activations", () => {
    expect(describeActivations(Float32Array.from([1, -1, 1, -1]))).toBe("mean 0 · std 1 · fraction > 0: 0.5");
  });
});
