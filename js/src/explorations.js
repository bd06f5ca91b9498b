// Explorations: an agent's (or a proposer's) search, live. For each: how much of its menu
// it has covered (per knob), how often it repeats itself (overall and lately), its keeps
// and longest plateau, and a chart of each iteration's value with the best so far. The
// numbers are the kernel's (featurelab.trajectory.metrics), recomputed every iteration.
import { h, replaceChildren } from "./dom.js";
import { fmtG } from "./format.js";
import { createPlot } from "./plot.js";

const pct = (v) => (v == null ? "–" : `${Math.round(100 * v)}%`);

/** One line of numbers people read first. */
export function summaryText(e) {
  const n = e.iterations.length;
  const best = e.best == null ? "none yet" : `${fmtG(e.best, 4)} (${e.best_experiment})`;
  const at = (i) => (i == null ? "–" : `#${i}`);
  const lag = e.mean_repeat_lag == null ? "" : `, lag ${fmtG(e.mean_repeat_lag, 3)}`;
  return `${n} iteration${n === 1 ? "" : "s"} · knobs ${pct(e.knob_coverage)} · pairs ${pct(e.pair_coverage)}`
    + ` · repeats ${pct(e.repeat_rate)} (last 10: ${pct(e.recent_repeat_rate)}${lag})`
    + (e.refused ? ` · ${e.refused} refused` : "")
    + ` · ${e.keeps} kept (${pct(e.keep_rate)}; first ${at(e.time_to_first_keep)}, best ${at(e.time_to_best_keep)})`
    + ` · longest plateau ${e.longest_plateau} · best ${e.metric} ${best}`;
}

/** The chart's data: x = iteration; each judged value, and the best so far as a line. */
// Two colours that read on light and dark backgrounds alike.
const VALUE = "#ea580c";
const BEST = "#2563eb";

export function explorationPlot(e) {
  const xs = e.iterations.map((it) => it.iteration);
  return {
    data: [xs, e.iterations.map((it) => it.value), e.iterations.map((it) => it.best)],
    specs: [
      { label: e.metric, experiment: `${e.metric} of each iteration`, color: VALUE,
        alpha: 0.9, width: 1, points: true },
      { label: "best so far", experiment: "best so far", color: BEST, alpha: 1, width: 2 },
    ],
    bands: [],
  };
}

export function createExplorations(ctx) {
  const rows = h("div", { class: "fl-explorations", testid: "explorations" });
  const el = h("section", { class: "fl-section", testid: "explorations-section", "aria-label": "Explorations" },
    h("div", { class: "fl-section-head" }, h("h3", {}, "Explorations")), rows);
  el.hidden = true;
  const built = new Map();

  function card(e) {
    const title = h("strong", { class: "fl-mono" }, e.id);
    const about = h("span", { class: "fl-muted" });
    const summary = h("div", { class: "fl-note", testid: `exploration-summary-${e.id}` });
    const coverage = h("table", { class: "fl-table fl-coverage", testid: `exploration-coverage-${e.id}` });
    const plot = createPlot({ height: 160, theme: ctx.theme(), xLabel: "iteration", testid: `exploration-plot-${e.id}` });
    const el = h("div", { class: "fl-exploration", testid: `exploration-${e.id}` },
      h("div", { class: "fl-sweep-head" }, title, about), summary,
      h("div", { class: "fl-exploration-body" }, h("div", { class: "fl-coverage-wrap" }, coverage), plot.el));
    return { el, about, summary, coverage, plot, sig: null };
  }

  return {
    el,
    update(state) {
      const explorations = state.explorations || [];
      el.hidden = !explorations.length;
      for (const e of explorations) {
        if (!built.has(e.id)) built.set(e.id, card(e));
        const c = built.get(e.id);
        const sig = JSON.stringify(e);
        if (c.sig === sig) continue;
        c.sig = sig;
        c.about.textContent = `${e.name ? `'${e.name}' · ` : ""}${e.goal}imise ${e.metric} from ${e.base}`
          + (e.rail ? " · repeats refused" : "");
        c.summary.textContent = summaryText(e);
        replaceChildren(c.coverage, h("thead", {}, h("tr", {}, h("th", {}, "knob"), h("th", {}, "tried"))),
          h("tbody", {}, e.coverage.map((k) => h("tr", { title: `${k.tried} of ${k.values} values tried` },
            h("td", { class: "fl-mono" }, k.knob),
            h("td", {}, h("span", { class: "fl-bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
              "aria-valuenow": String(Math.round(100 * k.tried / Math.max(1, k.values))), "aria-label": `${k.knob} coverage` },
            h("span", { class: "fl-bar-fill", style: { width: `${Math.round(100 * k.tried / Math.max(1, k.values))}%` } })),
            ` ${k.tried}/${k.values}`)))));
        c.plot.draw(explorationPlot(e), { theme: ctx.theme(), emptyText: "No iteration judged yet" });
      }
      for (const id of [...built.keys()]) {
        if (!explorations.some((e) => e.id === id)) { built.get(id).plot.destroy(); built.delete(id); }
      }
      replaceChildren(rows, explorations.map((e) => built.get(e.id).el));
    },
    destroy() {
      for (const c of built.values()) c.plot.destroy();
    },
  };
}
