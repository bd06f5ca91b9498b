// Redraw cost of one chart of 10 series x 2000 points, through the panel's own code
// (buildPlot + createPlot.draw, the path a live update takes). Run by
// benchmarks/panel.py in headless Chromium; the result lands in window.benchResult.
import { createPlot } from "../src/plot.js";
import { buildPlot } from "../src/series.js";

const SERIES = 10;
const POINTS = 2000;
const RUNS = 30;

function traces(shift) {
  const steps = Float64Array.from({ length: POINTS }, (_, i) => i);
  return Array.from({ length: SERIES }, (_, s) => ({
    experiment: `exp_${s}`,
    color: `hsl(${s * 36}, 70%, 45%)`,
    steps,
    shape: [POINTS],
    values: Float32Array.from({ length: POINTS },
      (_, i) => Math.exp(-i / (300 + 50 * s)) + 0.05 * Math.sin((i + shift) / 20)),
  }));
}

async function settle() {
  // uPlot commits a redraw in a microtask; two turns flush it and what it queues.
  await Promise.resolve();
  await Promise.resolve();
}

async function main() {
  const root = document.getElementById("root");
  const plot = createPlot({ height: 300, theme: "light" });
  root.append(plot.el);
  plot.draw(buildPlot(traces(0)), {});
  await settle();
  const times = [];
  for (let r = 1; r <= RUNS; r++) {
    const start = performance.now();
    plot.draw(buildPlot(traces(r)), {});
    await settle();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  window.benchResult = { runs: RUNS, median_ms: times[RUNS >> 1], max_ms: times[RUNS - 1] };
}

main();
