// Fits: choose families and an x range (the chart's zoom by default), send `fit`, show the
// table as the engine ranked it (by R^2) with each equation as MathML, and show / hide the
// fitted curves. The families, their equations, colours and defaults come with the state.
import { fillSelect, h, replaceChildren, setPressed, setValueUnlessFocused } from "./dom.js";
import { clearErrors, errorSlot } from "./errors.js";
import { fmtBound, fmtCoef, fmtG, fmtR2 } from "./format.js";
import { parseNumber } from "./experiment-form.js";
import { defaultFamilies, familyColor, familyOf } from "./facts.js";

const MATHML = "http://www.w3.org/1998/Math/MathML";

/** One table row as text: [type, R^2, coefficients, RMSE]; with `stderr`, each
 *  coefficient with its standard error (from the fit's covariance). */
export function formatRow(row, { stderr = false } = {}) {
  if (!row.ok) return [row.label, "failed", row.reason || "", "–"];
  const coef = (c, i) => {
    const e = (row.stderr || [])[i];
    return stderr ? `${fmtCoef(c)} ± ${e == null ? "?" : fmtG(e, 2)}` : fmtCoef(c);
  };
  return [row.label, fmtR2(row.r2), (row.coefficients || []).map(coef).join(", "),
    row.rmse == null ? "–" : fmtG(row.rmse, 3)];
}

/** The latest fit of (metric, layer) for each viewed experiment, oldest experiment first. */
export function chartFits(state, metric, layer) {
  const viewed = state.view?.viewed || [];
  const latest = new Map();
  for (const fit of state.fits || []) {
    if (fit.metric !== metric || (fit.layer ?? null) !== (layer ?? null)) continue;
    if (!viewed.includes(fit.experiment)) continue;
    latest.set(fit.experiment, fit);
  }
  return viewed.filter((e) => latest.has(e)).map((e) => latest.get(e));
}

/** MathML elements from lab_state's [tag, child...] arrays (text children as strings). */
function mathml(node) {
  if (typeof node === "string") return document.createTextNode(node);
  const [tag, ...children] = node;
  const el = document.createElementNS(MATHML, tag);
  for (const child of children) el.append(mathml(child));
  return el;
}

/** A family's equation (state.families[].mathml: f(t) = ...) as a display <math>; null
 *  for a family without one. */
export function equationMathML(family) {
  if (!Array.isArray(family?.mathml)) return null;
  const math = document.createElementNS(MATHML, "math");
  math.setAttribute("displaystyle", "true");
  math.append(mathml(family.mathml));
  return math;
}

/** A fit table as a <table>: Type, R^2, Equation, Coefficients, RMSE; its rows in the
 *  engine's order (ranked by R^2, failed rows last). */
export function fitTable(fit, families = [], { stderr = false } = {}) {
  const rows = fit.table?.rows || [];
  const xr = fit.table?.x_range;
  const caption = `${fit.id}: ${fit.metric}${fit.layer ? ` (${fit.layer})` : ""} of ${fit.experiment}` +
    (xr ? `, steps ${fmtG(xr[0], 6)} to ${fmtG(xr[1], 6)}` : "") +
    (fit.table?.space === "log_y" ? "; fitted on log10 y (R² and RMSE of log10 y)" : "");
  return h("table", { class: "fl-table fl-fit-table", testid: "fit-table", dataset: { fit: fit.id } },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ["Type", "R²", "Equation", "Coefficients", "RMSE"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((row) => {
      const [label, r2, coefs, rmse] = formatRow(row, { stderr });
      const family = familyOf(families, row.family);
      const math = equationMathML(family);
      const text = row.equation || family?.equation || "";
      const eq = math ? h("span", { class: "fl-eq", title: text }, math) : h("span", { class: "fl-mono" }, text);
      return h("tr", { class: row.ok ? null : "fl-failed", dataset: { family: row.family } },
        h("td", {}, h("span", { class: "fl-swatch fl-dash", style: { borderColor: familyColor(families, row.family) } }), " ", label),
        h("td", { class: "fl-num" }, r2), h("td", {}, eq),
        h("td", { class: row.ok ? "fl-mono fl-coefs" : "fl-muted" }, coefs), h("td", { class: "fl-num" }, rmse));
    })));
}

/** The fit params for the panel's choices (families left out when they are `defaults`,
 *  the engine's default families). */
export function fitParams({ experiment, metric, layer, xRange, families, defaults, logY = false }) {
  const params = { experiment, metric, layer: layer ?? null, x_range: xRange };
  if (logY) params.log_y = true; // a log y axis is fitted on log10 y, as it is read
  const same = families.length === defaults.length && defaults.every((f) => families.includes(f));
  if (!same) params.families = families;
  return params;
}

export function createFitPanel(ctx, metric) {
  const familyBox = h("span", { class: "fl-checks", role: "group", "aria-label": "Families", dataset: { field: "families" } });
  const lo = h("input", { type: "text", class: "fl-input fl-short", testid: "fit-x-lo", placeholder: "start", inputmode: "decimal", "aria-label": "Fit from step" });
  const hi = h("input", { type: "text", class: "fl-input fl-short", testid: "fit-x-hi", placeholder: "end", inputmode: "decimal", "aria-label": "Fit to step" });
  const expSelect = h("select", { class: "fl-select", testid: "fit-experiment", "aria-label": "Experiment to fit" });
  const fitButton = h("button", { type: "button", class: "fl-button fl-primary", testid: "fit" }, "Fit");
  const toggle = h("button", { type: "button", class: "fl-button", testid: "hide-fits" }, "Hide fits");
  // What a reader of the table asks for next, shown on demand (a display choice of this
  // panel, not a change to the lab: no action).
  const stderrToggle = h("button", { type: "button", class: "fl-button fl-toggle", testid: "show-stderr",
    "aria-pressed": "false", title: "Show each coefficient's standard error (from the fit's covariance)" }, "± std err");
  const phasesButton = h("button", { type: "button", class: "fl-button", testid: "label-phases",
    title: "Split the chosen experiment's curve into phases (drop, plateau, rise, decay, spike), each with its best law" },
  "Phases");
  const residualToggle = h("button", { type: "button", class: "fl-button fl-toggle", testid: "show-residuals",
    "aria-pressed": "false", title: "Plot the data minus each fitted curve under the chart" }, "residuals");
  let stderr = false;
  let residuals = false;
  let onResiduals = () => {};
  const slot = errorSlot("fit-error");
  const tables = h("div", { class: "fl-fit-tables" });
  const controls = h("div", { class: "fl-toolbar" }, h("strong", {}, "Fit"), familyBox,
    h("span", { class: "fl-inline", dataset: { field: "x_range" } }, "steps ", lo, " to ", hi),
    expSelect, fitButton, phasesButton, toggle, stderrToggle, residualToggle);
  const el = h("div", { class: "fl-fits", testid: "fits" }, controls, slot, tables);
  let view = {};
  let state = {};
  let layer = null;
  let lastZoom;
  let familiesKey = "";
  let visible = true;

  fitButton.addEventListener("click", async () => {
    const families = [...familyBox.querySelectorAll("input:checked")].map((b) => b.value);
    const a = parseNumber(lo.value);
    const b = parseNumber(hi.value);
    const xRange = a == null && b == null ? null : [a, b];
    clearErrors(el);
    const params = fitParams({ experiment: expSelect.value, metric, layer, xRange, families,
      defaults: defaultFamilies(state), logY: !!view.log_y });
    fitButton.disabled = true;
    await ctx.act("fit", params, { root: el, fallback: slot });
    fitButton.disabled = false;
  });
  toggle.addEventListener("click", () => ctx.act("show_fits", { metric, visible: !visible }, slot));
  phasesButton.addEventListener("click", async () => {
    clearErrors(el);
    phasesButton.disabled = true;
    await ctx.act("label_phases", { experiment: expSelect.value, metric, layer: layer ?? null },
      { root: el, fallback: slot });
    phasesButton.disabled = false;
  });
  expSelect.addEventListener("change", () => { expSelect.dataset.touched = "1"; });
  stderrToggle.addEventListener("click", () => {
    stderr = !stderr;
    setPressed(stderrToggle, stderr);
    tables.dataset.sig = "";
    renderTables();
  });
  residualToggle.addEventListener("click", () => {
    residuals = !residuals;
    setPressed(residualToggle, residuals);
    onResiduals(residuals);
  });
  let fits = [];
  function renderTables() {
    const sig = JSON.stringify([fits.map((f) => f.id), stderr]);
    if (tables.dataset.sig === sig) return;
    tables.dataset.sig = sig;
    replaceChildren(tables, [...fits].reverse().map((f) =>
      h("div", { class: "fl-table-wrap" }, fitTable(f, state.families || [], { stderr }))));
  }

  return {
    el,
    update(nextView, nextState, nextLayer, experiments) {
      view = nextView;
      state = nextState;
      layer = nextLayer;
      const families = state.families || [];
      const key = families.map((f) => f.name).join(",");
      if (key !== familiesKey) {
        familiesKey = key;
        const checked = new Set([...familyBox.querySelectorAll("input:checked")].map((b) => b.value));
        const first = !familyBox.children.length;
        replaceChildren(familyBox, families.map((f) => h("label", { class: "fl-check", title: f.equation },
          h("input", { type: "checkbox", value: f.name, testid: `fit-family-${f.name}`,
            checked: first ? !!f.default : checked.has(f.name) }), " ", f.label)));
      }
      // a zoom in seconds (the wall-clock x axis) is no range of steps to fit
      const range = view.x === "time" ? null : view.x_range ?? null;
      const zoom = JSON.stringify(range);
      if (zoom !== lastZoom) {
        lastZoom = zoom;
        setValueUnlessFocused(lo, fmtBound(range?.[0]));
        setValueUnlessFocused(hi, fmtBound(range?.[1]));
      }
      const exps = (state.experiments || []).filter((e) => experiments.includes(e.id));
      const records = (e) => e.observables.some((o) => o.split("@")[0] === metric);
      const prefer = exps.find((e) => records(e) && e.status === "finished")?.id || exps.find(records)?.id || exps[0]?.id || "";
      fillSelect(expSelect, exps.map((e) => ({ value: e.id, label: e.name ? `${e.id} ${e.name}` : e.id })),
        experiments.includes(expSelect.value) && expSelect.dataset.touched ? expSelect.value : prefer);
      expSelect.hidden = exps.length < 2;
      fitButton.disabled = phasesButton.disabled = !exps.length;
      visible = view.fits_visible !== false;
      toggle.textContent = visible ? "Hide fits" : "Show fits";
      toggle.dataset.testid = visible ? "hide-fits" : "show-fits";
      setPressed(toggle, !visible);
      fits = chartFits(state, metric, layer);
      toggle.disabled = !fits.length;
      stderrToggle.hidden = residualToggle.hidden = !fits.length;
      renderTables();
    },
    /** Called with true / false when residuals are asked for / put away. */
    onResiduals(fn) { onResiduals = fn; },
    get residuals() { return residuals && fits.length > 0; },
    destroy() {},
  };
}
