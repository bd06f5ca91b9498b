// Experiments: the table (select one or several, run, cancel, progress) and the
// "New experiment" form.
import { h, replaceChildren } from "./dom.js";
import { errorSlot } from "./errors.js";
import { createExperimentForm } from "./experiment-form.js";
import { fmtValue } from "./format.js";
import { experimentColor } from "./facts.js";

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
  const tbody = h("tbody");
  const empty = h("div", { class: "fl-empty" }, "No experiments yet: click New experiment.");
  const table = h("table", { class: "fl-table fl-exp-table", testid: "experiments", role: "grid",
    "aria-multiselectable": "true" },
  h("thead", {}, h("tr", {},
    ["", "id", "name", "model", "status", "progress", "train loss", "test loss"].map((c, i) =>
      h("th", { scope: "col", class: i === 0 ? "fl-swatch-col" : null }, c)))),
  tbody);
  const form = createExperimentForm(ctx);
  form.onToggle((open) => newButton.setAttribute("aria-expanded", open ? "true" : "false"));
  const el = h("section", { class: "fl-section", testid: "experiments-section", "aria-label": "Experiments" },
    h("div", { class: "fl-section-head" }, h("h3", {}, "Experiments"),
      h("div", { class: "fl-toolbar" }, newButton, run, resume, restart, cancel)),
    slot, h("div", { class: "fl-table-wrap" }, table, empty), form.el);

  let state = {};
  const rows = new Map();
  const selected = () => state.view?.selected || [];

  const select = (id, additive) =>
    ctx.act("select_experiments", { experiments: nextSelection(selected(), id, additive) }, slot);

  newButton.addEventListener("click", () => form.setOpen(!form.isOpen()));
  const selectedExps = () => (state.experiments || []).filter((e) => selected().includes(e.id));
  // Each control acts on the selected experiments it applies to, as `update` labels it.
  const runEach = (control, extra) => {
    for (const id of runControls(selectedExps())[control].ids) {
      ctx.act("run", { experiment: id, background: true, ...extra }, slot);
    }
  };
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
      name: h("td", { class: "fl-name" }),
      label: h("td", { class: "fl-label-cell" }),
      status: h("span", { class: "fl-status" }),
      bar: h("span", { class: "fl-bar-fill" }),
      pct: h("span", { class: "fl-pct" }),
      train: h("td", { class: "fl-num" }),
      test: h("td", { class: "fl-num" }),
    };
    const progress = h("span", { class: "fl-bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" }, cells.bar);
    const tr = h("tr", { class: "fl-row", tabindex: "0", testid: `exp-row-${id}`, dataset: { id } },
      h("td", { class: "fl-swatch-col" }, cells.swatch), cells.id, cells.name, cells.label,
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

  function updateRow(row, exp) {
    const { cells, tr, progress } = row;
    const isSelected = selected().includes(exp.id);
    tr.classList.toggle("fl-selected", isSelected);
    tr.setAttribute("aria-selected", isSelected ? "true" : "false");
    cells.swatch.style.background = experimentColor(state, exp.id);
    cells.id.textContent = exp.id;
    cells.name.textContent = exp.name || (exp.based_on ? `from ${exp.based_on}` : "");
    cells.label.textContent = exp.label;
    cells.label.title = [exp.label, exp.data_label, exp.optimizer_label].join("\n");
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
    cells.train.textContent = fmtValue(exp.final?.train_loss);
    cells.test.textContent = fmtValue(exp.final?.test_loss);
  }

  return {
    el,
    form,
    update(next) {
      state = next;
      const exps = state.experiments || [];
      const ids = new Set(exps.map((e) => e.id));
      for (const [id, row] of rows) if (!ids.has(id)) { row.tr.remove(); rows.delete(id); }
      const focused = document.activeElement;
      exps.forEach((exp, i) => {
        if (!rows.has(exp.id)) rows.set(exp.id, makeRow(exp.id));
        const row = rows.get(exp.id);
        updateRow(row, exp);
        if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] || null);
      });
      if (focused && focused !== document.activeElement && el.contains(focused)) focused.focus();
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
      form.update(state);
    },
    destroy() {
      replaceChildren(el);
    },
  };
}
