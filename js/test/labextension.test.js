// The labextension's cell placement (js/labextension/src/cells.ts) on a fake shared
// notebook model with the methods JupyterLab's has.
import { describe, expect, it } from "vitest";
import { applyRequest } from "../labextension/src/cells.ts";

const MIME = "application/vnd.jupyter.widget-view+json";

function cell(source, { metadata = {}, outputs = [], type = "code", id = undefined } = {}) {
  const meta = structuredClone(metadata);
  return {
    id,
    cell_type: type,
    source,
    getMetadata: (key) => meta[key],
    setMetadata: (key, value) => { meta[key] = value; },
    setSource(value) { this.source = value; },
    getOutputs: () => outputs,
  };
}

function notebook(...cells) {
  const nb = {
    cells,
    transactions: 0,
    insertCell(index, c) { cells.splice(index, 0, cell(c.source, { metadata: c.metadata })); },
    transact(f) { nb.transactions += 1; f(); },
    sources: () => cells.map((c) => c.source),
  };
  return nb;
}

const panel = (id) => cell("lab", { outputs: [{ output_type: "display_data", data: { [MIME]: { model_id: id } } }] });

function request(id, source, extra = {}) {
  return { op: "insert_cell", source, model_id: "m1", action_id: id, action_ids: [id],
    coalesce_key: null, replaces: null, ...extra };
}

describe("applyRequest", () => {
  it("inserts below the panel, after earlier action cells, in order", () => {
    const nb = notebook(cell("import featurelab"), panel("m1"), cell("print(1)"));
    expect(applyRequest(nb, request("a1", "lab.select('exp_0')"))).toBe(2);
    expect(applyRequest(nb, request("a2", "lab.run('exp_0')"))).toBe(3);
    expect(nb.sources()).toEqual(["import featurelab", "lab", "lab.select('exp_0')", "lab.run('exp_0')", "print(1)"]);
    expect(nb.cells[3].getMetadata("featurelab")).toEqual({ action_id: "a2", action_ids: ["a2"], coalesce_key: null });
  });

  it("never inserts an action twice (every client gets every request)", () => {
    const nb = notebook(panel("m1"));
    applyRequest(nb, request("a1", "x"));
    expect(applyRequest(nb, request("a1", "x"))).toBe(1);
    expect(nb.sources()).toEqual(["lab", "x"]);
  });

  it("updates the cell of a coalesced view action instead of adding one", () => {
    const nb = notebook(panel("m1"));
    applyRequest(nb, request("a1", "lab.open_chart('loss')", { coalesce_key: "chart:loss" }));
    const at = applyRequest(nb, request("a2", "lab.open_chart('loss')\nlab.zoom('loss', x_range=(0.0, 1.0))",
      { action_ids: ["a1", "a2"], coalesce_key: "chart:loss", replaces: "a1" }));
    expect(at).toBe(1);
    expect(nb.sources()).toEqual(["lab", "lab.open_chart('loss')\nlab.zoom('loss', x_range=(0.0, 1.0))"]);
    expect(nb.cells[1].getMetadata("featurelab").action_ids).toEqual(["a1", "a2"]);
    // a client that already had a2 changes nothing; one that missed a1 inserts anew
    expect(applyRequest(nb, request("a2", "other", { replaces: "a1" }))).toBe(1);
    const late = notebook(panel("m1"));
    applyRequest(late, request("a2", "both lines", { action_ids: ["a1", "a2"], replaces: "a1" }));
    expect(late.sources()).toEqual(["lab", "both lines"]);
  });

  it("rewrites the run cell a cancel stops, with cells after it", () => {
    const nb = notebook(panel("m1"));
    applyRequest(nb, request("r1", "lab.run('exp_0')"));
    applyRequest(nb, request("n1", "lab.note('x')"));
    const stopped = "# Cancelled in the panel at step 1234: a rerun stops there too.\n" +
      "lab.run('exp_0', stop_at=1234)";
    expect(applyRequest(nb, request("c1", stopped, { action_ids: ["r1", "c1"], replaces: "r1" })))
      .toBe(1);
    expect(nb.sources()).toEqual(["lab", stopped, "lab.note('x')"]);
    expect(nb.cells[1].getMetadata("featurelab")).toEqual(
      { action_id: "c1", action_ids: ["r1", "c1"], coalesce_key: null });
    applyRequest(nb, request("r2", "lab.run('exp_0', resume=True)"));
    expect(nb.sources().at(-1)).toBe("lab.run('exp_0', resume=True)");
  });

  it("keeps each panel's cells below that panel", () => {
    const nb = notebook(panel("m1"), panel("m2"));
    applyRequest(nb, request("a1", "one"));
    applyRequest(nb, request("b1", "two", { model_id: "m2" }));
    applyRequest(nb, request("a2", "three"));
    expect(nb.sources()).toEqual(["lab", "one", "three", "lab", "two"]);
  });

  it("puts a click after the code cell that ran the lab's latest action", () => {
    const nb = notebook(panel("m1"), cell("one", { metadata: { featurelab: { action_id: "a1" } } }),
      cell("lab.reset()", { id: "c9" }), cell("notes", { type: "markdown" }));
    applyRequest(nb, request("a2", "two", { after_cell: "c9" }));
    applyRequest(nb, request("a3", "three", { after_cell: "c9" }));
    expect(nb.sources()).toEqual(["lab", "one", "lab.reset()", "two", "three", "notes"]);
    // a cell above the panel, or one deleted since, does not move the cells
    const other = notebook(cell("x", { id: "c1" }), panel("m1"));
    applyRequest(other, request("a1", "y", { after_cell: "c1" }));
    applyRequest(other, request("a2", "z", { after_cell: "gone" }));
    expect(other.sources()).toEqual(["x", "lab", "y", "z"]);
  });

  it("appends at the end when the panel is not shown anywhere", () => {
    const nb = notebook(cell("a"), cell("b", { type: "markdown" }));
    expect(applyRequest(nb, request("a1", "x", { model_id: "gone" }))).toBe(2);
    expect(nb.sources()).toEqual(["a", "b", "x"]);
  });
});
