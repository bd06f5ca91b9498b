// Error replies shown next to the control or form field that caused them.
import { h } from "./dom.js";

/** An error line with reserved height (no layout jump when a message appears). */
export function errorSlot(testid) {
  return h("div", { class: "fl-error", role: "status", "aria-live": "polite", testid });
}

export function showError(slot, message) {
  if (!slot) return;
  slot.textContent = message || "";
  slot.classList.toggle("fl-has-error", !!message);
  slot.title = message || "";
}

export function clearError(slot) {
  showError(slot, "");
}

/** Field names to try, most specific first: "model.widths[1]" -> model.widths[1],
 *  model.widths, model; "observables_add" -> observables; "statistic.on" -> statistic.on. */
export function fieldCandidates(field) {
  if (!field) return [];
  const out = [field];
  let f = field;
  while (/\[[^\]]*\]$/.test(f)) {
    f = f.replace(/\[[^\]]*\]$/, "");
    out.push(f);
  }
  if (/^observables_(add|remove)$/.test(f)) out.push("observables");
  const parts = f.split(".");
  for (let i = parts.length - 1; i > 0; i--) out.push(parts.slice(0, i).join("."));
  return [...new Set(out)];
}

/** The element marked data-field for an error's field (or null). */
export function findField(root, field) {
  const marked = [...root.querySelectorAll("[data-field]")];
  for (const name of fieldCandidates(field)) {
    const hit = marked.find((el) => el.dataset.field === name);
    if (hit) return hit;
  }
  return null;
}

/** Shows an error reply at its field inside root (each [data-field] wrapper holds a
 *  .fl-error), else in the fallback slot. Returns the slot used. */
export function placeError(root, reply, fallback) {
  const wrapper = findField(root, reply.field);
  const slot = (wrapper && wrapper.querySelector(".fl-error")) || fallback;
  showError(slot, reply.message);
  if (wrapper) {
    wrapper.classList.add("fl-invalid");
    const input = wrapper.querySelector("input, select, textarea");
    if (input) input.setAttribute("aria-invalid", "true");
  }
  return slot;
}

/** Clears every error shown inside root. */
export function clearErrors(root) {
  for (const el of root.querySelectorAll(".fl-error")) clearError(el);
  for (const el of root.querySelectorAll(".fl-invalid")) el.classList.remove("fl-invalid");
  for (const el of root.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}
