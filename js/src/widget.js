// The featurelab panel (anywidget): renders `state`, the lab's JSON mirror, and turns every
// click into one JSON action {"kind": "action", "request": id, "action": {type, params}}.
// It never changes `state` itself: it re-renders when `change:state` fires.
import { h } from "./dom.js";
import { clearErrors, errorSlot, placeError, showError } from "./errors.js";
import { createProtocol } from "./protocol.js";
import { createExperiments } from "./experiments.js";
import { createSweeps } from "./sweeps.js";
import { createExplorations } from "./explorations.js";
import { createResults } from "./results.js";
import { createStatistics } from "./statistics.js";
import { createPublish } from "./publish.js";
import { createCode } from "./code.js";
import { createCellsNotice } from "./cells-notice.js";
import { readTheme } from "./theme.js";

function render({ model, el }) {
  const proto = createProtocol(model);
  const globalError = errorSlot("panel-error");
  const title = h("span", { class: "fl-title" }, "featurelab");
  const labName = h("span", { class: "fl-muted fl-mono", testid: "lab-name" });
  const panel = h("div", { class: "fl-panel", testid: "featurelab-panel" },
    h("header", { class: "fl-header" }, title, labName), globalError);
  const notice = createCellsNotice(model);
  panel.append(notice.el);
  el.append(panel);
  // JupyterLab handles keys on `document` as they bubble: notebook shortcuts (Shift+Enter
  // re-runs the cell, arrows move between cells) and an input guard that cancels Enter's
  // line break inside a cell. Keys typed into the panel's fields stay in them.
  panel.addEventListener("keydown", (e) => {
    if (e.target instanceof Element && e.target.matches("input, textarea, select")) e.stopPropagation();
  });

  let theme = null;
  const ctx = {
    proto,
    model,
    /** Theme colours (cached; refreshed when JupyterLab switches theme). */
    theme: () => (theme ||= readTheme(panel)),
    /**
     * Sends one action. `target` says where an error reply goes: an error slot, or
     * {root, fallback} to show it next to the [data-field] its `field` names.
     * Resolves with the reply (ack or error).
     */
    async act(type, params, target) {
      const reply = await proto.action(type, params);
      if (target && target.root) {
        if (reply.kind === "error") {
          // the first error, then every other one the kernel found, each at its field
          placeError(target.root, reply, target.fallback || globalError);
          for (const other of reply.errors || []) placeError(target.root, other, null);
        } else clearErrors(target.root);
      } else {
        const slot = target || globalError;
        showError(slot, reply.kind === "error" ? reply.message : "");
      }
      return reply;
    },
  };

  const sections = [createExperiments(ctx), createSweeps(ctx), createExplorations(ctx), createResults(ctx), createStatistics(ctx),
    createPublish(ctx), createCode(ctx)];
  panel.append(...sections.map((s) => s.el));

  const onState = () => {
    const state = model.get("state") || {};
    labName.textContent = state.lab ? `lab ${state.lab}` : "";
    for (const section of sections) section.update(state);
  };
  model.on("change:state", onState);
  onState();

  // JupyterLab switches themes by changing attributes on <body>: recolour the charts.
  let observer = null;
  if (typeof MutationObserver !== "undefined" && typeof document !== "undefined" && document.body) {
    observer = new MutationObserver(() => {
      const next = readTheme(panel);
      if (theme && JSON.stringify(next) !== JSON.stringify(theme)) {
        theme = next;
        onState();
      }
    });
    observer.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light", "class", "style"] });
  }

  return () => {
    model.off("change:state", onState);
    notice.destroy();
    proto.destroy();
    if (observer) observer.disconnect();
    for (const section of sections) section.destroy();
    panel.remove();
  };
}

export default { render };
