import { describe, expect, it } from "vitest";
import { createParams, observableChoices, parseList, parseNumber } from "../src/experiment-form.js";
import { fieldCandidates } from "../src/errors.js";
import { nextSelection } from "../src/experiments.js";
import { loadState } from "./fakes.js";

const state = loadState("reference-state");
const defaults = state.defaults;

/** The form's values for a config, as the inputs hold them after parsing. */
function valuesOf(config) {
  const out = {};
  for (const [section, fields] of Object.entries(config)) {
    if (fields && typeof fields === "object" && !Array.isArray(fields)) {
      for (const [k, v] of Object.entries(fields)) out[`${section}.${k}`] = v;
    } else out[section] = fields;
  }
  out.name = "";
  return out;
}

describe("create_experiment params", () => {
  it("from scratch: the reference session's config", () => {
    const params = createParams(valuesOf(defaults), { defaults });
    expect(params).toEqual({
      model: { kind: "mlp", widths: [10, 100, 100, 1], activation: "relu" },
      data: { task: "sin2", dim: 10, freq: 10, n_train: 500, n_test: 200 },
      optimizer: { name: "adam", lr: 0.001, steps: 2000 },
      loss: "mse",
      observables: ["train_loss", "test_loss", "weight_l2_norm", "hidden_activations"],
      seed: 0,
    });
  });

  it("based on exp_0 plus the observable nonlinear_rate: only the difference", () => {
    const base = state.experiments[0].config;
    const values = valuesOf(base);
    values.observables = [...base.observables, "nonlinear_rate"];
    expect(createParams(values, { base, basedOn: "exp_0", defaults })).toEqual({
      based_on: "exp_0", observables_add: ["nonlinear_rate"] });
  });

  it("based on an experiment: changed nested fields, removed observables, a name", () => {
    const base = state.experiments[0].config;
    const values = valuesOf(base);
    values["model.widths"] = [10, 200, 1];
    values["optimizer.lr"] = 0.01;
    values.observables = base.observables.filter((o) => o !== "test_loss");
    values.name = "wide";
    values.seed = 1;
    expect(createParams(values, { base, basedOn: "exp_0", defaults })).toEqual({
      based_on: "exp_0", model: { widths: [10, 200, 1] }, optimizer: { lr: 0.01 }, seed: 1,
      name: "wide", observables_remove: ["test_loss"] });
  });

  it("sends only the fields of the chosen task, and optional fields when not default", () => {
    const values = valuesOf(defaults);
    values["data.task"] = "modular";
    values["optimizer.weight_decay"] = 1;
    const params = createParams(values, { defaults });
    expect(params.data).toEqual({ task: "modular", p: 97, op: "+", train_frac: 0.5 });
    expect(params.optimizer).toEqual({ name: "adam", lr: 0.001, steps: 2000, weight_decay: 1 });
  });

  it("parses what was typed, keeping text that is no number for the engine to name", () => {
    expect(parseNumber("1e-3")).toBe(0.001);
    expect(parseNumber(" 2000 ")).toBe(2000);
    expect(parseNumber("")).toBe(null);
    expect(parseNumber("abc")).toBe("abc");
    expect(parseList("10, 100,abc, 1")).toEqual([10, 100, "abc", 1]);
  });

  it("offers scalar observables and every statistic", () => {
    const names = observableChoices(state);
    expect(names.slice(0, state.options.observables.length)).toEqual(state.options.observables);
    expect(names).toContain("active_rate");
    expect(names).toContain("nonlinear_rate");
  });
});

describe("errors and selection", () => {
  it("finds the form field an error names", () => {
    expect(fieldCandidates("model.widths[1]")).toEqual(["model.widths[1]", "model.widths", "model"]);
    expect(fieldCandidates("snapshots.schedule[0][1]")).toEqual(
      ["snapshots.schedule[0][1]", "snapshots.schedule[0]", "snapshots.schedule", "snapshots"]);
    expect(fieldCandidates("observables_add")).toContain("observables");
    expect(fieldCandidates(null)).toEqual([]);
  });

  it("selects one row, or adds and removes with shift/ctrl", () => {
    expect(nextSelection(["exp_0"], "exp_1", false)).toEqual(["exp_1"]);
    expect(nextSelection(["exp_0"], "exp_1", true)).toEqual(["exp_0", "exp_1"]);
    expect(nextSelection(["exp_0", "exp_1"], "exp_0", true)).toEqual(["exp_1"]);
  });
});
