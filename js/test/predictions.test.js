import { afterEach, describe, expect, it, vi } from "vitest";
import { finiteRange, niceTicks } from "../src/canvas.js";
import { decodeReply } from "../src/protocol.js";
import { gridInputs, pairCells, predictionKey, predictionSummary, predictionsCsv, viridis } from "../src/predictions.js";
import { loadState, mountPanel, unmountPanels } from "./fakes.js";

afterEach(unmountPanels);

const f32 = (xs) => Float32Array.from(xs);

// A 1-D regression: 2 train and 1 test samples, a 3-point grid over [-1, 1].
const CURVE = { kind: "predictions", experiment: "exp_0", step: 10, steps: [0, 10], view: "curve",
  n_train: 2, n_test: 1, grid: [3], extent: [-1, 1], dim: 1, n_classes: 0, train: 0.25, test: null,
  data: { inputs: f32([-0.5, 0.5, 0]), target: f32([1, 2, 3]), prediction: f32([1.5, 2, 3, 0, 1, 2]) } };
// 3 x 3 modular division: b = 0 is no sample; 4 train pairs then 2 test pairs.
const PAIRS = { kind: "predictions", experiment: "exp_1", step: 5, steps: [5], view: "pairs",
  n_train: 4, n_test: 2, grid: [], extent: [], dim: 2, n_classes: 3, train: 0.75, test: 0.5,
  data: { inputs: f32([0, 1, 1, 1, 2, 2, 1, 2, 0, 2, 2, 1]), target: f32([0, 1, 1, 2, 0, 2]),
    prediction: f32([0, 1, 1, 0, 0, 1]) } };

describe("predictions helpers", () => {
  it("places round ticks inside a range", () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(-2.6, 1.2, 4)).toEqual([-2, -1, 0, 1]);
    expect(niceTicks(3, 3)).toEqual([3]);
    expect(finiteRange([f32([1, NaN, 3])], 0)).toEqual([1, 3]);
    expect(finiteRange([f32([2])])).toEqual([1, 3]);
    expect(finiteRange([[]])).toBe(null);
  });

  it("colours the plane with viridis from dark to yellow", () => {
    expect(viridis(0)).toEqual([68, 1, 84]);
    expect(viridis(1)).toEqual([253, 231, 37]);
    expect(viridis(0.5)).toEqual([33, 145, 140]);
  });

  it("rebuilds the grid's inputs as the kernel orders them (x0 fastest)", () => {
    expect(gridInputs(CURVE)).toEqual([[-1], [0], [1]]);
    const plane = { grid: [2, 2], extent: [0, 1, 10, 20] };
    expect(gridInputs(plane)).toEqual([[0, 10], [1, 10], [0, 20], [1, 20]]);
    expect(gridInputs(PAIRS)).toEqual([]);
  });

  it("marks each pair right or wrong, train or test, and leaves b = 0 empty", () => {
    const cells = pairCells(PAIRS);
    expect(cells[0 * 3 + 1]).toBe("train_right");
    expect(cells[2 * 3 + 1]).toBe("test_wrong");
    expect(cells[0 * 3 + 2]).toBe("test_right");
    expect(cells[1 * 3 + 2]).toBe("train_wrong");
    expect(cells[0]).toBe(null);
    expect(cells.filter(Boolean)).toHaveLength(6);
  });

  it("says how good the predictions are, as accuracy or MSE", () => {
    expect(predictionSummary(PAIRS)).toBe("exp_1 at step 5: train accuracy 75.0% · test accuracy 50.0%");
    expect(predictionSummary(CURVE)).toBe("exp_0 at step 10: train MSE 0.25 · test MSE –");
    const keys = predictionKey(PAIRS, "#000").map((e) => e.textContent);
    expect(keys).toEqual(["train, right (3)", "train, wrong (1)", "test, right (1)", "test, wrong (1)"]);
    expect(predictionKey(CURVE, "#123456").map((e) => e.textContent)).toEqual(["train (2)", "test (1)", "prediction"]);
    expect(predictionKey({ ...PAIRS, left_out: 3 }, "#000").at(-1).textContent).toBe("not kept (3)");
  });

  it("writes the samples and the grid as CSV", () => {
    expect(predictionsCsv(CURVE)).toBe("split,x0,target,prediction\ntrain,-0.5,1,1.5\ntrain,0.5,2,2\n" +
      "test,0,3,3\ngrid,-1,,0\ngrid,0,,1\ngrid,1,,2\n");
    expect(predictionsCsv(PAIRS).split("\n")[0]).toBe("split,a,b,target,prediction");
  });

  it("decodes a reply's float32 arrays by name", () => {
    const reply = decodeReply({ kind: "predictions", request: "r", arrays: ["target", "prediction"] },
      [f32([1, 2]).buffer, new DataView(f32([3]).buffer)]);
    expect(Array.from(reply.data.target)).toEqual([1, 2]);
    expect(Array.from(reply.data.prediction)).toEqual([3]);
    expect(decodeReply({ kind: "predictions", request: "r", arrays: ["target"] }, []).kind).toBe("error");
  });
});

describe("the predictions chart", () => {
  it("asks for the newest snapshot, shows its errors and key, and plays the steps", async () => {
    vi.useFakeTimers();
    try {
      const state = loadState("reference-state");
      state.metric_kinds.predictions = "predictions";
      state.experiments[0].observables.push("predictions");
      state.view.charts.predictions = { ...state.view.charts.train_loss, metric: "predictions", layer: null };
      state.view.order = [...(state.view.order || []), "predictions"];
      const { model, el } = mountPanel(state);
      const card = el.querySelector('[data-testid="chart-predictions"]');
      expect(card).not.toBe(null);
      const q = (id) => card.querySelector(`[data-testid="${id}"]`);
      expect(q("log-x")?.hidden ?? true).toBe(true);
      const asked = () => model.sent.filter((x) => x.kind === "predictions");
      expect(asked().at(-1)).toMatchObject({ experiment: "exp_0", step: null });
      const answer = () => {
        for (const m of asked().filter((x) => !x.answered)) {
          m.answered = true;
          const step = m.step == null ? 20 : Math.max(...[0, 10, 20].filter((s) => s <= m.step));
          const { data, ...rest } = CURVE;
          model.kernelSends({ ...rest, request: m.request, step, steps: [0, 10, 20],
            arrays: ["inputs", "target", "prediction"] }, [data.inputs.buffer, data.target.buffer, data.prediction.buffer]);
        }
      };
      answer();
      await vi.advanceTimersByTimeAsync(0);
      expect(q("predictions-note").textContent).toBe("exp_0 at step 20: train MSE 0.25 · test MSE –");
      expect(q("predictions-key").textContent).toContain("train (2)");
      const before = asked().length;
      q("play-steps").click();
      for (let i = 0; i < 5; i++) {
        answer();
        await vi.advanceTimersByTimeAsync(200);
      }
      expect(asked().slice(before).map((m) => m.step)).toEqual([0, 10, 20]);
      expect(q("step-label").textContent).toBe("step 20");
      q("download-svg").click(); // the kernel draws what the card shows
      await vi.advanceTimersByTimeAsync(0);
      expect(model.sent.filter((m) => m.kind === "svg").at(-1)).toMatchObject(
        { metric: "predictions", experiment: "exp_0", step: 20 });
    } finally {
      vi.useRealTimers();
    }
  });
});
