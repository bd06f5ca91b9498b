// One chart card: a metric of the viewed experiments overlaid. Header: layer, log x / log y,
// smoothing, enlarge, close. Below: the plot (drag to zoom), exact range inputs and reset,
// and the fits of this metric. Everything it changes goes out as one action; it redraws
// from `state.view.charts[metric]`.
import { h, replaceChildren, setPressed, setValueUnlessFocused } from "./dom.js";
import { clearErrors, errorSlot, showError } from "./errors.js";
import { fmtBound } from "./format.js";
import { createActivationsBody, createLayerSelect, layerOptions, statisticBase } from "./activations.js";
import { parseNumber } from "./experiment-form.js";
import { metricKind } from "./facts.js";
import { chartFits, createFitPanel } from "./fits.js";
import { createPlot, createSeriesPlot, download, zoomAction } from "./plot.js";
import { createPredictionsBody } from "./predictions.js";
import { residualPlot, shownGroups } from "./series.js";

/** The zoom params from the range boxes: empty boxes mean the whole range. */
export function rangeFromInputs(loText, hiText) {
  const lo = parseNumber(loText);
  const hi = parseNumber(hiText);
  return lo == null && hi == null ? null : [lo, hi];
}

/** The shaded phases of a chart: the latest labelling of (metric, layer) of the first
 *  shown experiment that has one (as the blog shades its picture), each span with its
 *  kind's colour. */
export function phaseSpans(state, metric, layer, experiments) {
  const all = (state.phases || []).filter((p) => p.metric === metric && (p.layer ?? null) === (layer ?? null));
  for (const e of experiments) {
    const mine = all.filter((p) => p.experiment === e);
    if (!mine.length) continue;
    const colors = state.phase_colors || {};
    return mine.at(-1).phases.map((p) => ({ start: p.start, end: p.end, kind: p.kind,
      color: colors[p.kind] || "#888888" }));
  }
  return [];
}

/** What a chart can draw beside its own series (Chart.also), as toggles: the other
 *  per-step metrics the viewed experiments record (test_loss beside train_loss), and
 *  for a per-layer statistic on a chosen layer, "all layers" (the other layers of the
 *  same kind: layers.0.pre beside layers.1.pre). [{label, specs}] */
export function overlayChoices(state, metric, layer, viewed) {
  const kind = metricKind(state, metric);
  if (kind === "scalar") {
    const names = [];
    for (const e of state.experiments || []) {
      if (!viewed.includes(e.id)) continue;
      for (const o of e.observables || []) {
        const name = o.split("@")[0];
        if (name !== metric && metricKind(state, name) === "scalar" && !names.includes(name)) names.push(name);
      }
    }
    return names.map((n) => ({ label: n, specs: [n] }));
  }
  if (kind === "per_layer" && layer) {
    const suffix = layer.slice(layer.lastIndexOf("."));
    const others = layerOptions(state, viewed, statisticBase(state, metric)).map((o) => o.value)
      .filter((p) => p !== layer && p.endsWith(suffix));
    return others.length ? [{ label: "all layers", specs: others.map((p) => `${metric}@${p}`) }] : [];
  }
  return [];
}

/** Chart.also after toggling a choice: its specs added, or taken out when all are in. */
export function toggleAlso(also, specs) {
  const on = specs.every((s) => also.includes(s));
  return on ? also.filter((s) => !specs.includes(s)) : [...also, ...specs.filter((s) => !also.includes(s))];
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
  const enlarge = h("button", { type: "button", class: "fl-button fl-icon", testid: "enlarge", "aria-pressed": "false" }, "⤢");
  // Sweep groups (runs differing only by seed) as one mean line and a band.
  const band = h("select", { class: "fl-input fl-band", testid: "band", "aria-label": "Sweep groups",
    title: "draw the runs of a sweep group as their mean with a band" },
  h("option", { value: "" }, "each run"), h("option", { value: "std" }, "mean ± std"),
  h("option", { value: "minmax" }, "mean, min–max"));
  // Downloads behind one menu button: the toolbar stays one row in a half-width card.
  const item = (testid, label, title) => h("button", { type: "button", class: "fl-menu-item", testid, title }, label);
  const savePng = item("download-png", "PNG picture", `The ${metric} chart as drawn here`);
  const saveSvg = item("download-svg", "SVG (vector)", `The ${metric} chart drawn by the kernel (matplotlib, as in the blog draft), for papers`);
  const saveCsv = item("download-csv", "CSV data", `The ${metric} chart's curves: step, one column per curve`);
  const downloads = h("details", { class: "fl-menu", testid: "downloads" },
    h("summary", { class: "fl-button fl-icon", title: "Download", "aria-label": `Download the ${metric} chart` }, "⤓"),
    h("div", { class: "fl-menu-items" }, savePng, saveSvg, saveCsv));
  const close = h("button", { type: "button", class: "fl-button fl-icon", testid: "close-chart", "aria-label": `Close the ${metric} chart`, title: "Close" }, "×");
  const smoothLabel = h("label", { class: "fl-inline", title: "smoothing: moving average over this many steps; 0 = raw" }, "∿", smoothing);
  const header = h("div", { class: "fl-card-head" },
    h("div", { class: "fl-card-titles" }, title, subtitle),
    h("div", { class: "fl-toolbar fl-card-tools" }, layer.el, band, logX, logY, smoothLabel, downloads,
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
  const alsoRow = h("div", { class: "fl-toolbar fl-also", testid: "overlay", "aria-label": "Draw beside it" });
  const zoomBox = h("div", { class: "fl-zoom-box" }, alsoRow, zoomForm, zoomSlot);
  const body = h("div", { class: "fl-card-body" });
  const hint = h("div", { class: "fl-hint" });
  const fits = createFitPanel(ctx, metric);
  fits.onResiduals(() => series?.redraw());
  const el = h("section", { class: "fl-card", testid: `chart-${metric}`, "aria-label": `${metric} chart`, dataset: { metric } },
    header, slot, hint, body, zoomBox, fits.el);

  let view = { metric };
  let residuals = null; // the residual plot, while asked for
  const drawResiduals = (built, v) => {
    if (!fits.residuals) {
      if (residuals) { residuals.destroy(); residuals.el.remove(); residuals = null; }
      return;
    }
    if (!residuals) {
      residuals = createPlot({ height: 110, theme: ctx.theme(), testid: "residual-plot" });
      body.after(residuals.el);
    }
    residuals.draw(residualPlot(built), { xRange: v.x_range, logX: !!v.log_x, theme: ctx.theme(),
      emptyText: "No fitted curve shown" });
  };
  let series = null; // a series plot (scalar and statistics)
  let activations = null; // the hidden_activations body
  let predictions = null; // the predictions body
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
  const closeMenu = () => downloads.removeAttribute("open");
  savePng.addEventListener("click", () => {
    closeMenu();
    const png = (predictions || series)?.png();
    if (png) download(fileName("png"), png);
  });
  saveSvg.addEventListener("click", async () => {
    closeMenu();
    const reply = await ctx.proto.request({ kind: "svg", metric, ...(predictions?.shown() || {}) });
    if (reply.kind === "error") showError(slot, reply.message);
    else download(fileName("svg"), reply.svg, "image/svg+xml");
  });
  saveCsv.addEventListener("click", () => {
    closeMenu();
    const csv = (predictions || series)?.csv();
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

  // The x axis: steps, or wall-clock seconds since each run's first step.
  function timeToggle() {
    const b = h("button", { type: "button", class: "fl-button fl-toggle fl-small", testid: "x-time",
      title: "x axis: wall-clock seconds since each run's first step (fits and phases stay on steps)" }, "x: seconds");
    setPressed(b, view.x === "time");
    b.addEventListener("click", () => ctx.act("set_axes", { metric, x: view.x === "time" ? "step" : "time" }, slot));
    return b;
  }

  function drawAlso(state, chartLayer, viewed) {
    const also = view.also || [];
    const choices = overlayChoices(state, metric, chartLayer, viewed);
    const sig = JSON.stringify([choices, also, view.x || "step"]);
    if (alsoRow.dataset.sig === sig) return;
    alsoRow.dataset.sig = sig;
    alsoRow.hidden = ["activations", "predictions"].includes(metricKind(state, metric));
    replaceChildren(alsoRow, timeToggle(), choices.length ? h("span", { class: "fl-muted" }, "also draw") : null, choices.map((c) => {
      const b = h("button", { type: "button", class: "fl-button fl-toggle fl-small", testid: `overlay-${c.label.replace(/\s+/g, "-")}`,
        title: `Draw ${c.specs.join(", ")} on this chart's axes (dashed)` }, c.label);
      setPressed(b, c.specs.every((x) => also.includes(x)));
      b.addEventListener("click", () => ctx.act("overlay", { metric, also: toggleAlso(view.also || [], c.specs) }, slot));
      return b;
    }));
  }

  function update(nextView, state) {
    view = nextView;
    const kind = metricKind(state, metric);
    const viewed = state.view?.viewed || [];
    const perLayer = kind !== "scalar" && kind !== "predictions";
    const snapshotView = kind === "activations" || kind === "predictions"; // no step series
    el.classList.toggle("fl-enlarged", !!view.enlarged);
    setPressed(enlarge, view.enlarged);
    enlarge.textContent = view.enlarged ? "⤡" : "⤢";
    enlarge.title = view.enlarged ? "Shrink to half width" : "Enlarge to the whole row";
    enlarge.setAttribute("aria-label", `${view.enlarged ? "Shrink" : "Enlarge"} the ${metric} chart`);
    setPressed(logX, view.log_x);
    setPressed(logY, view.log_y);
    setValueUnlessFocused(smoothing, String(view.smoothing ?? 0));
    setValueUnlessFocused(xLo, fmtBound(view.x_range?.[0]));
    setValueUnlessFocused(xHi, fmtBound(view.x_range?.[1]));
    setValueUnlessFocused(yLo, fmtBound(view.y_range?.[0]));
    setValueUnlessFocused(yHi, fmtBound(view.y_range?.[1]));
    layer.el.hidden = !perLayer;
    if (perLayer) layer.update(state, view.layer, viewed);
    const labels = Object.assign({}, ...(state.experiments || []).map((e) =>
      ({ ...(e.point_labels || {}), ...(e.weight_labels || {}) })));
    subtitle.textContent = [view.layer ? labels[view.layer] || view.layer : "",
      viewed.length ? viewed.join(", ") : ""].filter(Boolean).join(" · ");

    const snapshotMethod = kind === "predictions"
      || (kind === "activations" && view.method && view.method !== "neuron_stats");
    drawAlso(state, perLayer ? view.layer : null, viewed);
    for (const b of [logX, logY, smoothLabel]) b.hidden = snapshotMethod;
    downloads.hidden = kind === "activations";
    band.value = view.band || "";
    band.hidden = snapshotView
      || !shownGroups(state, viewed, (e) => e).length; // no group of 2+ runs shown
    zoomBox.hidden = snapshotMethod;
    const fittable = kind === "scalar" || kind === "per_layer";
    fits.el.hidden = !fittable;
    // A card with fit tables takes the whole row: the table's equation and coefficients
    // need the width, and its chart is the one being studied.
    el.classList.toggle("fl-has-fits", fittable && chartFits(state, metric, perLayer ? view.layer : null).length > 0);

    if (kind === "predictions") {
      if (series) { series.destroy(); series = null; }
      if (activations) { activations.destroy(); activations = null; }
      if (!predictions) {
        body.textContent = "";
        predictions = createPredictionsBody(ctx);
        body.append(predictions.el);
      }
      hint.hidden = true;
      predictions.update(view, state, viewed);
      return;
    }
    if (predictions) { predictions.destroy(); predictions = null; body.textContent = ""; }
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
      series = createSeriesPlot(ctx, { metric, height, testid: "plot", zoomSlot, onDrawn: drawResiduals });
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
      also: view.also || [],
      fits: fittable ? chartFits(state, metric, layerName) : [],
      spans: fittable ? phaseSpans(state, metric, layerName, shown) : [] });
    if (fittable) fits.update(view, state, layerName, viewed);
  }

  return {
    el,
    metric,
    update,
    destroy() {
      if (series) series.destroy();
      if (residuals) residuals.destroy();
      if (activations) activations.destroy();
      if (predictions) predictions.destroy();
      fits.destroy();
      el.remove();
    },
  };
}
