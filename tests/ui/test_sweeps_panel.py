"""A sweep from the panel in a real JupyterLab: the form's several values and seeds make
a sweep (its member count shown before creating), Run trains it on worker processes,
one cell records it, and a chart draws its groups as mean and band, N in the legend."""

from __future__ import annotations

import re
import uuid

from . import jlab
from .test_panel_smoke import show_panel

TINY = ("lab.create_experiment(model={'widths': [4, 8, 8, 1]}, "
        "data={'dim': 4, 'n_train': 32, 'n_test': 16}, optimizer={'lr': 0.01, 'steps': 60})")


def test_a_sweep_from_the_form_runs_and_bands_its_groups(jupyter, page, screenshot, stopwatch):
    name = f"ui-sweep-{uuid.uuid4().hex[:6]}.ipynb"
    root = f"labs/{uuid.uuid4().hex[:8]}"
    opening = (f"import featurelab as fl\nlab = fl.Lab('ui-sweep', root={root!r}, fresh=True)\n"
               f"{TINY}\nlab")
    jlab.write_notebook(jupyter.root_dir / name, opening)
    panel = show_panel(page, jupyter, name)
    stopwatch("panel rendered")

    panel.get_by_test_id("exp-row-exp_0").click()
    panel.get_by_test_id("new-experiment").click()
    form = panel.get_by_test_id("experiment-form")
    form.wait_for(state="visible")
    form.get_by_test_id("cfg-optimizer-lr").fill("0.01, 0.03")
    form.get_by_test_id("sweep-seeds").fill("0-2")
    count = form.get_by_test_id("sweep-count")
    assert count.inner_text() == "Sweep: 6 members"
    assert form.get_by_test_id("create").inner_text() == "Create sweep (6)"
    form.get_by_test_id("cfg-optimizer-lr").fill("logspace(-2, x, 3)")
    assert "numbers" in count.inner_text()  # says what it cannot read
    form.get_by_test_id("cfg-optimizer-lr").fill("0.01, 0.03")
    screenshot("form")
    form.get_by_test_id("create").click()
    row = panel.get_by_test_id("sweep-sweep_0")
    row.wait_for()
    stopwatch("sweep created")

    # the table tells the members apart by what differs, and filters and sorts them
    knobs = panel.get_by_test_id("exp-row-exp_3").locator(".fl-knobs")
    assert knobs.inner_text() == "lr=0.03 · seed=0"
    panel.get_by_test_id("filter-experiments").fill("lr=0.03")
    visible = panel.locator("tr.fl-row:visible")
    assert visible.count() == 3, visible.all_inner_texts()
    panel.get_by_test_id("filter-experiments").fill("")
    screenshot("table")
    run = panel.get_by_test_id("sweep-run-sweep_0")
    assert run.inner_text() == "Run (6)"
    run.click()
    counts = panel.get_by_test_id("sweep-counts-sweep_0")
    page.wait_for_function(
        "el => el.textContent === '6 finished'", arg=counts.element_handle(), timeout=120_000)
    stopwatch("sweep trained")

    panel.get_by_test_id("sweep-show-sweep_0").click()
    panel.get_by_test_id("metric-train_loss").click()
    chart = panel.get_by_test_id("chart-train_loss")
    chart.wait_for()
    band = chart.get_by_test_id("band")
    band.wait_for(state="visible")
    band.select_option("std")
    legend = chart.locator(".fl-readout")
    page.wait_for_function("el => el.textContent.includes('(N=3)')", arg=legend.element_handle())
    text = legend.inner_text()
    assert "optimizer.lr=0.01 (N=3)" in text and "optimizer.lr=0.03 (N=3)" in text, text
    stopwatch("bands drawn")
    chart.get_by_test_id("downloads").locator("summary").click()  # the download menu
    with page.expect_download() as got:
        chart.get_by_test_id("download-csv").click()
    assert got.value.suggested_filename == "train_loss.csv"
    lines = open(got.value.path(), encoding="utf-8").read().splitlines()
    assert lines[0].startswith("step,optimizer.lr=0.01 (N=3),") and len(lines) == 61, lines[:2]
    chart.get_by_test_id("downloads").locator("summary").click()
    with page.expect_download() as got:
        chart.get_by_test_id("download-png").click()
    assert open(got.value.path(), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    chart.get_by_test_id("downloads").locator("summary").click()
    with page.expect_download() as got:
        chart.get_by_test_id("download-svg").click()
    assert got.value.suggested_filename == "train_loss.svg"
    svg = open(got.value.path(), encoding="utf-8").read()
    assert "<svg" in svg and "train_loss" in svg, svg[:200]
    for width in (1100, 1400):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(300)
        screenshot(f"bands-{width}-light", panel)
        jlab.set_theme(page, jlab.DARK)
        try:
            page.wait_for_timeout(300)
            screenshot(f"bands-{width}-dark", panel)
        finally:
            jlab.set_theme(page, jlab.LIGHT)

    # the kernel's view: who did what, and one cell for the sweep's run
    out = jlab.run_code(page, "\n".join([
        "print([e.type for e in lab.log if e.actor == 'human' and e.type != 'run'])",
        "print(sorted({e.params.get('sweep') for e in lab.log if e.type == 'run'}))",
    ]))
    kinds, sweeps = out.split("\n")[:2]
    assert re.search(r"'sweep', 'run_sweep'.*'set_band'", kinds), kinds
    assert sweeps == "['sweep_0']", sweeps
    sources = [c["source"] for c in jlab.cells(page)]
    sources = ["".join(s) if isinstance(s, list) else s for s in sources]
    assert "lab.run('sweep_0')" in sources, sources
    assert not [s for s in sources if s.startswith("lab.run('exp_")], sources
    assert not page.errors, "\n".join(page.errors)
