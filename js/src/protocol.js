// The panel <-> kernel protocol (see featurelab/ui/widget.py):
//   {"kind": "action", "request": id, "action": {"type", "params"}} -> ack | error
//   {"kind": "series", "request": id, "experiments", "metric", "layer"} -> series + 2 buffers each
//   {"kind": "activations", "request": id, "experiment", "layer", "step"} -> activations + 1 buffer
//   {"kind": "predictions", "request": id, "experiment", "step"} -> predictions + a buffer per array
//   {"kind": "stop_sweep", "request": id, "sweep"} -> ack {cancelled: [...]} | error
//   {"kind": "svg", "request": id, "metric"} -> {svg: "<svg ...>"} | error
// Every request gets a promise that resolves with the reply (an error reply included;
// callers look at reply.kind). Replies for other views of the same model are ignored.

let views = 0;

/** An ArrayBuffer holding exactly the bytes of a buffer the kernel sent (ArrayBuffer,
 *  DataView or typed array), copied so typed arrays are aligned. */
export function bytesOf(buffer) {
  if (buffer instanceof ArrayBuffer) return buffer;
  if (ArrayBuffer.isView(buffer)) {
    return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);
  }
  if (buffer && buffer.buffer instanceof ArrayBuffer) return bytesOf(new Uint8Array(buffer.buffer));
  throw new TypeError("not a binary buffer");
}

const product = (shape) => shape.reduce((a, b) => a * b, 1);

/** A series reply with its buffers decoded: each series without an error gets
 *  steps (Float64Array) and values (Float32Array, row-major as `shape`). */
export function decodeSeries(msg, buffers = []) {
  let b = 0;
  const series = (msg.series || []).map((s) => {
    if (s.error) return { ...s, steps: null, values: null };
    if (b + 1 >= buffers.length) {
      return { ...s, error: "the reply is missing its data buffers", steps: null, values: null };
    }
    const steps = new Float64Array(bytesOf(buffers[b]));
    const values = new Float32Array(bytesOf(buffers[b + 1]));
    b += 2;
    const shape = s.shape && s.shape.length ? s.shape : [values.length];
    if (shape[0] !== steps.length || product(shape) !== values.length) {
      return { ...s, error: `malformed data: shape ${JSON.stringify(shape)} with ` +
        `${steps.length} steps and ${values.length} values`, steps: null, values: null };
    }
    return { ...s, shape, steps, values };
  });
  return { ...msg, series };
}

export function decodeActivations(msg, buffers = []) {
  if (!buffers.length) return { ...msg, values: null };
  const values = new Float32Array(bytesOf(buffers[0]));
  return { ...msg, values };
}

/** A predictions reply: msg.data[name] is a Float32Array for each name of msg.arrays. */
export function decodePredictions(msg, buffers = []) {
  const names = msg.arrays || [];
  if (buffers.length < names.length) {
    return { kind: "error", request: msg.request, field: null, message: "the predictions reply is missing its data buffers" };
  }
  const data = Object.fromEntries(names.map((name, i) => [name, new Float32Array(bytesOf(buffers[i]))]));
  return { ...msg, data };
}

export function decodeReply(msg, buffers) {
  if (msg.kind === "series") return decodeSeries(msg, buffers);
  if (msg.kind === "predictions") return decodePredictions(msg, buffers);
  if (msg.kind === "activations") return decodeActivations(msg, buffers);
  return msg;
}

export function createProtocol(model, { prefix } = {}) {
  views += 1;
  const tag = prefix ?? `v${views}${Math.random().toString(36).slice(2, 7)}`;
  let counter = 0;
  const pending = new Map();

  const onMessage = (msg, buffers) => {
    if (!msg || msg.request == null || !pending.has(msg.request)) return;
    const resolve = pending.get(msg.request);
    pending.delete(msg.request);
    let reply;
    try {
      reply = decodeReply(msg, buffers || []);
    } catch (exc) {
      reply = { kind: "error", request: msg.request, field: null,
        message: `could not read the reply: ${exc.message}` };
    }
    resolve(reply);
  };
  model.on("msg:custom", onMessage);

  function request(content) {
    const id = `${tag}-${++counter}`;
    const message = { kind: content.kind, request: id, ...content };
    return new Promise((resolve) => {
      pending.set(id, resolve);
      try {
        model.send(message);
      } catch (exc) {
        pending.delete(id);
        resolve({ kind: "error", request: id, field: null,
          message: `could not reach the kernel: ${exc.message}` });
      }
    });
  }

  return {
    /** One user action: {"kind": "action", "request": id, "action": {type, params}}. */
    action: (type, params = {}) => request({ kind: "action", action: { type, params } }),
    series: (experiments, metric, layer = null) =>
      request({ kind: "series", experiments, metric, layer: layer ?? null }),
    activations: (experiment, layer, step) =>
      request({ kind: "activations", experiment, layer, step }),
    /** Any other request ({kind: "stop_sweep", sweep}, ...): its ack or error. */
    request,
    pending: () => pending.size,
    destroy() {
      model.off("msg:custom", onMessage);
      pending.clear();
    },
  };
}
