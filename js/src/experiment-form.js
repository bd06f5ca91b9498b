// The "New experiment" form: pre-filled from the selected experiment's config (or the
// defaults); creating sends create_experiment with based_on and only what changed, or a
// full config when nothing is selected.
import { fillSelect, h } from "./dom.js";
import { clearErrors, errorSlot, placeError } from "./errors.js";

const REGRESSION = ["sin2", "formula", "teacher"];

/** The config fields the form edits: path, label, kind, and the tasks it applies to. */
export const FIELDS = [
  { path: "model.kind", label: "Model", kind: "select", options: (s) => s.options?.model_kinds },
  { path: "model.widths", label: "Widths", kind: "list", hint: "input, hidden…, output" },
  { path: "model.activation", label: "Activation", kind: "select", options: (s) => s.options?.activations },
  { path: "model.init_scale", label: "Init scale", kind: "number", optional: true, hint: "1 = PyTorch's init" },
  { path: "data.task", label: "Task", kind: "select", options: (s) => s.options?.tasks },
  { path: "data.dim", label: "Input dim", kind: "number", tasks: REGRESSION },
  { path: "data.freq", label: "Frequency", kind: "number", tasks: ["sin2"] },
  { path: "data.formula", label: "Formula", kind: "text", tasks: ["formula"], hint: "e.g. sum(sin(10*x)**2)" },
  { path: "data.n_train", label: "Train samples", kind: "number", tasks: REGRESSION },
  { path: "data.n_test", label: "Test samples", kind: "number", tasks: REGRESSION },
  { path: "data.p", label: "Modulus p", kind: "number", tasks: ["modular"] },
  { path: "data.op", label: "Operation", kind: "select", options: (s) => s.options?.modular_ops, tasks: ["modular"] },
  { path: "data.train_frac", label: "Train fraction", kind: "number", tasks: ["modular"] },
  { path: "optimizer.name", label: "Optimizer", kind: "select", options: (s) => s.options?.optimizers },
  { path: "optimizer.lr", label: "Learning rate", kind: "number" },
  { path: "optimizer.steps", label: "Steps", kind: "number" },
  { path: "optimizer.weight_decay", label: "Weight decay", kind: "number", optional: true },
  { path: "optimizer.adamw_lr", label: "AdamW lr", kind: "number", optional: true, hint: "muon: 0 = lr" },
  { path: "optimizer.batch_size", label: "Batch size", kind: "number", optional: true, hint: "0 = full batch" },
  { path: "optimizer.warmup_steps", label: "Warmup steps", kind: "number", optional: true },
  { path: "optimizer.schedule", label: "Schedule", kind: "select", optional: true, options: (s) => s.options?.schedules },
  { path: "loss", label: "Loss", kind: "select", options: (s) => s.options?.losses },
  { path: "seed", label: "Seed", kind: "number" },
  { path: "eval_every", label: "Eval every", kind: "number", optional: true, hint: "test metrics every N steps" },
  { path: "stop", label: "Stop when", kind: "stop", optional: true, hint: "test_accuracy > 0.99 for 100" },
  { path: "name", label: "Name", kind: "text", hint: "optional" },
];

const GROUPS = [["Model", "model."], ["Data", "data."], ["Optimizer", "optimizer."],
  ["Training", ""]];

export const testidOf = (path) => `cfg-${path.replace(/\./g, "-")}`;

function getPath(obj, path) {
  return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

/** Text typed into a number box as a number; text that is not one is kept as text so the
 *  engine's error names the field ("optimizer.lr: got 'abc'; allowed: ..."). */
export function parseNumber(text) {
  const t = String(text).trim();
  if (t === "") return null;
  if (/^[-+]?\d+$/.test(t)) return parseInt(t, 10);
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

export function parseList(text) {
  return String(text).split(",").map((s) => s.trim()).filter((s) => s !== "").map(parseNumber);
}

/** An early stop ({metric, when, value, for_steps}) in its short spelling, "" for none. */
export function stopText(stop) {
  if (!stop || typeof stop !== "object" || !stop.metric) return typeof stop === "string" ? stop : "";
  const steps = stop.for_steps > 1 ? ` for ${stop.for_steps}` : "";
  return `${stop.metric} ${stop.when === "below" ? "<" : ">"} ${stop.value}${steps}`;
}

export function formatValue(field, value) {
  if (field.kind === "stop") return stopText(value);
  if (value == null) return "";
  if (field.kind === "list") return (value || []).join(", ");
  return String(value);
}

// A field's value as the form compares it with the config it started from.
const comparable = (field, value) => (field.kind === "stop" ? stopText(value).trim() : value);

// -- sweeps: a field holding several values makes the form create a sweep ---------------

const SPACES = {
  logspace: (a, b, n) => Array.from({ length: n }, (_, i) => 10 ** (n === 1 ? a : a + (i * (b - a)) / (n - 1))),
  linspace: (a, b, n) => Array.from({ length: n }, (_, i) => (n === 1 ? a : a + (i * (b - a)) / (n - 1))),
};

/** Rounds away float noise (10 ** -3.5 → 0.000316228) so values read as typed. */
const tidy = (v) => Number(v.toPrecision(6));

/** The values a field's text asks for: "1e-4, 3e-4, 1e-3", "logspace(-4, -2, 5)",
 *  "linspace(0, 1, 3)", "range(2, 10, 2)" for numbers; alternatives split by "|" for a
 *  list ("10, 50, 1 | 10, 100, 1"); one value otherwise. Throws an Error saying what
 *  it cannot read. */
export function knobValues(field, text) {
  const t = String(text).trim();
  if (field.kind === "list") {
    const parts = t.split("|").map((p) => p.trim()).filter(Boolean);
    return parts.length ? parts.map(parseList) : [parseList(t)];
  }
  if (field.kind !== "number") return [t];
  const m = t.match(/^(logspace|linspace|range)\s*\(([^)]*)\)$/);
  if (m) {
    const args = m[2].split(",").map((a) => Number(a.trim()));
    if (args.some((a) => !Number.isFinite(a))) throw new Error(`${m[1]}(...) takes numbers`);
    if (m[1] === "range") {
      const [a, b, step = 1] = args.length === 1 ? [0, args[0]] : args;
      if (!(step > 0) || args.length > 3) throw new Error("range(stop), range(start, stop) or range(start, stop, step > 0)");
      const out = [];
      for (let v = a; v < b && out.length <= 10000; v += step) out.push(v);
      return out;
    }
    const [a, b, n] = args;
    if (args.length !== 3 || !Number.isInteger(n) || n < 1) throw new Error(`${m[1]}(start, stop, count)`);
    return SPACES[m[1]](a, b, n).map(tidy);
  }
  if (t.includes(",")) return t.split(",").map((p) => p.trim()).filter(Boolean).map(parseNumber);
  return [parseNumber(t)];
}

/** The seeds a sweep's seed box asks for: "0-7", "range(8)", "0, 1, 2"; [] when empty. */
export function seedValues(text) {
  const t = String(text).trim();
  if (!t) return [];
  const dash = t.match(/^(\d+)\s*-\s*(\d+)$/);
  if (dash) {
    const [a, b] = [Number(dash[1]), Number(dash[2])];
    if (b < a) throw new Error(`seeds ${t}: the last is before the first`);
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  }
  const values = knobValues({ kind: "number" }, t);
  if (values.some((v) => !Number.isInteger(v))) throw new Error(`seeds ${t}: whole numbers, e.g. 0-7`);
  return values;
}

/** The sweep action's params for the form's raw texts, or null when no field holds
 *  several values and no seeds are given (a single experiment). texts: path -> text;
 *  base: the config the form started from; baseId: the experiment it is based on.
 *  Fields changed to one value become one-value knobs (every member has it). */
export function sweepParams(texts, { base, baseId, seeds = "", name = "", task } = {}) {
  const grid = {};
  let several = false;
  for (const f of FIELDS) {
    if (f.path === "name" || f.path === "seed" || !fieldApplies(f, task)) continue;
    if (!(f.path in texts)) continue;
    const values = knobValues(f, texts[f.path]);
    if (values.length > 1) several = true;
    if (values.length > 1 || !equal(comparable(f, values[0]), comparable(f, getPath(base, f.path)))) {
      grid[f.path] = values;
    }
  }
  const seedList = seedValues(seeds);
  if (!several && !seedList.length) return null;
  const count = Object.values(grid).reduce((a, v) => a * v.length, 1) * Math.max(1, seedList.length);
  const params = { based_on: baseId };
  if (Object.keys(grid).length) params.grid = grid;
  if (seedList.length) params.seeds = seedList;
  if (name) params.name = name;
  return { params, count };
}

function equal(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Scalar observables, then every statistic, then any other entry of the base config
 *  (e.g. "active_rate@layers.1.post"). */
export function observableChoices(state, base = []) {
  const names = [...(state.options?.observables || []), ...(state.statistics || []).map((s) => s.name)];
  for (const o of base) if (!names.includes(o)) names.push(o);
  return [...new Set(names)];
}

/** Which fields the form shows for a task. */
export function fieldApplies(field, task) {
  return !field.tasks || field.tasks.includes(task);
}

/**
 * The create_experiment params for the form's values.
 * values: {"model.widths": [...], ..., observables: [...]}; base: the config it started
 * from, or null for a full config (defaults: state.defaults, to leave out optional fields
 * that keep their default).
 */
export function createParams(values, { base = null, basedOn = null, defaults = {} } = {}) {
  const task = values["data.task"];
  const shown = FIELDS.filter((f) => fieldApplies(f, task));
  const params = {};
  const put = (path, value) => {
    const parts = path.split(".");
    if (parts.length === 1) params[path] = value;
    else (params[parts[0]] ||= {})[parts[1]] = value;
  };
  if (basedOn) {
    params.based_on = basedOn;
    for (const f of shown) {
      const value = values[f.path];
      if (f.path === "name") continue;
      if (!equal(comparable(f, value), comparable(f, getPath(base, f.path)))) put(f.path, value);
    }
    if (values.name) params.name = values.name;
    const before = base.observables || [];
    const added = values.observables.filter((o) => !before.includes(o));
    const removed = before.filter((o) => !values.observables.includes(o));
    if (added.length) params.observables_add = added;
    if (removed.length) params.observables_remove = removed;
    return params;
  }
  for (const f of shown) {
    const value = values[f.path];
    if (f.path === "name") continue;
    if (f.optional && equal(comparable(f, value), comparable(f, getPath(defaults, f.path)))) continue;
    put(f.path, value);
  }
  params.observables = values.observables;
  if (values.name) params.name = values.name;
  // A readable order: model, data, optimizer, loss, observables, seed, name.
  const order = ["model", "data", "optimizer", "loss", "observables", "seed", "eval_every", "stop", "name"];
  return Object.fromEntries(order.filter((k) => k in params).map((k) => [k, params[k]]));
}

export function createExperimentForm(ctx) {
  const inputs = {};
  const wrappers = {};
  const obsBox = h("div", { class: "fl-checks", role: "group", "aria-label": "Observables" });
  const obsField = h("div", { class: "fl-field fl-field-wide", dataset: { field: "observables" } },
    h("span", { class: "fl-label" }, "Observables"), obsBox, errorSlot());
  const baseNote = h("span", { class: "fl-muted" });
  const basedOn = h("input", { type: "checkbox", testid: "based-on" });
  const basedOnLabel = h("label", { class: "fl-inline" }, basedOn, " ", baseNote);
  const formError = errorSlot("form-error");
  let baseId = null;
  let base = null;
  let dirty = false;
  let state = {};

  const fieldsets = GROUPS.map(([title, prefix]) => {
    const members = FIELDS.filter((f) => (prefix ? f.path.startsWith(prefix) : !f.path.includes(".")));
    return h("fieldset", { class: "fl-fieldset" }, h("legend", {}, title), members.map((f) => {
      const id = `fl-${Math.random().toString(36).slice(2, 8)}-${f.path}`;
      const input = f.kind === "select"
        ? h("select", { id, testid: testidOf(f.path) })
        : h("input", { id, type: "text", testid: testidOf(f.path), spellcheck: "false",
          inputmode: f.kind === "number" ? "decimal" : null, placeholder: f.hint || null,
          autocomplete: "off" });
      inputs[f.path] = input;
      wrappers[f.path] = h("div", { class: "fl-field", dataset: { field: f.path } },
        h("label", { class: "fl-label", for: id }, f.label), input, errorSlot());
      return wrappers[f.path];
    }));
  });

  const seedsId = `fl-${Math.random().toString(36).slice(2, 8)}-seeds`;
  const seeds = h("input", { id: seedsId, type: "text", testid: "sweep-seeds", spellcheck: "false",
    placeholder: "e.g. 0-7", autocomplete: "off" });
  const sweepNote = h("span", { class: "fl-muted", testid: "sweep-count", "aria-live": "polite" });
  const sweepField = h("div", { class: "fl-field fl-field-wide", dataset: { field: "seeds" } },
    h("label", { class: "fl-label", for: seedsId }, "Sweep seeds"),
    h("div", { class: "fl-sweep-input" },
      h("div", { class: "fl-inline" }, seeds, " ", sweepNote),
      h("span", { class: "fl-muted fl-small" }, "Several values in a field (0.001, 0.003 or "
        + "logspace(-4, -2, 5); widths split by |) or seeds here make a sweep of every combination."),
      errorSlot()));
  const create = h("button", { type: "submit", class: "fl-button fl-primary", testid: "create" }, "Create");
  const close = h("button", { type: "button", class: "fl-button", testid: "close-form" }, "Close");
  const form = h("form", { class: "fl-form", testid: "experiment-form", "aria-label": "New experiment", novalidate: true },
    h("div", { class: "fl-form-head" }, h("strong", {}, "New experiment"), basedOnLabel),
    h("div", { class: "fl-fieldsets" }, fieldsets), obsField, sweepField,
    h("div", { class: "fl-actions" }, create, close, formError));
  form.hidden = true;

  const showTaskFields = () => {
    const task = inputs["data.task"].value;
    for (const f of FIELDS) wrappers[f.path].hidden = !fieldApplies(f, task);
  };

  function renderObservables(checked) {
    const names = observableChoices(state, base?.observables || []);
    // live updates (a run's progress) must not rebuild the boxes under the person's focus
    if (!checked && obsBox.dataset.names === JSON.stringify(names)) return;
    obsBox.dataset.names = JSON.stringify(names);
    const current = checked ?? readObservables();
    obsBox.textContent = "";
    for (const name of names) {
      const box = h("input", { type: "checkbox", value: name, testid: `obs-${name}`,
        checked: current.includes(name) });
      const stat = (state.statistics || []).find((s) => s.name === name);
      const title = stat ? (stat.description || `statistic on ${stat.on}`) : null;
      obsBox.append(h("label", { class: "fl-check", title }, box, " ", name));
    }
  }

  function readObservables() {
    return [...obsBox.querySelectorAll("input[type=checkbox]")].filter((b) => b.checked).map((b) => b.value);
  }

  function values() {
    const out = {};
    for (const f of FIELDS) {
      const raw = inputs[f.path].value;
      out[f.path] = f.kind === "number" ? parseNumber(raw) : f.kind === "list" ? parseList(raw) : raw;
    }
    out.name = inputs.name.value.trim();
    out.observables = readObservables();
    return out;
  }

  /** The sweep the fields ask for ({params, count}), null for one experiment, or
   *  {error} when a field's values cannot be read. */
  function sweep() {
    const texts = Object.fromEntries(FIELDS.map((f) => [f.path, inputs[f.path].value]));
    try {
      return sweepParams(texts, { base, baseId: basedOn.checked ? baseId : null,
        seeds: seeds.value, name: inputs.name.value.trim(), task: inputs["data.task"].value });
    } catch (exc) {
      return { error: exc.message };
    }
  }

  function showSweep() {
    const s = sweep();
    if (!s) {
      sweepNote.textContent = "";
      create.textContent = "Create";
      return;
    }
    sweepNote.textContent = s.error ? s.error
      : !s.params.based_on ? "A sweep is based on an experiment: select one first."
        : `Sweep: ${s.count} member${s.count === 1 ? "" : "s"}`;
    create.textContent = s.error || !s.params.based_on ? "Create" : `Create sweep (${s.count})`;
  }

  function prefill() {
    const selected = state.view?.selected || [];
    const exp = (state.experiments || []).find((e) => e.id === selected[0]);
    baseId = exp ? exp.id : null;
    base = exp ? exp.config : state.defaults || {};
    for (const f of FIELDS) {
      if (f.kind === "select") fillSelect(inputs[f.path], (f.options(state) || []).map(String));
      inputs[f.path].value = f.path === "name" ? "" : formatValue(f, getPath(base, f.path));
    }
    basedOn.checked = !!baseId;
    basedOn.disabled = !baseId;
    baseNote.textContent = baseId
      ? `Based on ${baseId}: only the changes are sent`
      : "From the defaults (select an experiment to start from its config)";
    renderObservables(base.observables || []);
    showTaskFields();
    seeds.value = "";
    showSweep();
    clearErrors(form);
    dirty = false;
  }

  form.addEventListener("input", (e) => {
    dirty = true;
    showSweep();
    const wrapper = e.target.closest("[data-field]");
    if (wrapper) {
      wrapper.classList.remove("fl-invalid");
      const slot = wrapper.querySelector(".fl-error");
      if (slot) slot.textContent = "";
      e.target.removeAttribute("aria-invalid");
    }
  });
  inputs["data.task"].addEventListener("change", showTaskFields);
  basedOn.addEventListener("change", () => { dirty = true; });
  close.addEventListener("click", () => setOpen(false));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const asked = sweep();
    if (asked) {
      if (asked.error || !asked.params.based_on) {
        placeError(form, { field: "seeds", message: asked.error
          || "a sweep is based on an experiment: select one, then open this form" }, formError);
        return;
      }
      create.disabled = true;
      const reply = await ctx.act("sweep", asked.params, { root: form, fallback: formError });
      create.disabled = false;
      if (reply.kind !== "error") setOpen(false);
      return;
    }
    const params = createParams(values(), {
      base, basedOn: basedOn.checked ? baseId : null, defaults: state.defaults || {} });
    create.disabled = true;
    const reply = await ctx.act("create_experiment", params, { root: form, fallback: formError });
    create.disabled = false;
    if (reply.kind !== "error") {
      setOpen(false);
      // The new experiment is what the person will run next: select it (its own action).
      const id = reply.result?.experiment;
      if (id) ctx.act("select_experiments", { experiments: [id] });
    }
  });

  let onToggle = () => {};
  function setOpen(open) {
    if (open && form.hidden) prefill();
    form.hidden = !open;
    onToggle(open);
    if (open) inputs["model.widths"].focus?.();
  }

  return {
    el: form,
    setOpen,
    isOpen: () => !form.hidden,
    onToggle(fn) { onToggle = fn; },
    values,
    update(next) {
      state = next;
      if (form.hidden) return;
      const selected = state.view?.selected?.[0] ?? null;
      if (!dirty && selected !== baseId) prefill();
      else renderObservables();
    },
  };
}
