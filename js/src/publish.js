// Write-up: the researcher's notes and the blog draft, from the panel. Both are actions
// like any click (a `note`, an `export_blog`), so each becomes its cell: step 7 of the
// reference session needs no code. The draft is written by the kernel
// (featurelab.export.blog); the panel only names the file, its kind and its detail.
import { h, replaceChildren } from "./dom.js";
import { clearErrors, errorSlot, showError } from "./errors.js";

export const FORMATS = [
  { value: ".md", label: "Markdown (.md, pictures beside it)" },
  { value: ".html", label: "HTML (one page)" },
];

/** The file name to export to: what the person typed, with the format's suffix. */
export function exportPath(typed, lab, format) {
  const base = (typed || "").trim() || (lab ? `${lab}` : "draft");
  const stem = base.replace(/\.(md|markdown|html|htm)$/i, "");
  return `${stem}${format}`;
}

export function createPublish(ctx) {
  const uid = Math.random().toString(36).slice(2, 8);
  const field = (path, label, input, err = errorSlot()) =>
    h("div", { class: "fl-field", dataset: { field: path } },
      h("label", { class: "fl-label", for: input.id }, label), input, err);

  // -- notes --
  const noteText = h("textarea", { class: "fl-code-input fl-note-input", testid: "note-text", id: `fl-note-${uid}`,
    rows: "3", placeholder: "What you see, what you think it means: it goes into the log and the draft" });
  const addNote = h("button", { type: "submit", class: "fl-button fl-primary", testid: "note-submit", disabled: true },
    "Add note");
  const noteError = errorSlot("note-error");
  const notesList = h("ol", { class: "fl-notes", testid: "notes-list" });
  const noteForm = h("form", { class: "fl-form fl-publish-form", testid: "note-form", "aria-label": "Note", novalidate: true },
    h("div", { class: "fl-form-head" }, h("strong", {}, "Notes")),
    field("text", "Note", noteText, noteError),
    h("div", { class: "fl-actions" }, addNote), notesList);
  noteText.addEventListener("input", () => {
    addNote.disabled = !noteText.value.trim();
    showError(noteError, "");
  });
  noteForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = noteText.value.trim();
    if (!text) return;
    addNote.disabled = true;
    const reply = await ctx.act("note", { text }, { root: noteForm, fallback: noteError });
    if (reply.kind !== "error") noteText.value = "";
    addNote.disabled = !noteText.value.trim();
  });

  // -- the draft --
  const file = h("input", { type: "text", class: "fl-input", testid: "export-path", id: `fl-export-path-${uid}`,
    spellcheck: "false", autocomplete: "off" });
  const format = h("select", { class: "fl-select", testid: "export-format", id: `fl-export-format-${uid}` },
    FORMATS.map((f) => h("option", { value: f.value }, f.label)));
  const detail = h("select", { class: "fl-select", testid: "export-detail", id: `fl-export-detail-${uid}` },
    h("option", { value: "full" }, "full: every event"),
    h("option", { value: "condensed" }, "condensed: views merged"));
  const title = h("input", { type: "text", class: "fl-input", testid: "export-title", id: `fl-export-title-${uid}`,
    autocomplete: "off" });
  const submit = h("button", { type: "submit", class: "fl-button fl-primary", testid: "export-submit" }, "Export draft");
  const done = h("span", { class: "fl-ok", "aria-live": "polite", testid: "export-done" });
  const exportError = errorSlot("export-error");
  const exportForm = h("form", { class: "fl-form fl-publish-form", testid: "export-form", "aria-label": "Blog draft", novalidate: true },
    h("div", { class: "fl-form-head" }, h("strong", {}, "Blog draft")),
    field("path", "File", file), field("format", "Format", format), field("detail", "Detail", detail),
    field("title", "Title", title),
    h("div", { class: "fl-actions" }, submit, done), exportError);
  let lab = "";
  exportForm.addEventListener("input", () => { done.textContent = ""; showError(exportError, ""); });
  format.addEventListener("change", () => {
    // the file's suffix follows the format; a suggested name stays a suggestion
    const wasSuggested = file.value === file.dataset.suggested;
    if (file.value.trim()) file.value = exportPath(file.value, lab, format.value);
    file.dataset.suggested = exportPath("", lab, format.value);
    if (wasSuggested) file.value = file.dataset.suggested;
  });
  exportForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(exportForm);
    done.textContent = "";
    const path = exportPath(file.value, lab, format.value);
    file.value = path;
    const params = { path, detail: detail.value };
    if (title.value.trim()) params.title = title.value.trim();
    submit.disabled = true;
    submit.textContent = "Exporting…";
    const reply = await ctx.act("export_blog", params, { root: exportForm, fallback: exportError });
    submit.disabled = false;
    submit.textContent = "Export draft";
    if (reply.kind !== "error") done.textContent = `Wrote ${path}`;
  });

  const el = h("section", { class: "fl-section", testid: "publish-section", "aria-label": "Write-up" },
    h("div", { class: "fl-section-head" }, h("h3", {}, "Write-up")),
    h("div", { class: "fl-publish-layout" }, noteForm, exportForm));

  return {
    el,
    update(state) {
      lab = state.lab || "";
      // the lab's name as the default file, only while the field holds no name of the
      // person's own (a state push must never replace what they typed)
      const suggested = exportPath("", lab, format.value);
      if (!file.value.trim() || file.value === file.dataset.suggested) {
        if (document.activeElement !== file) file.value = suggested;
      }
      file.dataset.suggested = suggested;
      title.placeholder = lab;
      const notes = state.notes || [];
      const sig = JSON.stringify(notes);
      if (notesList.dataset.sig === sig) return;
      notesList.dataset.sig = sig;
      notesList.hidden = !notes.length;
      replaceChildren(notesList, notes.map((n) => h("li", { class: "fl-note-item" }, n)));
    },
    destroy() {},
  };
}
