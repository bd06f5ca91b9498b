// The state the panel renders: the fixtures (generated from Python by
// tests/test_panel_state.py) against panel_state_schema(), and the facts the panel reads
// from the state rather than knowing them itself.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import widget from "../src/widget.js";
import { setPlotFactory } from "../src/plot.js";
import { createFakeModel, createFakePlots, loadState } from "./fakes.js";
import schema from "./fixtures/panel-state.schema.json";

const TYPES = {
  string: (v) => typeof v === "string",
  integer: (v) => Number.isInteger(v),
  number: (v) => typeof v === "number",
  boolean: (v) => typeof v === "boolean",
  null: (v) => v === null,
  array: (v) => Array.isArray(v),
  object: (v) => v !== null && typeof v === "object" && !Array.isArray(v),
};
const ANNOTATIONS = new Set(["title", "description", "$schema", "$defs", "default"]);

/** The errors of `value` against the subset of JSON Schema that pydantic writes for the
 *  panel's state ($ref, type, properties, required, additionalProperties, items, min /
 *  maxItems, anyOf, enum); a keyword it does not know is an error too. */
function schemaErrors(value, node = schema, path = "$") {
  if (node.$ref) {
    const name = node.$ref.replace("#/$defs/", "");
    if (!schema.$defs?.[name]) return [`${path}: unknown $ref ${node.$ref}`];
    return schemaErrors(value, schema.$defs[name], path);
  }
  const errors = [];
  for (const key of Object.keys(node)) {
    if (!ANNOTATIONS.has(key) && !["type", "properties", "required", "additionalProperties",
      "items", "minItems", "maxItems", "anyOf", "enum"].includes(key)) errors.push(`${path}: keyword ${key}`);
  }
  if (node.type && !TYPES[node.type]?.(value)) return [...errors, `${path}: not ${node.type}: ${JSON.stringify(value)}`];
  if (node.enum && !node.enum.includes(value)) errors.push(`${path}: ${JSON.stringify(value)} not in ${node.enum}`);
  if (node.anyOf && node.anyOf.every((option) => schemaErrors(value, option, path).length)) {
    errors.push(`${path}: matches none of anyOf: ${JSON.stringify(value).slice(0, 80)}`);
  }
  if (TYPES.object(value)) {
    for (const key of node.required || []) if (!(key in value)) errors.push(`${path}: missing ${key}`);
    for (const [key, v] of Object.entries(value)) {
      const sub = node.properties?.[key] ?? node.additionalProperties;
      if (sub === false) errors.push(`${path}: unknown key ${key}`);
      else if (sub && sub !== true) errors.push(...schemaErrors(v, sub, `${path}.${key}`));
    }
  }
  if (Array.isArray(value)) {
    if (node.minItems != null && value.length < node.minItems) errors.push(`${path}: fewer than ${node.minItems} items`);
    if (node.maxItems != null && value.length > node.maxItems) errors.push(`${path}: more than ${node.maxItems} items`);
    if (node.items) value.forEach((v, i) => errors.push(...schemaErrors(v, node.items, `${path}[${i}]`)));
  }
  return errors;
}

describe("the fixtures", () => {
  it.each(["empty-state", "reference-state"])("%s is a PanelState", (name) => {
    expect(schemaErrors(loadState(name))).toEqual([]);
  });

  it("fail the schema when a field is unknown, missing or of another type", () => {
    const state = loadState("reference-state");
    expect(schemaErrors({ ...state, surprise: 1 })).toEqual(["$: unknown key surprise"]);
    const { color, ...row } = state.experiments[0];
    expect(color).toBe("#3b82f6");
    expect(schemaErrors({ ...state, experiments: [row] })).toEqual(["$.experiments[0]: missing color"]);
    state.view.charts.train_loss.smoothing = "5";
    expect(schemaErrors(state)).toEqual(['$.view.charts.train_loss.smoothing: not integer: "5"']);
  });
});

describe("facts from the state", () => {
  let mounted;
  beforeEach(() => {
    setPlotFactory(createFakePlots().factory);
  });
  afterEach(() => {
    mounted?.();
    setPlotFactory(null);
    document.body.textContent = "";
  });
  function mount(state) {
    const el = document.createElement("div");
    document.body.append(el);
    mounted = widget.render({ model: createFakeModel({ state }), el });
    return (testid, root = el) => root.querySelector(`[data-testid="${testid}"]`);
  }

  it("metric kinds, method labels, default families and colours are the state's", () => {
    const state = loadState("reference-state");
    state.metric_kinds.train_loss = "per_layer"; // as if it were a statistic
    state.options.methods = { neuron_stats: "Stats", heatmap: "Heat" };
    state.families.find((f) => f.name === "linear").default = true;
    state.families.find((f) => f.name === "sigmoid").color = "#000000";
    state.experiments[1].color = "#ffffff";
    const $ = mount(state);
    expect($("layer-select", $("chart-train_loss")).hidden).toBe(false);
    expect($("fits", $("chart-train_loss")).hidden).toBe(false);
    expect([...$("method-select").options].map((o) => o.textContent)).toEqual(["Stats", "Heat"]);
    const nr = $("chart-nonlinear_rate");
    expect($("fit-family-linear", nr).checked).toBe(true);
    const sigmoid = nr.querySelector('tr[data-family="sigmoid"] .fl-swatch');
    expect(sigmoid.style.borderColor).toBe("rgb(0, 0, 0)");
    expect($("exp-row-exp_1").querySelector(".fl-swatch").style.background).toBe("rgb(255, 255, 255)");
  });

  it("a metric the state does not list is a per-step scalar", () => {
    const state = loadState("reference-state");
    state.metric_kinds = {};
    state.view.charts = { nonlinear_rate: state.view.charts.nonlinear_rate };
    const $ = mount(state);
    expect($("layer-select", $("chart-nonlinear_rate")).hidden).toBe(true);
  });
});
