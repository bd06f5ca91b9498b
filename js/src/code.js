// Code: the recorded cells (one per action), each copyable, and all of them at once.
import { h, replaceChildren } from "./dom.js";

export async function copyText(text) {
  try {
    if (navigator.clipboard?.writeText) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* fall back below */
  }
  const area = h("textarea", { style: { position: "fixed", opacity: "0" } });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/** The code of every recorded cell, in order, as one script. */
export function allCode(cells) {
  return (cells || []).filter((c) => c.code).map((c) => c.code.trimEnd()).join("\n\n") + "\n";
}

export function createCode(ctx) {
  const copyAll = h("button", { type: "button", class: "fl-button", testid: "copy-code" }, "Copy all");
  const status = h("span", { class: "fl-ok", "aria-live": "polite" });
  const list = h("ol", { class: "fl-cells", testid: "code-cells" });
  const empty = h("div", { class: "fl-empty" }, "Every action you take appears here as the code that does it.");
  const el = h("section", { class: "fl-section", testid: "code-section", "aria-label": "Code" },
    h("div", { class: "fl-section-head" }, h("h3", {}, "Code"), h("div", { class: "fl-toolbar" }, copyAll, status)),
    empty, list);
  let cells = [];

  const flash = (text) => {
    status.textContent = text;
    setTimeout(() => { if (status.textContent === text) status.textContent = ""; }, 1500);
  };
  copyAll.addEventListener("click", async () => flash((await copyText(allCode(cells))) ? "Copied" : "Copy failed"));

  return {
    el,
    update(state) {
      cells = state.cells || [];
      const sig = JSON.stringify(cells.map((c) => c.action_id));
      empty.hidden = cells.length > 0;
      copyAll.disabled = !cells.length;
      if (list.dataset.sig === sig) return;
      list.dataset.sig = sig;
      const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 8;
      replaceChildren(list, cells.map((c, i) => {
        const copy = h("button", { type: "button", class: "fl-button fl-small", testid: `copy-cell-${i}`,
          "aria-label": `Copy the code of: ${c.sentence}` }, "Copy");
        copy.addEventListener("click", async () => flash((await copyText(c.code || "")) ? "Copied" : "Copy failed"));
        return h("li", { class: "fl-cell", dataset: { actionId: c.action_id } },
          h("div", { class: "fl-cell-head" }, h("span", { class: `fl-actor fl-actor-${c.actor}` }, c.actor),
            h("span", { class: "fl-sentence" }, c.sentence), c.code ? copy : null),
          c.code ? h("pre", { class: "fl-code" }, h("code", {}, c.code)) : null);
      }));
      if (atBottom) list.scrollTop = list.scrollHeight;
    },
    destroy() {},
  };
}
