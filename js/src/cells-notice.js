// Says once that clicks cannot become notebook cells here (VS Code, Colab, a JupyterLab
// without the featurelab extension) and where their code is instead. The kernel sets
// `cells` to "none" when no front end answered the extension's hello.
import { h } from "./dom.js";

const dismissed = new WeakSet(); // models whose notice was dismissed, for every view

export function createCellsNotice(model) {
  const close = h("button", { class: "fl-button fl-small", testid: "cells-notice-close", type: "button" }, "Dismiss");
  const el = h("div", { class: "fl-notice", role: "status", testid: "cells-notice", hidden: true },
    h("span", {},
      "Clicks are not recorded as notebook cells here: the featurelab extension for JupyterLab is not active. " +
      "The code of every action is in the Code section below; ",
      h("code", {}, "lab.to_notebook(path)"), " writes the session as a notebook."),
    close);
  const update = () => {
    el.hidden = model.get("cells") !== "none" || dismissed.has(model);
  };
  close.addEventListener("click", () => {
    dismissed.add(model);
    el.hidden = true;
  });
  model.on("change:cells", update);
  update();
  return { el, destroy: () => model.off("change:cells", update) };
}
