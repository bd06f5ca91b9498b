// Experiments: the table (select one or several, run, cancel, progress) and the
// "New experiment" form.
import { h, replaceChildren } from "./dom.js";
import { errorSlot } from "./errors.js";
import { createExperimentEdit } from "./experiment-edit.js";
import { createExperimentForm } from "./experiment-form.js";
import { fmtValue } from "./format.js";
import { experimentColor } from "./facts.js";
import { createProgressTracker, now } from "./progress.js";

export const ACTIVE = ["running", "starting"];

/** Whether an experiment's latest run was cancelled and kept a checkpoint to continue
 *  from (lab_state's checkpoint_step). */
export function resumable(exp) {
  return exp.status === "cancelled" && exp.checkpoint_step != null;
}

/** The Run controls for the selected experiments: Run for those that can start, and for
 *  those with a cancelled run "Continue from step N" (resume) and "Start over" (force). */
export function runControls(selectedExps) {
  const cont = selectedExps.filter(resumable);
  const plain = selectedExps.filter((e) => !ACTIVE.includes(e.status) && !resumable(e));
  const count = (label, list) => (list.length > 1 ? `${label} (${list.length})` : label);
  return {
    run: { ids: plain.map((e) => e.id), hidden: cont.length > 0 && plain.length === 0,
      label: count("Run", plain) },
    resume: { ids: cont.map((e) => e.id), hidden: cont.length === 0,
      label: cont.length === 1 ? `Continue from step ${cont[0].checkpoint_step}` : count("Continue", cont) },
    restart: { ids: cont.map((e) => e.id), hidden: cont.length === 0,
      label: count("Start over", cont) },
  };
}

/** An experiment's earlier runs, for the status tooltip: a cancelled run stays reachable. */
function runsText(exp) {
  const runs = exp.runs || [];
  if (runs.length < 2) return "";
  return "Runs, oldest first:\n" + runs.map((r) => `${r.id}: ${r.status}, ${r.steps_done} steps`).join("\n");
}

/** A config as {path: value} for its leaves ("optimizer.lr": 0.001), the name left out. */
export function flatConfig(config, prefix = "") {
  const out = {};
  for (const [k, v] of Object.entries(config || {})) {
    const path = prefix + k;
    if (v && typeof v === "object" && !Array.isArray(v)) Object.assign(out, flatConfig(v, `${path}.`));
    else if (path !== "name") out[path] = v;
  }
  return out;
}

/** The config paths whose values are not the same for every experiment: what tells
 *  the rows apart (a sweep's knobs, a changed learning rate). */
export function differingPaths(experiments) {
  const flats = experiments.map((e) => flatConfig(e.config));
  const paths = [...new Set(flats.flatMap((f) => Object.keys(f)))];
  return paths.filter((p) => new Set(flats.map((f) => JSON.stringify(f[p] ?? null))).size > 1);
}

const short = (path) => path.split(".").pop();
const show = (v) => (Array.isArray(v) ? `[${v.join(", ")}]` : String(v));

/** "lr=0.003 · seed=2": an experiment's values of the differing paths. */
export function knobsText(exp, paths) {
  const flat = flatConfig(exp.config);
  return paths.map((p) => `${short(p)}=${show(flat[p])}`).join(" · ");
}

/** The rows to show, in order: those whose id, name, tags, model or knobs contain the filter
 *  text (case-insensitive), sorted by a column ({key, descending}); ties keep the lab's
 *  order. */
export function visibleRows(experiments, { filter = "", sort = null, paths = [] } = {}) {
  const needle = filter.trim().toLowerCase();
  const text = (e) => [e.id, e.name, ...(e.tags || []), e.label, knobsText(e, paths)].join(" ").toLowerCase();
  const rows = experiments.map((e, i) => ({ e, i })).filter(({ e }) => !needle || text(e).includes(needle));
  if (sort) {
    const value = (e) => (sort.key === "train" ? e.final?.train_loss : sort.key === "test" ? e.final?.test_loss
      : sort.key === "status" ? e.status : sort.key === "knobs" ? knobsText(e, paths) : null);
    rows.sort((a, b) => {
      const va = value(a.e);
      const vb = value(b.e);
      if (va == null && vb == null) return a.i - b.i;
      if (va == null) return 1; // no value: last, either way
      if (vb == null) return -1;
      const c = typeof va === "number" ? va - vb : String(va).localeCompare(String(vb), undefined, { numeric: true });
      return (sort.descending ? -c : c) || a.i - b.i;
    });
  }
  return rows.map(({ e }) => e);
}

/** The selection after clicking a row: plain click selects it alone; shift/ctrl/meta
 *  toggles it in the current selection. */
export function nextSelection(selected, id, additive) {
  if (!additive) return [id];
  return selected.includes(id) ? selected.filter((s) => s !== id) : [...selected, id];
}

export function createExperiments(ctx) {
  const slot = errorSlot("experiments-error");
  const newButton = h("button", { type: "button", class: "fl-button", testid: "new-experiment",
    "aria-expanded": "false" }, "New experiment");
  const run = h("button", { type: "button", class: "fl-button fl-primary", testid: "run" }, "Run");
  const resume = h("button", { type: "button", class: "fl-button fl-primary", testid: "continue",
    title: "Continue the cancelled run from its checkpoint, in a new run (the cancelled one stays)" },
  "Continue");
  const restart = h("button", { type: "button", class: "fl-button", testid: "start-over",
    title: "Train again from step 0" }, "Start over");
  const cancel = h("button", { type: "button", class: "fl-button", testid: "cancel" }, "Cancel");
  const notice = h("div", { class: "fl-notice-line", testid: "run-notice", "aria-live": "polite", hidden: true });
  const live = h("div", { class: "fl-live fl-muted", testid: "run-progress", "aria-live": "off", hidden: true });
  const tracker = createProgressTracker();
  const tbody = h("tbody");
  const empty = h("div", { class: "fl-empty" }, "No experiments yet: click New experiment.");
  // Sortable columns: a click sorts by it, a second click reverses, a third restores.
  const SORTABLE = { status: "status", knobs: "knobs", "train loss": "train", "test loss": "test" };
  let sort = null;
  const heads = ["", "id", "name", "model", "knobs", "status", "progress", "train loss", "test loss"].map((c, i) => {
    const key = SORTABLE[c];
    const th = h("th", { scope: "col", class: i === 0 ? "fl-swatch-col" : key ? "fl-sortable" : null,
      testid: key ? `sort-${key}` : null,
      title: key === "knobs" ? "The config values that differ between experiments; click to sort"
        : key ? `Sort by ${c}` : null }, c);
    if (key) {
      th.addEventListener("click", () => {
        sort = sort?.key !== key ? { key, descending: false } : !sort.descending ? { key, descending: true } : null;
        render();
      });
    }
    return th;
  });
  const table = h("table", { class: "fl-table fl-exp-table", testid: "experiments", role: "grid",
    "aria-multiselectable": "true" }, h("thead", {}, h("tr", {}, heads)), tbody);
  const filter = h("input", { type: "search", class: "fl-input fl-filter", testid: "filter-experiments",
    placeholder: "Filter", "aria-label": "Filter experiments", autocomplete: "off" });
  filter.addEventListener("input", () => render());
  const form = createExperimentForm(ctx);
  const edit = createExperimentEdit(ctx, slot);
  form.onToggle((open) => newButton.setAttribute("aria-expanded", open ? "true" : "false"));
  const el = h("section", { class: "fl-section", testid: "experiments-section", "aria-label": "Experiments" },
    h("div", { class: "fl-section-head" }, h("h3", {}, "Experiments"),
      h("div", { class: "fl-toolbar" }, newButton, run, resume, restart, cancel, filter)),
    edit.el, slot, notice, live, h("div", { class: "fl-table-wrap" }, table, empty), form.el);

  let state = {};
  const rows = new Map();
  const selected = () => state.view?.selected || [];

  const select = (id, additive) => {
    const next = nextSelection(selected(), id, additive);
    // Clicking the one selected row again changes nothing: no action, no cell.
    if (JSON.stringify(next) === JSON.stringify(selected())) return null;
    return ctx.act("select_experiments", { experiments: next }, slot);
  };

  newButton.addEventListener("click", () => form.setOpen(!form.isOpen()));
  const selectedExps = () => (state.experiments || []).filter((e) => selected().includes(e.id));
  // Each control acts on the selected experiments it applies to, as `update` labels it.
  const runEach = async (control, extra) => {
    showNotice(null);
    const ids = runControls(selectedExps())[control].ids;
    const replies = await Promise.all(ids.map((id) =>
      ctx.act("run", { experiment: id, background: true, ...extra }, slot)));
    // A finished run of the same config and code is reused, not retrained: say so, and
    // offer to train again (a forced run).
    const reused = ids.filter((id, i) => replies[i].kind !== "error" && replies[i].result?.reused);
    if (reused.length) showNotice(reused, replies.filter((r) => r.result?.reused).map((r) => r.result.run));
  };
  function showNotice(ids, runs = []) {
    notice.hidden = !ids;
    if (!ids) return replaceChildren(notice);
    const again = h("button", { type: "button", class: "fl-button fl-small", testid: "train-again",
      title: "Train again from step 0 (a new run; the reused one stays)" }, "Train again");
    again.addEventListener("click", () => {
      showNotice(null);
      for (const id of ids) ctx.act("run", { experiment: id, background: true, force: true }, slot);
    });
    const dismiss = h("button", { type: "button", class: "fl-button fl-small", "aria-label": "Dismiss" }, "×");
    dismiss.addEventListener("click", () => showNotice(null));
    const which = ids.length === 1 ? ids[0] : `${ids.length} experiments`;
    replaceChildren(notice, h("span", {}, `${which}: reused the finished run ${runs.join(", ")} ` +
      "(same config and statistics), nothing retrained."), again, dismiss);
  }
  run.addEventListener("click", () => runEach("run", {}));
  resume.addEventListener("click", () => runEach("resume", { resume: true }));
  restart.addEventListener("click", () => runEach("restart", { force: true }));
  cancel.addEventListener("click", () => {
    for (const id of selected()) {
      const exp = (state.experiments || []).find((e) => e.id === id);
      if (exp && ACTIVE.includes(exp.status)) ctx.act("cancel", { experiment: id }, slot);
    }
  });

  function makeRow(id) {
    const cells = {
      swatch: h("span", { class: "fl-swatch" }),
      id: h("td", { class: "fl-mono" }),
      name: h("span", {}),
      tags: h("span", { class: "fl-tags" }),
      label: h("td", { class: "fl-label-cell" }),
      knobs: h("td", { class: "fl-knobs fl-mono" }),
      status: h("span", { class: "fl-status" }),
      bar: h("span", { class: "fl-bar-fill" }),
      pct: h("span", { class: "fl-pct" }),
      train: h("td", { class: "fl-num" }),
      test: h("td", { class: "fl-num" }),
    };
    const progress = h("span", { class: "fl-bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" }, cells.bar);
    const tr = h("tr", { class: "fl-row", tabindex: "0", testid: `exp-row-${id}`, dataset: { id } },
      h("td", { class: "fl-swatch-col" }, cells.swatch), cells.id,
      h("td", { class: "fl-name" }, cells.name, cells.tags), cells.label, cells.knobs,
      h("td", {}, cells.status), h("td", { class: "fl-progress-cell" }, progress, cells.pct),
      cells.train, cells.test);
    tr.addEventListener("click", (e) => select(id, e.shiftKey || e.ctrlKey || e.metaKey));
    tr.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        select(id, e.shiftKey || e.ctrlKey || e.metaKey);
      } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const sib = e.key === "ArrowDown" ? tr.nextElementSibling : tr.previousElementSibling;
        if (sib) sib.focus();
      }
    });
    return { tr, cells, progress };
  }

  let paths = [];

  function updateRow(row, exp) {
    const { cells, tr, progress } = row;
    const isSelected = selected().includes(exp.id);
    tr.classList.toggle("fl-selected", isSelected);
    tr.setAttribute("aria-selected", isSelected ? "true" : "false");
    cells.swatch.style.background = experimentColor(state, exp.id);
    cells.id.textContent = exp.id;
    cells.name.textContent = exp.name || (exp.based_on ? `from ${exp.based_on}` : "");
    cells.name.parentElement.title = [exp.name, ...(exp.tags || [])].filter(Boolean).join("\n");
    const tagSig = (exp.tags || []).join("\n");
    if (cells.tags.dataset.sig !== tagSig) {
      cells.tags.dataset.sig = tagSig;
      replaceChildren(cells.tags, (exp.tags || []).map((t) => h("span", { class: "fl-tag" }, t)));
    }
    cells.label.textContent = exp.label;
    cells.label.title = [exp.label, exp.data_label, exp.optimizer_label].join("\n");
    cells.knobs.textContent = knobsText(exp, paths);
    cells.status.textContent = exp.status;
    cells.status.className = `fl-status fl-status-${exp.status}`;
    const problems = [exp.error, ...Object.entries(exp.stat_errors || {}).map(([k, v]) => `${k}: ${v}`)]
      .filter(Boolean).join("\n");
    cells.status.title = [problems, runsText(exp)].filter(Boolean).join("\n\n");
    cells.status.classList.toggle("fl-has-problem", !!problems);
    const pct = Math.round(100 * Math.max(0, Math.min(1, exp.progress || 0)));
    cells.bar.style.width = `${pct}%`;
    progress.setAttribute("aria-valuenow", String(pct));
    progress.setAttribute("aria-label", `${exp.id} progress`);
    cells.pct.textContent = `${pct}%`;
    cells.pct.parentElement.title = ACTIVE.includes(exp.status) ? tracker.line(exp.id)
      : `${exp.steps_done.toLocaleString("en-US")} steps`;
    cells.train.textContent = fmtValue(exp.final?.train_loss);
    cells.test.textContent = fmtValue(exp.final?.test_loss);
  }

  /** The rows: filtered and sorted as asked, in the table's order. */
  function render() {
    const exps = state.experiments || [];
    paths = differingPaths(exps);
    const ids = new Set(exps.map((e) => e.id));
    for (const [id, row] of rows) if (!ids.has(id)) { row.tr.remove(); rows.delete(id); }
    const focused = document.activeElement;
    const shown = visibleRows(exps, { filter: filter.value, sort, paths });
    const shownIds = new Set(shown.map((e) => e.id));
    exps.forEach((exp) => {
      if (!rows.has(exp.id)) rows.set(exp.id, makeRow(exp.id));
      const row = rows.get(exp.id);
      updateRow(row, exp);
      row.tr.hidden = !shownIds.has(exp.id);
    });
    shown.forEach((exp, i) => {
      const tr = rows.get(exp.id).tr;
      if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
    });
    for (const th of heads) {
      const key = th.dataset.testid?.replace("sort-", "");
      th.setAttribute("aria-sort", sort && sort.key === key ? (sort.descending ? "descending" : "ascending") : "none");
    }
    if (focused && focused !== document.activeElement && el.contains(focused)) focused.focus();
  }

  /** Steps, speed and time left of the running experiments, above the table. */
  function track(exps) {
    const t = now();
    const running = exps.filter((e) => ACTIVE.includes(e.status));
    for (const e of exps) {
      if (ACTIVE.includes(e.status)) tracker.observe(e.id, e.steps_done, e.config?.optimizer?.steps ?? 0, t);
      else tracker.forget(e.id);
    }
    live.hidden = running.length === 0;
    const shown = running.slice(0, 3).map((e) => `${e.id}: ${tracker.line(e.id)}`);
    if (running.length > 3) shown.push(`and ${running.length - 3} more running`);
    live.textContent = shown.join("   ·   ");
  }

  return {
    el,
    form,
    update(next) {
      state = next;
      track(state.experiments || []);
      render();
      const exps = state.experiments || [];
      empty.hidden = exps.length > 0;
      const sel = exps.filter((e) => selected().includes(e.id));
      const controls = runControls(sel);
      for (const [button, control] of [[run, controls.run], [resume, controls.resume],
        [restart, controls.restart]]) {
        button.hidden = control.hidden;
        button.disabled = control.ids.length === 0;
        button.textContent = control.label;
      }
      cancel.disabled = !sel.some((e) => ACTIVE.includes(e.status));
      edit.update(sel);
      form.update(state);
    },
    destroy() {
      replaceChildren(el);
    },
  };
}
