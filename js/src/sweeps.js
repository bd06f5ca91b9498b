// Sweeps: one row per sweep (its knobs, members and groups, where its runs stand), with
// Run (trains the members without a finished run, in the background, on worker
// processes), Stop (no member starts any more; the running ones are cancelled) and Show
// (selects its members and views their results, so the charts can band its groups).
import { h, replaceChildren } from "./dom.js";
import { errorSlot, showError } from "./errors.js";

const ORDER = ["finished", "running", "starting", "cancelled", "diverged", "failed", "interrupted", "not run"];

/** "12 finished · 2 running · 2 not run" from a sweep's counts. */
export function countsText(counts) {
  const keys = Object.keys(counts || {}).sort((a, b) => {
    const i = ORDER.indexOf(a);
    const j = ORDER.indexOf(b);
    return (i < 0 ? 99 : i) - (j < 0 ? 99 : j);
  });
  return keys.map((k) => `${counts[k]} ${k}`).join(" · ");
}

/** The fraction of a sweep's members whose latest run has ended (finished or not). */
export function doneFraction(sweep) {
  const counts = sweep.counts || {};
  const total = (sweep.members || []).length || 1;
  const ended = Object.entries(counts)
    .filter(([k]) => !["running", "starting", "not run"].includes(k))
    .reduce((a, [, v]) => a + v, 0);
  return ended / total;
}

/** Each member's place in the sweep's strip: its status and progress (0-1), from the
 *  experiments' rows; a member without a row (deleted) is left out. */
export function memberProgress(sweep, experiments) {
  const rows = new Map((experiments || []).map((e) => [e.id, e]));
  return (sweep.members || []).filter((m) => rows.has(m)).map((m) => {
    const e = rows.get(m);
    return { id: m, status: e.status, progress: Math.max(0, Math.min(1, e.progress || 0)),
      name: e.name || "", steps: e.steps_done || 0 };
  });
}

export function createSweeps(ctx) {
  const slot = errorSlot("sweeps-error");
  const rows = h("div", { class: "fl-sweeps", testid: "sweeps" });
  const el = h("section", { class: "fl-section", testid: "sweeps-section", "aria-label": "Sweeps" },
    h("div", { class: "fl-section-head" }, h("h3", {}, "Sweeps")), slot, rows);
  el.hidden = true;
  const built = new Map();

  function row(sweep) {
    const title = h("strong", { class: "fl-mono" });
    const name = h("span", { class: "fl-name" });
    const knobs = h("span", { class: "fl-muted" });
    const fill = h("span", { class: "fl-bar-fill" });
    const bar = h("span", { class: "fl-bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
      "aria-label": `${sweep.id} progress` }, fill);
    const counts = h("span", { class: "fl-muted", testid: `sweep-counts-${sweep.id}` });
    const run = h("button", { type: "button", class: "fl-button fl-primary", testid: `sweep-run-${sweep.id}`,
      title: "Train the members without a finished run on worker processes (cancelled ones continue)" }, "Run");
    const stop = h("button", { type: "button", class: "fl-button", testid: `sweep-stop-${sweep.id}`,
      title: "Start no more members and cancel the running ones" }, "Stop");
    const show = h("button", { type: "button", class: "fl-button", testid: `sweep-show-${sweep.id}`,
      title: "Select its members and view their results" }, "Show");
    run.addEventListener("click", () => ctx.act("run_sweep", { sweep: sweep.id, background: true }, slot));
    stop.addEventListener("click", async () => {
      const reply = await ctx.proto.request({ kind: "stop_sweep", sweep: sweep.id });
      showError(slot, reply.kind === "error" ? reply.message : "");
    });
    show.addEventListener("click", async () => {
      const reply = await ctx.act("select_experiments", { experiments: sweep.members }, slot);
      if (reply.kind !== "error") ctx.act("view_results", { experiments: sweep.members }, slot);
    });
    // One small bar per member: its status as colour, its progress as fill.
    const strip = h("div", { class: "fl-member-strip", testid: `sweep-members-${sweep.id}`,
      role: "list", "aria-label": `${sweep.id} members` });
    const el = h("div", { class: "fl-sweep", testid: `sweep-${sweep.id}` },
      h("div", { class: "fl-sweep-head" }, title, name, knobs),
      h("div", { class: "fl-toolbar" }, bar, counts, run, stop, show), strip);
    return { el, title, name, knobs, fill, bar, counts, run, stop, strip, cells: new Map() };
  }

  function drawMembers(r, members) {
    const sig = members.map((m) => m.id).join(",");
    if (r.strip.dataset.sig !== sig) {
      r.strip.dataset.sig = sig;
      r.cells.clear();
      replaceChildren(r.strip, members.map((m) => {
        const fill = h("span", { class: "fl-member-fill" });
        const cell = h("span", { class: "fl-member", role: "listitem", testid: `member-${m.id}` }, fill);
        r.cells.set(m.id, { cell, fill });
        return cell;
      }));
    }
    for (const m of members) {
      const { cell, fill } = r.cells.get(m.id);
      cell.className = `fl-member fl-member-${m.status.replace(/\s+/g, "-")}`;
      fill.style.width = `${Math.round(100 * (m.status === "finished" ? 1 : m.progress))}%`;
      cell.title = `${m.id}${m.name ? ` ${m.name}` : ""}: ${m.status}` +
        (m.status === "not run" || m.status === "new" ? ""
          : `, ${m.steps.toLocaleString("en-US")} steps (${Math.round(100 * m.progress)}%)`);
    }
  }

  return {
    el,
    update(state) {
      const sweeps = state.sweeps || [];
      el.hidden = !sweeps.length;
      const ids = sweeps.map((s) => s.id);
      for (const id of [...built.keys()]) if (!ids.includes(id)) built.delete(id);
      for (const sweep of sweeps) {
        if (!built.has(sweep.id)) built.set(sweep.id, row(sweep));
        const r = built.get(sweep.id);
        const groups = Object.keys(sweep.groups || {}).length;
        r.title.textContent = sweep.id;
        r.name.textContent = sweep.name ? `'${sweep.name}'` : "";
        r.knobs.textContent = `${sweep.members.length} members in ${groups} group${groups === 1 ? "" : "s"}, `
          + `varying ${sweep.knobs.join(", ")}; based on ${sweep.base}`;
        const pct = Math.round(100 * doneFraction(sweep));
        r.fill.style.width = `${pct}%`;
        r.bar.setAttribute("aria-valuenow", String(pct));
        r.counts.textContent = countsText(sweep.counts);
        const todo = sweep.members.length - ((sweep.counts || {}).finished || 0) - ((sweep.counts || {}).diverged || 0);
        r.run.disabled = sweep.running || todo <= 0;
        r.run.textContent = todo > 0 && !sweep.running ? `Run (${todo})` : "Run";
        r.stop.disabled = !sweep.running;
        drawMembers(r, memberProgress(sweep, state.experiments));
      }
      replaceChildren(rows, sweeps.map((s) => built.get(s.id).el));
    },
    destroy() {},
  };
}
