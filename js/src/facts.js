// What the panel knows about the lab's science, read from `state` instead of re-typed
// here: lab_state ships it from Python (featurelab/ui/panel_state.py, where each fact
// is defined or imported from the engine, and tests/test_panel_state.py checks it).

/** A colour for something the state has no colour for (never the case for its own). */
export const NEUTRAL = "#78716c";

/** How a metric is drawn (state.metric_kinds): "activations" (the snapshots),
 *  "per_neuron" (a statistic with one value per neuron), "per_layer" (one value per
 *  layer) or "scalar" (a per-step series: any metric the state does not list). */
export function metricKind(state, metric) {
  return state.metric_kinds?.[metric] ?? "scalar";
}

/** An experiment's colour (state.experiments[].color; an unknown id gets the first's). */
export function experimentColor(state, id) {
  const exps = state.experiments || [];
  return (exps.find((e) => e.id === id) || exps[0])?.color || NEUTRAL;
}

/** A fit family of state.families by name: {name, label, equation, latex, expression,
 *  mathml, color, default}; null when unknown. */
export function familyOf(families, name) {
  return (families || []).find((f) => f.name === name) || null;
}

export function familyColor(families, name) {
  return familyOf(families, name)?.color || NEUTRAL;
}

/** The families fitted when the Fit names none, in the engine's order. */
export function defaultFamilies(state) {
  return (state.families || []).filter((f) => f.default).map((f) => f.name);
}

/** The methods of the activations chart: {method: label}, in the engine's order. */
export function methodLabels(state) {
  return state.options?.methods || {};
}
