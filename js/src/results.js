// Results: "View results" for the selection, the metric list of the viewed experiments
// (a statistic recorded on several layers listed once), and one chart card per open chart.
import { h, replaceChildren, setPressed } from "./dom.js";
import { errorSlot } from "./errors.js";
import { createChartCard } from "./chart.js";

/** Metric names of the viewed experiments' observables, in order, "name@point" as name. */
export function metricList(state) {
  const viewed = state.view?.viewed || [];
  const names = [];
  for (const e of state.experiments || []) {
    if (!viewed.includes(e.id)) continue;
    for (const o of e.observables || []) names.push(o.split("@")[0]);
  }
  // charts opened from code on metrics the viewed experiments do not record stay listed
  for (const m of Object.keys(state.view?.charts || {})) names.push(m);
  return [...new Set(names)];
}

/** Which cards take a whole row, for cards in order that each either span the row
 *  (enlarged, with fits) or take one of `cols` columns: a card that would sit alone in
 *  its row spans it too, so no half row stays empty. */
export function wideCards(spans, cols) {
  const wide = spans.slice();
  if (cols < 2) return wide.map(() => true);
  let i = 0;
  while (i < wide.length) {
    if (wide[i]) { i += 1; continue; }
    let run = 0; // a run of half-width cards between full-row ones
    while (i + run < wide.length && !wide[i + run]) run += 1;
    if (run % cols) wide[i + run - 1] = true; // the last of an odd run would be alone
    i += run;
  }
  return wide;
}

export function createResults(ctx) {
  const slot = errorSlot("results-error");
  const viewButton = h("button", { type: "button", class: "fl-button fl-primary", testid: "view-results" }, "View results");
  const viewing = h("span", { class: "fl-muted", testid: "viewing" });
  const metrics = h("div", { class: "fl-metrics", role: "group", "aria-label": "Metrics", testid: "metric-list" });
  const grid = h("div", { class: "fl-charts" });
  const empty = h("div", { class: "fl-empty" });
  const el = h("section", { class: "fl-section", testid: "results-section", "aria-label": "Results" },
    h("div", { class: "fl-section-head" }, h("h3", {}, "Results"), h("div", { class: "fl-toolbar" }, viewButton, viewing)),
    slot, metrics, empty, grid);
  const cards = new Map();
  let state = {};

  // How many columns the grid has (CSS decides from the width): the lone card of a row
  // spans it. Measured again when the panel is resized.
  function layout() {
    const els = [...grid.children];
    if (!els.length) return;
    const template = typeof getComputedStyle === "function" ? getComputedStyle(grid).gridTemplateColumns : "";
    const cols = Math.max(1, (template || "").split(" ").filter((t) => t && t !== "none").length);
    const wide = wideCards(els.map((c) => c.classList.contains("fl-enlarged") || c.classList.contains("fl-has-fits")), cols);
    els.forEach((c, i) => c.classList.toggle("fl-wide", wide[i] && cols > 1));
  }
  let resize = null;
  if (typeof ResizeObserver !== "undefined") {
    resize = new ResizeObserver(() => layout());
    resize.observe(grid);
  }

  viewButton.addEventListener("click", () =>
    ctx.act("view_results", { experiments: state.view?.selected || [] }, slot));

  return {
    el,
    cards,
    update(next) {
      state = next;
      const selected = state.view?.selected || [];
      const viewed = state.view?.viewed || [];
      viewButton.disabled = !selected.length;
      viewButton.textContent = selected.length ? `View results (${selected.join(", ")})` : "View results";
      viewing.textContent = viewed.length ? `showing ${viewed.join(", ")}` : "";
      const charts = state.view?.charts || {};
      const names = metricList(state);
      const sig = JSON.stringify(names);
      if (metrics.dataset.sig !== sig) {
        metrics.dataset.sig = sig;
        replaceChildren(metrics, names.map((name) => {
          const b = h("button", { type: "button", class: "fl-button fl-metric fl-toggle", testid: `metric-${name}` }, name);
          b.addEventListener("click", () => ctx.act("open_chart", { metric: name }, slot));
          return b;
        }));
      }
      for (const b of metrics.children) setPressed(b, b.textContent in charts);
      empty.textContent = !viewed.length ? "Select experiments and click View results."
        : !Object.keys(charts).length ? "Click a metric to open its chart." : "";
      empty.hidden = !empty.textContent;

      for (const [metric, card] of cards) {
        if (!(metric in charts)) {
          card.destroy();
          cards.delete(metric);
        }
      }
      Object.keys(charts).forEach((metric, i) => {
        if (!cards.has(metric)) cards.set(metric, createChartCard(ctx, metric));
        const card = cards.get(metric);
        if (grid.children[i] !== card.el) grid.insertBefore(card.el, grid.children[i] || null);
        card.update(charts[metric], state);
      });
      layout();
    },
    redraw() {
      for (const [metric, card] of cards) card.update(state.view.charts[metric], state);
    },
    destroy() {
      if (resize) resize.disconnect();
      for (const card of cards.values()) card.destroy();
      cards.clear();
    },
  };
}
