import { describe, expect, it } from "vitest";
import { FIELDS, knobValues, seedValues, sweepParams } from "../src/experiment-form.js";
import { bandStats, buildPlot, shownGroups } from "../src/series.js";
import { countsText, doneFraction } from "../src/sweeps.js";

const field = (path) => FIELDS.find((f) => f.path === path);

describe("a field's values for a sweep", () => {
  it("reads comma lists, logspace, linspace and range", () => {
    expect(knobValues(field("optimizer.lr"), "1e-4, 3e-4, 1e-3")).toEqual([1e-4, 3e-4, 1e-3]);
    expect(knobValues(field("optimizer.lr"), "logspace(-4, -2, 5)"))
      .toEqual([1e-4, 0.000316228, 0.001, 0.00316228, 0.01]);
    expect(knobValues(field("optimizer.lr"), "linspace(0, 1, 3)")).toEqual([0, 0.5, 1]);
    expect(knobValues(field("optimizer.steps"), "range(100, 400, 100)")).toEqual([100, 200, 300]);
    expect(knobValues(field("optimizer.lr"), "0.001")).toEqual([0.001]);
    expect(knobValues(field("model.widths"), "10, 50, 1 | 10, 100, 1")).toEqual([[10, 50, 1], [10, 100, 1]]);
    expect(knobValues(field("model.widths"), "10, 50, 1")).toEqual([[10, 50, 1]]);
  });

  it("says what it cannot read", () => {
    expect(() => knobValues(field("optimizer.lr"), "logspace(-4, x, 5)")).toThrow(/numbers/);
    expect(() => knobValues(field("optimizer.lr"), "logspace(-4, -2)")).toThrow(/count/);
    expect(() => seedValues("7-3")).toThrow(/before/);
    expect(() => seedValues("0.5, 1")).toThrow(/whole/);
  });

  it("reads seeds as a range, a list or range()", () => {
    expect(seedValues("0-3")).toEqual([0, 1, 2, 3]);
    expect(seedValues("range(3)")).toEqual([0, 1, 2]);
    expect(seedValues("4, 9")).toEqual([4, 9]);
    expect(seedValues("")).toEqual([]);
  });

  it("makes the sweep action with its member count, or null for one experiment", () => {
    const base = { optimizer: { lr: 0.001, steps: 2000 }, model: { widths: [10, 100, 100, 1] }, seed: 0 };
    const texts = { "optimizer.lr": "1e-3, 3e-3", "optimizer.steps": "500", "model.widths": "10, 100, 100, 1" };
    const s = sweepParams(texts, { base, baseId: "exp_0", seeds: "0-3", name: "lr" });
    expect(s.count).toBe(8);
    expect(s.params).toEqual({ based_on: "exp_0", grid: { "optimizer.lr": [0.001, 0.003],
      "optimizer.steps": [500] }, seeds: [0, 1, 2, 3], name: "lr" });
    expect(sweepParams({ "optimizer.lr": "0.002" }, { base, baseId: "exp_0" })).toBeNull();
  });
});

describe("bands across runs", () => {
  it("are the mean, sample std, min and max at each step", () => {
    const ys = [[1, 2, null], [3, 6, 5], [2, 4, 7]];
    const s = bandStats(ys, 3);
    expect(s.mean).toEqual([2, 4, 6]);
    expect(s.std[0]).toBeCloseTo(1, 12);
    expect(s.std[1]).toBeCloseTo(2, 12);
    expect(s.std[2]).toBeCloseTo(Math.SQRT2, 12);
    expect(s.min).toEqual([1, 2, 5]);
    expect(s.max).toEqual([3, 6, 7]);
    expect(s.n).toEqual([3, 3, 2]);
  });

  it("replace a group's runs by a mean line and a filled band, N in the label", () => {
    const trace = (experiment, values) => ({ experiment, color: "#123456", steps: Float64Array.from([0, 1, 2]),
      values: Float32Array.from(values), shape: [3] });
    const traces = [trace("exp_1", [1, 2, 3]), trace("exp_2", [3, 4, 5]), trace("exp_0", [0, 0, 0])];
    const state = { sweeps: [{ id: "sweep_0", groups: { "optimizer.lr=0.01": ["exp_1", "exp_2"] } }] };
    const groups = shownGroups(state, ["exp_0", "exp_1", "exp_2"], () => "#abcdef");
    expect(groups).toEqual([{ label: "optimizer.lr=0.01", members: ["exp_1", "exp_2"], color: "#abcdef" }]);
    const built = buildPlot(traces, { band: "minmax", bandGroups: groups });
    expect(built.specs.map((s) => s.kind)).toEqual(["line", "band-mean", "band-lo", "band-hi"]);
    expect(built.specs[1].label).toBe("optimizer.lr=0.01 (N=2)");
    expect(built.data[2]).toEqual([2, 3, 4]);
    expect(built.data[3]).toEqual([1, 2, 3]);
    expect(built.data[4]).toEqual([3, 4, 5]);
    expect(built.bands).toEqual([{ hi: 4, lo: 3, color: "#abcdef" }]);
    const std = buildPlot(traces, { band: "std", bandGroups: groups });
    expect(std.data[3][0]).toBeCloseTo(2 - Math.SQRT2, 6);
    const each = buildPlot(traces, { band: null, bandGroups: groups });
    expect(each.specs.map((s) => s.experiment)).toEqual(["exp_1", "exp_2", "exp_0"]);
  });
});

describe("the sweeps section", () => {
  it("says where the members stand", () => {
    const sweep = { members: ["a", "b", "c", "d"], counts: { "not run": 1, finished: 2, running: 1 } };
    expect(countsText(sweep.counts)).toBe("2 finished · 1 running · 1 not run");
    expect(doneFraction(sweep)).toBe(0.5);
  });
});

describe("a chart's data as CSV", () => {
  it("has a step column and one column per curve, empty where a curve has no point", async () => {
    const { plotCsv } = await import("../src/plot.js");
    const built = { data: [[0, 1, 2], [1.5, null, 3], [NaN, 2, 4]],
      specs: [{ label: "exp_0" }, { label: 'lr=0.01, "N=3"' }] };
    expect(plotCsv(built)).toBe('step,exp_0,"lr=0.01, ""N=3"""\n0,1.5,\n1,,2\n2,3,4\n');
  });
});

describe("the experiments table", () => {
  it("shows the config values that differ, and filters and sorts rows", async () => {
    const { differingPaths, knobsText, visibleRows } = await import("../src/experiments.js");
    const exp = (id, lr, seed, test, status = "finished") => ({ id, name: "", label: "MLP", status,
      config: { name: "x", optimizer: { lr, steps: 10 }, model: { widths: [4, 8, 1] }, seed },
      final: { train_loss: null, test_loss: test } });
    const exps = [exp("exp_0", 0.001, 0, 0.5), exp("exp_1", 0.003, 0, 0.2), exp("exp_2", 0.001, 1, null, "running")];
    const paths = differingPaths(exps);
    expect(paths).toEqual(["optimizer.lr", "seed"]);
    expect(knobsText(exps[1], paths)).toBe("lr=0.003 · seed=0");
    const ids = (rows) => rows.map((e) => e.id);
    expect(ids(visibleRows(exps, { filter: "LR=0.001", paths }))).toEqual(["exp_0", "exp_2"]);
    expect(ids(visibleRows(exps, { sort: { key: "test" }, paths }))).toEqual(["exp_1", "exp_0", "exp_2"]);
    expect(ids(visibleRows(exps, { sort: { key: "test", descending: true }, paths }))).toEqual(["exp_0", "exp_1", "exp_2"]);
    expect(ids(visibleRows(exps, { sort: { key: "status" }, paths }))).toEqual(["exp_0", "exp_1", "exp_2"]);
    expect(ids(visibleRows(exps, {}))).toEqual(["exp_0", "exp_1", "exp_2"]);
  });
});

describe("a sweep's members", () => {
  it("each show their status and progress, deleted ones left out", async () => {
    const { memberProgress } = await import("../src/sweeps.js");
    const sweep = { id: "sweep_0", members: ["exp_1", "exp_2", "exp_3", "exp_9"] };
    const experiments = [
      { id: "exp_1", status: "finished", progress: 1, steps_done: 60, name: "a" },
      { id: "exp_2", status: "running", progress: 0.25, steps_done: 15, name: "" },
      { id: "exp_3", status: "not run", progress: 0, steps_done: 0, name: "" },
    ];
    expect(memberProgress(sweep, experiments)).toEqual([
      { id: "exp_1", status: "finished", progress: 1, name: "a", steps: 60 },
      { id: "exp_2", status: "running", progress: 0.25, name: "", steps: 15 },
      { id: "exp_3", status: "not run", progress: 0, name: "", steps: 0 },
    ]);
  });

  it("draw as a strip of bars in the Sweeps section", async () => {
    const { createSweeps } = await import("../src/sweeps.js");
    const section = createSweeps({ act: () => Promise.resolve({ kind: "ack" }), proto: {} });
    document.body.append(section.el);
    const state = {
      sweeps: [{ id: "sweep_0", name: "lr", base: "exp_0", knobs: ["optimizer.lr", "seed"],
        members: ["exp_1", "exp_2"], groups: { "lr=0.01": ["exp_1", "exp_2"] },
        counts: { finished: 1, running: 1 }, running: true }],
      experiments: [{ id: "exp_1", status: "finished", progress: 1, steps_done: 60 },
        { id: "exp_2", status: "running", progress: 0.4, steps_done: 24 }],
    };
    section.update(state);
    const cell = (id) => section.el.querySelector(`[data-testid="member-${id}"]`);
    expect(cell("exp_1").className).toContain("fl-member-finished");
    expect(cell("exp_2").querySelector(".fl-member-fill").style.width).toBe("40%");
    expect(cell("exp_2").title).toBe("exp_2: running, 24 steps (40%)");
    state.experiments[1] = { id: "exp_2", status: "finished", progress: 1, steps_done: 60 };
    section.update(state);
    expect(cell("exp_2").className).toContain("fl-member-finished");
    expect(cell("exp_2").querySelector(".fl-member-fill").style.width).toBe("100%");
    section.el.remove();
  });
});

describe("a sweep from a form with the training knobs", () => {
  it("leaves out knobs that keep the base's value (an early stop off, eval every 1)", () => {
    const base = { optimizer: { lr: 0.001, steps: 2000 }, eval_every: 1,
      stop: { metric: "", when: "above", value: 0, for_steps: 1 } };
    const s = sweepParams({ "optimizer.lr": "1e-3, 3e-3", eval_every: "1", stop: "" },
      { base, baseId: "exp_0" });
    expect(s.params).toEqual({ based_on: "exp_0", grid: { "optimizer.lr": [0.001, 0.003] } });
    const stopped = sweepParams({ "optimizer.lr": "1e-3, 3e-3", stop: "test_loss < 0.5 for 10" },
      { base, baseId: "exp_0" });
    expect(stopped.params.grid.stop).toEqual(["test_loss < 0.5 for 10"]);
  });
});
