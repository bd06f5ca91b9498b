import { afterEach, describe, expect, it } from "vitest";
import { exportPath } from "../src/publish.js";
import { ack, fail, flush, loadState, mountPanel, unmountPanels } from "./fakes.js";

afterEach(() => {
  unmountPanels();
});

const mount = mountPanel;

const type = (input, value) => {
  input.value = value;
  input.dispatchEvent(new Event("input", { bubbles: true }));
  input.dispatchEvent(new Event("change", { bubbles: true }));
};
const submit = (form) => form.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));

describe("export path", () => {
  it("takes the format's suffix, the lab's name when empty", () => {
    expect(exportPath("", "reference", ".md")).toBe("reference.md");
    expect(exportPath("  post.html ", "reference", ".md")).toBe("post.md");
    expect(exportPath("drafts/post.md", "x", ".html")).toBe("drafts/post.html");
    expect(exportPath("v1.2", "x", ".md")).toBe("v1.2.md");
    expect(exportPath("", "", ".md")).toBe("draft.md");
  });
});

describe("write-up", () => {
  it("adds a note as an action and lists the lab's notes", async () => {
    const state = loadState("reference-state");
    const { $, model } = mount({ ...state, notes: [] });
    expect($("note-submit").disabled).toBe(true);
    expect($("notes-list").hidden).toBe(true);
    type($("note-text"), "  Phase I removes features?  ");
    expect($("note-submit").disabled).toBe(false);
    submit($("note-form"));
    expect(model.lastAction().action).toEqual({ type: "note", params: { text: "Phase I removes features?" } });
    ack(model);
    await flush();
    expect($("note-text").value).toBe("");
    model.setState({ ...state, notes: ["Phase I removes features?", "a <b>second</b>"] });
    const items = [...$("notes-list").querySelectorAll("li")].map((li) => li.textContent);
    expect(items).toEqual(["Phase I removes features?", "a <b>second</b>"]);
    expect($("notes-list").querySelector("b")).toBeNull(); // text, never markup
  });

  it("exports the draft as an action named after the lab, and shows where", async () => {
    const state = loadState("reference-state");
    const { $, model } = mount(state);
    expect($("export-path").value).toBe(`${state.lab}.md`);
    $("export-format").value = ".html";
    $("export-format").dispatchEvent(new Event("change", { bubbles: true }));
    expect($("export-path").value).toBe(`${state.lab}.html`);
    $("export-detail").value = "condensed";
    type($("export-title"), "Feature learning, replayed");
    submit($("export-form"));
    expect(model.lastAction().action).toEqual({ type: "export_blog", params: {
      path: `${state.lab}.html`, detail: "condensed", title: "Feature learning, replayed" } });
    expect($("export-submit").disabled).toBe(true);
    ack(model, model.lastAction(), { path: `${state.lab}.html`, detail: "condensed" });
    await flush();
    expect($("export-submit").disabled).toBe(false);
    expect($("export-done").textContent).toBe(`Wrote ${state.lab}.html`);
  });

  it("shows the kernel's error at the field it names and keeps what was typed", async () => {
    const { $, model } = mount(loadState("reference-state"));
    type($("export-path"), "/etc/post.md");
    submit($("export-form"));
    fail(model, "path", "path '/etc/post.md': expected a file inside the lab's folder");
    await flush();
    const wrapper = $("export-form").querySelector('[data-field="path"]');
    expect(wrapper.textContent).toContain("inside the lab's folder");
    expect($("export-path").value).toBe("/etc/post.md");
    expect($("export-done").textContent).toBe("");
  });
});

describe("the export path", () => {
  it("keeps what was typed across format changes and state pushes", () => {
    const state = loadState("reference-state");
    const { $, model } = mount(state);
    const path = $("export-path");
    type(path, "drafts/post");
    $("export-format").value = ".html";
    $("export-format").dispatchEvent(new Event("change", { bubbles: true }));
    expect(path.value).toBe("drafts/post.html");
    model.setState({ ...state }); // a state push (4 a second while a run goes)
    expect(path.value).toBe("drafts/post.html");
    submit($("export-form"));
    expect(model.lastAction().action.params.path).toBe("drafts/post.html");
    // cleared: the lab's name is suggested again
    type(path, "");
    model.setState({ ...state, lab: "other" });
    expect(path.value).toBe("other.html");
  });
});
