// Rename, tag and delete the selected experiment: each a logged action
// (rename_experiment, tag_experiments, delete_experiment), like the Python verbs
// lab.rename / lab.tag / lab.delete. The bar shows while one experiment is selected.
import { h } from "./dom.js";

/** "a, b , ,c" -> ["a", "b", "c"]: tags as typed, comma-separated, spaces collapsed. */
export function parseTags(text) {
  return [...new Set(text.split(",").map((t) => t.split(/\s+/).filter(Boolean).join(" ")).filter(Boolean))];
}

/** The tag_experiments params that turn `before` into `after` (null: nothing to do). */
export function tagChange(id, before, after) {
  const add = after.filter((t) => !before.includes(t));
  const remove = before.filter((t) => !after.includes(t));
  if (!add.length && !remove.length) return null;
  return { experiments: [id], add: add.length ? add : null, remove: remove.length ? remove : null };
}

export function createExperimentEdit(ctx, slot) {
  const title = h("span", { class: "fl-edit-title fl-mono" });
  const name = h("input", { type: "text", class: "fl-input", testid: "edit-name", "aria-label": "Name",
    placeholder: "name", autocomplete: "off" });
  const tags = h("input", { type: "text", class: "fl-input", testid: "edit-tags", "aria-label": "Tags",
    placeholder: "tags, comma-separated", autocomplete: "off" });
  const save = h("button", { type: "submit", class: "fl-button", testid: "edit-save" }, "Save");
  const remove = h("button", { type: "button", class: "fl-button fl-danger", testid: "edit-delete",
    title: "Take it out of the lab; its runs stay in the store" }, "Delete");
  const el = h("form", { class: "fl-toolbar fl-exp-edit", testid: "experiment-edit", hidden: true },
    title, h("label", { class: "fl-inline" }, "Name", name), h("label", { class: "fl-inline" }, "Tags", tags),
    save, remove);

  let exp = null;
  let confirming = false;
  const resetDelete = () => {
    confirming = false;
    remove.textContent = "Delete";
  };

  el.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!exp) return;
    const id = exp.id;
    const wanted = name.value.trim();
    if (wanted && wanted !== exp.name) {
      const reply = await ctx.act("rename_experiment", { experiment: id, name: wanted }, slot);
      if (reply.kind === "error") return;
    }
    const change = tagChange(id, exp.tags || [], parseTags(tags.value));
    if (change) await ctx.act("tag_experiments", change, slot);
  });
  remove.addEventListener("click", () => {
    if (!exp) return;
    if (!confirming) { // a second click deletes: the first only asks
      confirming = true;
      remove.textContent = `Delete ${exp.id}? Click again`;
      return;
    }
    ctx.act("delete_experiment", { experiment: exp.id }, slot);
    resetDelete();
  });

  return {
    el,
    /** Shows the bar for the one selected experiment (hidden otherwise). */
    update(selectedExps) {
      const next = selectedExps.length === 1 ? selectedExps[0] : null;
      el.hidden = !next;
      if (!next) { exp = null; resetDelete(); return; }
      const changed = !exp || exp.id !== next.id;
      const focused = el.contains(document.activeElement);
      if (changed) resetDelete();
      // Refill from the state unless the user is typing here (a run's progress updates
      // the state many times a second).
      if (changed || !focused) {
        title.textContent = next.id;
        name.value = next.name || "";
        tags.value = (next.tags || []).join(", ");
      }
      exp = next;
    },
  };
}
