// One chart card: a metric of the viewed experiments overlaid. Header: layer, log x / log y,
// smoothing, enlarge, close. Below: the plot (drag to zoom), exact range inputs and reset,
// and the fits of this metric. Everything it changes goes out as one action; it redraws
// from `state.view.charts[metric]`.
import { h, setPressed, setValueUnlessFocused } from "./dom.js";
import { clearErrors, errorSlot } from "./errors.js";
import { fmtBound } from "./format.js";
import { createActivationsBody, createLayerSelect } from "./activations.js";
import { parseNumber } from "./experiment-form.js";
import { metricKind } from "./facts.js";
import { chartFits, createFitPanel } from "./fits.js";
import { createSeriesPlot, download, zoomAction } from "./plot.js";
import { shownGroups } from "./series.js";

/** The zoom params from the range boxes: empty boxes mean the whole range. */
export function rangeFromInputs(loText, hiText) {
  const lo = parseNumber(loText);
  const hi = parseNumber(hiText);
  return lo == null && hi == null ? null : [lo, hi];
}

export function createChartCard(ctx, metric) {
  const slot = errorSlot("chart-error");
  const zoomSlot = errorSlot("zoom-error");
  const title = h("h4", { class: "fl-card-title" }, metric);
  const subtitle = h("span", { class: "fl-muted fl-card-sub" });
  const layer = createLayerSelect(ctx, metric, slot);
  const logX = h("button", { type: "button", class: "fl-button fl-toggle", testid: "log-x", "aria-pressed": "false" }, "log x");
  const logY = h("button", { type: "button", class: "fl-button fl-toggle", testid: "log-y", "aria-pressed": "false" }, "log y");
  const smoothing = h("input", { type: "number", class: "fl-input fl-tiny", testid: "smoothing", min: "0", step: "1",
    "aria-label": "Smoothing window (steps)", title: "moving average over this many steps; 0 = raw" });
  const enlarge = h("button", { type: "button", class: "fl-button", testid: "enlarge", "aria-pressed": "false" }, "Enlarge");
  // Sweep groups (runs differing only by seed) as one mean line and a band.
  const band = h("select", { class: "fl-input", testid: "band", "aria-label": "Sweep groups",
    title: "draw the runs of a sweep group as their mean with a band" },
  h("option", { value: "" }, "each run"), h("option", { value: "std" }, "mean ± std"),
  h("option", { value: "minmax" }, "mean, min–max"));
  const savePng = h("button", { type: "button", class: "fl-button", testid: "download-png",
    title: `Download the ${metric} chart as a PNG picture` }, "PNG");
  const saveCsv = h("button", { type: "button", class: "fl-button", testid: "download-csv",
    title: `Download the ${metric} chart's curves as CSV (step, one column per curve)` }, "CSV");
  const close = h("button", { type: "button", class: "fl-button fl-icon", testid: "close-chart", "aria-label": `Close the ${metric} chart`, title: "Close" }, "×");
  const smoothLabel = h("label", { class: "fl-inline", title: "moving average window in steps; 0 = raw" }, "smooth ", smoothing);
  const header = h("div", { class: "fl-card-head" },
    h("div", { class: "fl-card-titles" }, title, subtitle),
    h("div", { class: "fl-toolbar" }, layer.el, band, logX, logY, smoothLabel, savePng, saveCsv,
      enlarge, close));

  const xLo = h("input", { type: "text", class: "fl-input fl-short", testid: "zoom-x-lo", placeholder: "x from", inputmode: "decimal", "aria-label": "Zoom x from" });
  const xHi = h("input", { type: "text", class: "fl-input fl-short", testid: "zoom-x-hi", placeholder: "x to", inputmode: "decimal", "aria-label": "Zoom x to" });
  const yLo = h("input", { type: "text", class: "fl-input fl-short", testid: "zoom-y-lo", placeholder: "y from", inputmode: "decimal", "aria-label": "Zoom y from" });
  const yHi = h("input", { type: "text", class: "fl-input fl-short", testid: "zoom-y-hi", placeholder: "y to", inputmode: "decimal", "aria-label": "Zoom y to" });
  const apply = h("button", { type: "submit", class: "fl-button", testid: "zoom-apply" }, "Zoom");
  const reset = h("button", { type: "button", class: "fl-button", testid: "zoom-reset" }, "Reset");
  const zoomForm = h("form", { class: "fl-toolbar fl-zoom", "aria-label": "Zoom", novalidate: true },
    h("span", { class: "fl-inline", dataset: { field: "x_range" } }, "x ", xLo, " – ", xHi),
    h("span", { class: "fl-inline", dataset: { field: "y_range" } }, "y ", yLo, " – ", yHi),
    apply, reset, h("span", { class: "fl-muted fl-hint-inline" }, "or drag on the plot; double-click resets"));
  const zoomBox = h("div", { class: "fl-zoom-box" }, zoomForm, zoomSlot);
  const body = h("div", { class: "fl-card-body" });
  const hint = h("div", { class: "fl-hint" });
  const fits = createFitPanel(ctx, metric);
  const el = h("section", { class: "fl-card", testid: `chart-${metric}`, "aria-label": `${metric} chart`, dataset: { metric } },
    header, slot, hint, body, zoomBox, fits.el);

  let view = { metric };
  let series = null; // a series plot (scalar and statistics)
  let activations = null; // the hidden_activations body
  let seriesHeight = null;

  logX.addEventListener("click", () => ctx.act("set_axes", { metric, log_x: !view.log_x }, slot));
  logY.addEventListener("click", () => ctx.act("set_axes", { metric, log_y: !view.log_y }, slot));
  smoothing.addEventListener("change", () => {
    const window = parseNumber(smoothing.value);
    if (window === null || window === view.smoothing) return;
    ctx.act("set_smoothing", { metric, window }, slot);
  });
  enlarge.addEventListener("click", () => ctx.act("enlarge_chart", { metric, enlarged: !view.enlarged }, slot));
  const fileName = (ext) => `${metric}${view.layer ? "-" + view.layer : ""}.${ext}`;
  savePng.addEventListener("click", () => {
    const png = series?.png();
    if (png) download(fileName("png"), png);
  });
  saveCsv.addEventListener("click", () => {
    const csv = series?.csv();
    if (csv) download(fileName("csv"), csv);
  });
  band.addEventListener("change", () => ctx.act("set_band", { metric, band: band.value || null }, slot));
  close.addEventListener("click", () => ctx.act("hide_chart", { metric }, slot));
  zoomForm.addEventListener("submit", (e) => {
    e.preventDefault();
    clearErrors(zoomBox);
    const x = rangeFromInputs(xLo.value, xHi.value);
    const y = rangeFromInputs(yLo.value, yHi.value);
    ctx.act("zoom", zoomAction(metric, x, y).params, { root: zoomBox, fallback: zoomSlot });
  });
  reset.addEventListener("click", () => {
    clearErrors(zoomBox);
    ctx.act("zoom", zoomAction(metric, null).params, zoomSlot);
  });

  function update(nextView, state) {
    view = nextView;
    const kind = metricKind(state, metric);
    const viewed = state.view?.viewed || [];
    const perLayer = kind !== "scalar";
    el.classList.toggle("fl-enlarged", !!view.enlarged);
    setPressed(enlarge, view.enlarged);
    enlarge.textContent = view.enlarged ? "Shrink" : "Enlarge";
    setPressed(logX, view.log_x);
    setPressed(logY, view.log_y);
    setValueUnlessFocused(smoothing, String(view.smoothing ?? 0));
    setValueUnlessFocused(xLo, fmtBound(view.x_range?.[0]));
    setValueUnlessFocused(xHi, fmtBound(view.x_range?.[1]));
    setValueUnlessFocused(yLo, fmtBound(view.y_range?.[0]));
    setValueUnlessFocused(yHi, fmtBound(view.y_range?.[1]));
    layer.el.hidden = !perLayer;
    if (perLayer) layer.update(state, view.layer, viewed);
    const labels = Object.assign({}, ...(state.experiments || []).map((e) => e.point_labels || {}));
    subtitle.textContent = [view.layer ? labels[view.layer] || view.layer : "",
      viewed.length ? viewed.join(", ") : ""].filter(Boolean).join(" · ");

    const snapshotMethod = kind === "activations" && view.method && view.method !== "neuron_stats";
    for (const b of [logX, logY, smoothLabel]) b.hidden = snapshotMethod;
    savePng.hidden = saveCsv.hidden = kind === "activations";
    band.value = view.band || "";
    band.hidden = kind === "activations"
      || !shownGroups(state, viewed, (e) => e).length; // no group of 2+ runs shown
    zoomBox.hidden = snapshotMethod;
    const fittable = kind === "scalar" || kind === "per_layer";
    fits.el.hidden = !fittable;

    if (kind === "activations") {
      if (series) { series.destroy(); series = null; }
      if (!activations) {
        body.textContent = "";
        activations = createActivationsBody(ctx, { metric, slot, zoomSlot });
        body.append(activations.el);
      }
      hint.hidden = true;
      activations.update(view, state, viewed);
      return;
    }
    if (activations) { activations.destroy(); activations = null; body.textContent = ""; }
    const height = view.enlarged ? 400 : 220;
    if (!series || seriesHeight !== height) {
      if (series) series.destroy();
      body.textContent = "";
      series = createSeriesPlot(ctx, { metric, height, testid: "plot", zoomSlot });
      seriesHeight = height;
      body.append(series.el);
    }
    const needsLayer = perLayer && !view.layer;
    hint.textContent = !viewed.length ? "View the results of an experiment first."
      : needsLayer ? "Choose a layer to plot this statistic." : "";
    hint.hidden = !hint.textContent;
    const layerName = perLayer ? view.layer : null;
    const shown = needsLayer ? [] : viewed;
    series.update({ experiments: shown, layer: layerName, view, state,
      fits: fittable ? chartFits(state, metric, layerName) : [] });
    if (fittable) fits.update(view, state, layerName, viewed);
  }

  return {
    el,
    metric,
    update,
    destroy() {
      if (series) series.destroy();
      if (activations) activations.destroy();
      fits.destroy();
      el.remove();
    },
  };
}
