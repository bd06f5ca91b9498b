// Tiny DOM helpers: h() builds an element from attributes and children.

const PROPS = new Set(["value", "checked", "disabled", "selected", "textContent", "indeterminate",
  "multiple", "tabIndex", "type"]);

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "testid") el.dataset.testid = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces an element's children. */
export function replaceChildren(el, ...children) {
  el.textContent = "";
  return append(el, children);
}

/** A <select> whose options are [{value, label, disabled}] or strings; keeps the value. */
export function fillSelect(select, options, value) {
  const norm = options.map((o) => (typeof o === "string" ? { value: o, label: o } : o));
  const same = select.options.length === norm.length &&
    norm.every((o, i) => select.options[i].value === o.value &&
      select.options[i].textContent === o.label && select.options[i].disabled === !!o.disabled);
  if (!same) {
    replaceChildren(select, norm.map((o) =>
      h("option", { value: o.value, disabled: !!o.disabled }, o.label)));
  }
  if (value !== undefined && select.value !== value) select.value = value ?? "";
  return select;
}

/** A toggle button's pressed state (aria-pressed), for log axes and similar. */
export function setPressed(button, on) {
  button.setAttribute("aria-pressed", on ? "true" : "false");
  button.classList.toggle("fl-on", !!on);
}

/** Shows a value from `state` in an input when that value changed since it was last
 *  shown, and not while the person is typing in it: what they typed but did not send
 *  yet survives the live updates of a running experiment. */
export function setValueUnlessFocused(input, value) {
  if (input._flShown === value) return;
  if (input.ownerDocument.activeElement === input) return;
  input._flShown = value;
  if (input.value !== value) input.value = value;
}
