// Statistics: the DIY statistic editor (name, on, source) and the list of statistics.
import { fillSelect, h, replaceChildren } from "./dom.js";
import { clearErrors, errorSlot, showError } from "./errors.js";

/** The source a new statistic starts from. */
export function sourceTemplate(name) {
  const fn = /^[A-Za-z_][A-Za-z0-9_]*$/.test(name || "") ? name : "NAME";
  return `def compute_${fn}(tensor, dim, keepdim=False):\n` +
    "    t = tensor.float()\n" +
    "    return t.mean(dim=dim, keepdim=keepdim)\n";
}

/** What a statistic can be defined on: activations, or a statistic with one value per neuron. */
export function onChoices(state) {
  return [{ value: "activations", label: "activations (one value per neuron)" },
    { value: "weights", label: "weights (a layer's matrix or the embedding; per row)" },
    ...(state.statistics || []).filter((s) => s.level === 1)
      .map((s) => ({ value: s.name, label: `${s.name} (one value per ${s.base === "weights" ? "matrix" : "layer"})` }))];
}

/** The statistics table's "values" column: what one step of it holds. */
export function valuesText(s) {
  if (s.base === "weights") return s.level === 1 ? "per row (weights)" : "per matrix";
  return s.level === 1 ? "per neuron" : "per layer";
}

export function createStatistics(ctx) {
  const uid = Math.random().toString(36).slice(2, 8);
  const name = h("input", { type: "text", class: "fl-input", testid: "diy-name", id: `fl-diy-name-${uid}`,
    placeholder: "e.g. nonlinear_rate", spellcheck: "false", autocomplete: "off" });
  const on = h("select", { class: "fl-select", testid: "diy-on", id: `fl-diy-on-${uid}` });
  const source = h("textarea", { class: "fl-code-input", testid: "diy-source", id: `fl-diy-source-${uid}`,
    rows: "7", spellcheck: "false", "aria-label": "Statistic source" });
  const submit = h("button", { type: "submit", class: "fl-button fl-primary", testid: "diy-submit" }, "Define statistic");
  const done = h("span", { class: "fl-ok", "aria-live": "polite", testid: "diy-done" });
  const sourceError = errorSlot("diy-error");
  const field = (path, label, input, err = errorSlot()) =>
    h("div", { class: "fl-field", dataset: { field: path } }, h("label", { class: "fl-label", for: input.id }, label), input, err);
  const form = h("form", { class: "fl-form fl-diy", testid: "diy-form", "aria-label": "DIY statistic", novalidate: true },
    h("div", { class: "fl-row-fields" }, field("statistic.name", "Name", name), field("statistic.on", "On", on)),
    field("source", "Source: (tensor, dim, keepdim=False) -> tensor; torch, np and math are available", source, sourceError),
    h("div", { class: "fl-actions" }, submit, done));
  const list = h("tbody");
  const table = h("table", { class: "fl-table fl-stat-table", testid: "stat-list" },
    h("thead", {}, h("tr", {}, ["statistic", "on", "values", "kind"].map((t) => h("th", { scope: "col" }, t)))), list);
  const el = h("section", { class: "fl-section", testid: "statistics-section", "aria-label": "Statistics" },
    h("div", { class: "fl-section-head" }, h("h3", {}, "Statistics")),
    h("div", { class: "fl-stats-layout" }, form, h("div", { class: "fl-table-wrap" }, table)));

  // Tab indents (4 spaces) in the source, as in a code cell; Escape, then Tab, moves on.
  let escaped = false;
  source.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { escaped = true; return; }
    if (e.key !== "Tab" || escaped || e.ctrlKey || e.altKey || e.metaKey) { escaped = false; return; }
    e.preventDefault();
    indent(source, e.shiftKey);
  });

  let template = sourceTemplate("");
  source.value = template;

  name.addEventListener("input", () => {
    // the template follows the name until the person edits the source
    if (source.value === template) {
      template = sourceTemplate(name.value.trim());
      source.value = template;
    } else {
      template = sourceTemplate(name.value.trim());
    }
  });
  form.addEventListener("input", (e) => {
    done.textContent = "";
    const wrapper = e.target.closest("[data-field]");
    if (wrapper) {
      wrapper.classList.remove("fl-invalid");
      showError(wrapper.querySelector(".fl-error"), "");
    }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    done.textContent = "";
    const params = { name: name.value.trim(), source: source.value, on: on.value || "activations" };
    submit.disabled = true;
    const reply = await ctx.act("define_statistic", params, { root: form, fallback: sourceError });
    submit.disabled = false;
    if (reply.kind !== "error") {
      done.textContent = `Defined ${params.name}: it can now be recorded as an observable.`;
      name.value = "";
      template = sourceTemplate("");
      source.value = template;
    }
  });

  return {
    el,
    update(state) {
      fillSelect(on, onChoices(state), on.value || "activations");
      const sig = JSON.stringify((state.statistics || []).map((s) => [s.name, s.on, s.level, s.base, s.trusted]));
      if (list.dataset.sig === sig) return;
      list.dataset.sig = sig;
      replaceChildren(list, (state.statistics || []).map((s) => h("tr", { title: s.description || s.source || "" },
        h("td", { class: "fl-mono" }, s.name), h("td", { class: "fl-mono" }, s.on),
        h("td", {}, valuesText(s)),
        h("td", {}, s.builtin ? "built-in" : s.trusted === false ? untrusted(s) : "DIY"))));
    },
    destroy() {},
  };
}

// A statistic from elsewhere (a received store or log): shown, never run until trusted.
function untrusted(s) {
  return h("span", {
    class: "fl-untrusted",
    title: `Not signed by you, so its code does not run; read it, then lab.trust() runs it.\n\n${s.source}`,
  }, "DIY, disabled (not signed by you)");
}

/** Tab / Shift+Tab in a code box: indent at the caret, or every selected line, by 4
 *  spaces; Shift+Tab removes up to 4 from each line. */
export function indent(area, outdent = false) {
  const { value, selectionStart: a, selectionEnd: b } = area;
  const lineStart = value.lastIndexOf("\n", a - 1) + 1;
  if (!outdent && a === b) {
    area.value = value.slice(0, a) + "    " + value.slice(b);
    area.selectionStart = area.selectionEnd = a + 4;
  } else {
    const end = b > a && value[b - 1] === "\n" ? b - 1 : b;
    const lines = value.slice(lineStart, end).split("\n");
    const changed = lines.map((l) => (outdent ? l.replace(/^ {1,4}/, "") : `    ${l}`));
    area.value = value.slice(0, lineStart) + changed.join("\n") + value.slice(end);
    const first = changed[0].length - lines[0].length;
    area.selectionStart = Math.max(lineStart, a + first);
    area.selectionEnd = end + changed.join("\n").length - lines.join("\n").length;
  }
  area.dispatchEvent(new Event("input", { bubbles: true }));
}

