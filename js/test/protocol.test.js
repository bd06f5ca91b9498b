import { describe, expect, it } from "vitest";
import { bytesOf, createProtocol, decodeSeries } from "../src/protocol.js";
import { createFakeModel, seriesReply } from "./fakes.js";

describe("protocol", () => {
  it("sends one action as {kind, request, action} and resolves with the ack", async () => {
    const model = createFakeModel();
    const proto = createProtocol(model, { prefix: "t" });
    const pending = proto.action("run", { experiment: "exp_0", background: true });
    expect(model.sent).toEqual([{ kind: "action", request: "t-1",
      action: { type: "run", params: { experiment: "exp_0", background: true } } }]);
    expect(JSON.stringify(model.sent[0])).toBe(
      '{"kind":"action","request":"t-1","action":{"type":"run","params":{"experiment":"exp_0","background":true}}}');
    model.kernelSends({ kind: "ack", request: "t-1", result: { run: "abc" } });
    expect(await pending).toEqual({ kind: "ack", request: "t-1", result: { run: "abc" } });
    expect(proto.pending()).toBe(0);
  });

  it("gives every request its own id and ignores replies to other views", async () => {
    const model = createFakeModel();
    const proto = createProtocol(model, { prefix: "a" });
    const first = proto.action("note", { text: "x" });
    const second = proto.action("note", { text: "y" });
    expect(model.sent.map((m) => m.request)).toEqual(["a-1", "a-2"]);
    model.kernelSends({ kind: "ack", request: "other-1", result: {} });
    expect(proto.pending()).toBe(2);
    model.kernelSends({ kind: "error", request: "a-2", field: "text", message: "bad" });
    expect(await second).toEqual({ kind: "error", request: "a-2", field: "text", message: "bad" });
    model.kernelSends({ kind: "ack", request: "a-1", result: {} });
    expect((await first).kind).toBe("ack");
  });

  it("asks for series with experiments, metric and layer", () => {
    const model = createFakeModel();
    const proto = createProtocol(model, { prefix: "s" });
    proto.series(["exp_0", "exp_1"], "nonlinear_rate", "layers.1.pre");
    proto.series(["exp_0"], "train_loss");
    proto.activations("exp_0", "layers.1.pre", 100);
    expect(model.sent).toEqual([
      { kind: "series", request: "s-1", experiments: ["exp_0", "exp_1"], metric: "nonlinear_rate", layer: "layers.1.pre" },
      { kind: "series", request: "s-2", experiments: ["exp_0"], metric: "train_loss", layer: null },
      { kind: "activations", request: "s-3", experiment: "exp_0", layer: "layers.1.pre", step: 100 },
    ]);
  });

  it("decodes series buffers into Float64Array steps and Float32Array values", async () => {
    const model = createFakeModel();
    const proto = createProtocol(model, { prefix: "d" });
    const pending = proto.series(["exp_0", "exp_1", "exp_2"], "active_rate", "layers.1.pre");
    const [msg, buffers] = seriesReply("d-1", "active_rate", "layers.1.pre", [
      { experiment: "exp_0", steps: [0, 1, 2], values: [[0.5, 1], [0.25, 1], [0.125, 0]], shape: [3, 2] },
      { experiment: "exp_1", error: "exp_1 has not been run; lab.run('exp_1')" },
      { experiment: "exp_2", steps: [0, 20], values: [1.5, 2.5] },
    ]);
    model.kernelSends(msg, buffers);
    const reply = await pending;
    const [a, b, c] = reply.series;
    expect(a.steps).toBeInstanceOf(Float64Array);
    expect(a.values).toBeInstanceOf(Float32Array);
    expect(Array.from(a.steps)).toEqual([0, 1, 2]);
    expect(Array.from(a.values)).toEqual([0.5, 1, 0.25, 1, 0.125, 0]);
    expect(a.shape).toEqual([3, 2]);
    expect(b).toMatchObject({ experiment: "exp_1", error: "exp_1 has not been run; lab.run('exp_1')", values: null });
    expect(Array.from(c.steps)).toEqual([0, 20]);
    expect(Array.from(c.values)).toEqual([1.5, 2.5]);
  });

  it("marks a series whose buffers do not match its shape", () => {
    const steps = new Float64Array([0, 1]).buffer;
    const values = new Float32Array([1, 2, 3]).buffer;
    const out = decodeSeries({ kind: "series", series: [{ experiment: "e", shape: [2], error: null }] }, [steps, values]);
    expect(out.series[0].error).toMatch(/malformed/);
    const missing = decodeSeries({ kind: "series", series: [{ experiment: "e", shape: [2], error: null }] }, []);
    expect(missing.series[0].error).toMatch(/missing/);
  });

  it("decodes an activations reply into a Float32Array", async () => {
    const model = createFakeModel();
    const proto = createProtocol(model, { prefix: "x" });
    const pending = proto.activations("exp_0", "layers.1.pre", 7);
    model.kernelSends({ kind: "activations", request: "x-1", step: 5, steps: [0, 5, 10], shape: [2, 2] },
      [new Float32Array([1, -1, 2, -2]).buffer]);
    const reply = await pending;
    expect(reply.values).toBeInstanceOf(Float32Array);
    expect(Array.from(reply.values)).toEqual([1, -1, 2, -2]);
    expect(reply.step).toBe(5);
  });

  it("copies unaligned views so typed arrays can be made of them", () => {
    const bytes = new Uint8Array(11);
    new DataView(bytes.buffer).setFloat64(3, 42, true);
    const buf = bytesOf(new DataView(bytes.buffer, 3, 8));
    expect(new Float64Array(buf)[0]).toBe(42);
  });

  it("destroy stops listening", () => {
    const model = createFakeModel();
    const proto = createProtocol(model);
    expect(model.listenerCount("msg:custom")).toBe(1);
    proto.destroy();
    expect(model.listenerCount("msg:custom")).toBe(0);
  });
});
