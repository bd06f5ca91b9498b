"""Panel costs, measured in one run.

    python benchmarks/panel.py [--repeats 3]

1. Training slowdown from live updates: the reference experiment trained in the
   background with the panel attached (state pushed PUSH_HZ times a second, each
   push serialised as the comm would) against the same run with no panel,
   alternated. Target: under 5% slower at >= 4 updates a second.
2. Size of the built bundle (featurelab/static/widget.js + .css). Target < 400 KB.
3. Redraw of one chart of 10 series x 2000 points in headless Chromium, through the
   panel's own chart code (js/bench/chart.js, bundled on the fly). Target: median < 16 ms
   (one frame at 60 Hz; issue 16).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import featurelab as fl
from featurelab.ui.widget import PUSH_HZ, STATIC

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = {
    "model": {"kind": "mlp", "widths": [10, 100, 100, 1], "activation": "relu"},
    "data": {"task": "sin2", "dim": 10, "freq": 10, "n_train": 500, "n_test": 200},
    "optimizer": {"name": "adam", "lr": 1e-3, "steps": 2000},
    "observables": ["train_loss", "test_loss", "weight_l2_norm", "hidden_activations",
                    "active_rate", "nonlinear_fraction"],
}


def timed_run(with_panel: bool, root: Path, index: int) -> tuple[float, int]:
    lab = fl.Lab(f"bench{index}", root=root)
    pushes = 0
    if with_panel:
        panel = lab.panel

        def count(change: dict) -> None:
            nonlocal pushes
            pushes += 1
            json.dumps(change["new"])  # what the comm does with every push

        panel.observe(count, names="state")
    lab.create_experiment(**REFERENCE, seed=index)  # a new seed: no run cache reuse
    start = time.perf_counter()
    lab.run("exp_0", background=True).wait()
    return time.perf_counter() - start, pushes


def training_slowdown(repeats: int) -> None:
    bare, live, rates = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            bare.append(timed_run(False, Path(tmp), 2 * i)[0])
            seconds, pushes = timed_run(True, Path(tmp), 2 * i + 1)
            live.append(seconds)
            rates.append(pushes / seconds)
    print(f"training, no panel:            {min(bare):.3f} s")
    print(f"training, panel live at {PUSH_HZ} Hz:  {min(live):.3f} s "
          f"({min(rates):.1f}-{max(rates):.1f} updates/s)")
    print(f"slowdown from live updates: {(min(live) / min(bare) - 1) * 100:+.1f}%  "
          "(target < 5%)")


def bundle_size() -> None:
    files = [STATIC / "widget.js", STATIC / "widget.css"]
    if not all(f.exists() for f in files):
        print("bundle: not built (npm ci --prefix js && npm run build --prefix js)")
        return
    total = sum(f.stat().st_size for f in files)
    print(f"bundle: {total / 1024:.0f} KB  (target < 400 KB)")


def chart_redraw() -> None:
    entry = ROOT / "js" / "bench" / "chart.js"
    if not entry.exists():
        print("chart redraw: js/bench/chart.js missing")
        return
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bench.js"
        subprocess.run([str(ROOT / "js" / "node_modules" / ".bin" / "esbuild"), str(entry),
                        "--bundle", "--format=esm", f"--outfile={bundle}"], check=True,
                       capture_output=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.set_content('<html><body><div id="root" style="width:900px"></div></body></html>')
            # inline: Chromium refuses ES modules from file:// URLs
            page.add_script_tag(content=bundle.read_text(), type="module")
            page.wait_for_function("() => window.benchResult !== undefined", timeout=60_000)
            result = page.evaluate("() => window.benchResult")
            browser.close()
    print(f"chart redraw, 10 series x 2000 points: median {result['median_ms']:.1f} ms, "
          f"max {result['max_ms']:.1f} ms over {result['runs']} redraws  (target: median < 16 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    training_slowdown(args.repeats)
    bundle_size()
    chart_redraw()


if __name__ == "__main__":
    main()
