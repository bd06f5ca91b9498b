// Drawing on a canvas where uPlot does not fit (images, scatters with their own x per
// point): a device-pixel-ratio-sized blank canvas, nice ticks, and linear axes.
import { fmtG } from "./format.js";

export function context2d(canvas) {
  try {
    return canvas.getContext ? canvas.getContext("2d") : null;
  } catch {
    return null;
  }
}

/** A cleared canvas sized for the device's pixel ratio: {g, width, height}, or null. */
export function blankCanvas(canvas, cssHeight) {
  const g = context2d(canvas);
  if (!g) return null;
  const dpr = (typeof window !== "undefined" && window.devicePixelRatio) || 1;
  const width = Math.max(240, canvas.clientWidth || canvas.parentElement?.clientWidth || 600);
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(cssHeight * dpr);
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, width, cssHeight);
  return { g, width, height: cssHeight };
}

/** About `count` round tick values (1, 2 or 5 times a power of ten apart) in [lo, hi]. */
export function niceTicks(lo, hi, count = 5) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi <= lo) return Number.isFinite(lo) ? [lo] : [];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  }
  return out;
}

/** [lo, hi] of finite values of some arrays, widened by `pad` of the span (a single
 *  value gets +-1); null when there is none. */
export function finiteRange(arrays, pad = 0.05) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of arrays) {
    for (const v of a) {
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (lo === Infinity) return null;
  if (hi === lo) return [lo - 1, hi + 1];
  const d = (hi - lo) * pad;
  return [lo - d, hi + d];
}

/**
 * Linear axes in a box {left, top, width, height} for ranges x and y ([lo, hi]): a frame,
 * ticks with labels on both, and axis titles. Returns {sx, sy}: data -> pixel.
 */
export function drawAxes(g, box, x, y, theme, { xLabel = "", yLabel = "" } = {}) {
  const { left, top, width, height } = box;
  const spread = (r) => (r[1] > r[0] ? r : [r[0] - 1, r[0] + 1]); // one value spans nothing
  x = spread(x);
  y = spread(y);
  const sx = (v) => left + ((v - x[0]) / (x[1] - x[0])) * width;
  const sy = (v) => top + height - ((v - y[0]) / (y[1] - y[0])) * height;
  g.strokeStyle = theme.axis;
  g.lineWidth = 1;
  g.strokeRect(left - 0.5, top - 0.5, width + 1, height + 1);
  g.fillStyle = theme.fg2;
  g.font = `11px ${theme.font}`;
  g.textAlign = "center";
  g.textBaseline = "top";
  for (const t of niceTicks(x[0], x[1], Math.max(3, Math.floor(width / 90)))) {
    const px = sx(t);
    g.beginPath();
    g.moveTo(px, top + height);
    g.lineTo(px, top + height + 4);
    g.stroke();
    g.fillText(fmtG(t, 3), px, top + height + 6);
  }
  if (xLabel) g.fillText(xLabel, left + width / 2, top + height + 19);
  g.textAlign = "right";
  g.textBaseline = "middle";
  for (const t of niceTicks(y[0], y[1], Math.max(3, Math.floor(height / 50)))) {
    const py = sy(t);
    g.beginPath();
    g.moveTo(left - 4, py);
    g.lineTo(left, py);
    g.stroke();
    g.fillText(fmtG(t, 3), left - 6, py);
  }
  if (yLabel) {
    g.save();
    g.translate(11, top + height / 2);
    g.rotate(-Math.PI / 2);
    g.textAlign = "center";
    g.fillText(yLabel, 0, 0);
    g.restore();
  }
  return { sx, sy };
}

/**
 * A table of colours ([r, g, b] per cell, row-major, `rows` x `cols`) drawn into a box
 * {left, top, width, height} as sharp cells, framed, with the first and last index on
 * each axis and the axes' names (a heatmap's neurons and samples, a modular task's b
 * and a).
 */
export function drawCells(g, colors, rows, cols, box, theme, { xName = "", yName = "" } = {}) {
  const { left, top, width: w, height: hgt } = box;
  const image = new ImageData(cols, rows);
  colors.forEach((c, i) => image.data.set([c[0], c[1], c[2], 255], 4 * i));
  const off = document.createElement("canvas");
  off.width = cols;
  off.height = rows;
  off.getContext("2d").putImageData(image, 0, 0);
  g.imageSmoothingEnabled = false;
  g.drawImage(off, left, top, w, hgt);
  g.strokeStyle = theme.axis;
  g.strokeRect(left - 0.5, top - 0.5, w + 1, hgt + 1);
  g.fillStyle = theme.fg2;
  g.font = `11px ${theme.font}`;
  g.textBaseline = "top";
  g.textAlign = "left";
  g.fillText("0", left, top + hgt + 4);
  g.textAlign = "right";
  g.fillText(String(cols - 1), left + w, top + hgt + 4);
  g.textAlign = "center";
  if (xName) g.fillText(xName, left + w / 2, top + hgt + 15);
  g.textAlign = "right";
  g.textBaseline = "top";
  g.fillText("0", left - 6, top);
  g.textBaseline = "bottom";
  g.fillText(String(rows - 1), left - 6, top + hgt);
  if (yName) {
    g.save();
    g.translate(14, top + hgt / 2);
    g.rotate(-Math.PI / 2);
    g.textAlign = "center";
    g.textBaseline = "middle";
    g.fillText(yName, 0, 0);
    g.restore();
  }
}
