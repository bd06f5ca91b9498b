"""Acceptance: the whole reference session (DESIGN.md, steps 1-7) clicked through the panel.

From a notebook whose one cell shows a fresh Lab, every step is a click, a choice or typing
in the panel of a real JupyterLab: exp_0 with the reference config, its run, the
hidden_activations chart (enlarged, layer 1 pre, neuron stats, active_rate), the DIY
statistic nonlinear_rate typed into the source box, exp_1 = exp_0 + nonlinear_rate, its
run, the nonlinear_rate chart of layer 1 zoomed to steps 0-100 and fitted (sigmoid first),
then the fits hidden, a note and the blog draft exported from the Write-up section (equal
to what `lab.export_blog` writes of the same lab). Screenshots of each step in the light
theme, of the final panel in the dark theme; the kernel then confirms the Lab's state and
that every action came from the panel (actor "human").
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from . import jlab
from .test_panel_smoke import open_panel

# Two 2000-step runs: a few seconds each on a quiet machine, far more on a loaded 2-core one.
RUN_TIMEOUT = 240_000
STEP_TIMEOUT = 60_000  # a round trip to the kernel (series, fit, ...) under load
ENDED = ("finished", "cancelled", "diverged", "failed", "interrupted")

LAYER = "layers.1.pre"
LAYER_LABEL = "Layer 1 pre (500 x 100)"

# Step 1 of the reference session, as typed into the New experiment form.
REFERENCE_FORM = {
    "cfg-model-widths": "10, 100, 100, 1",
    "cfg-data-dim": "10",
    "cfg-data-freq": "10",
    "cfg-data-n_train": "500",
    "cfg-data-n_test": "200",
    "cfg-optimizer-lr": "1e-3",
    "cfg-optimizer-steps": "2000",
    "cfg-seed": "0",
}
REFERENCE_SELECTS = {"cfg-model-kind": "mlp", "cfg-model-activation": "relu",
                     "cfg-data-task": "sin2", "cfg-optimizer-name": "adam", "cfg-loss": "mse"}
REFERENCE_OBSERVABLES = ["train_loss", "test_loss", "weight_l2_norm", "hidden_activations"]

# Step 4: the DIY statistic, exactly as DESIGN.md writes it.
NONLINEAR_RATE = ("def compute_nonlinear_rate(tensor, dim, keepdim=False):\n"
                  "    t = tensor.float()\n"
                  "    return ((t > 0) * (t < 1)).float().mean(dim=dim, keepdim=keepdim)\n")

# The kernel's view of the session, printed as one JSON line.
KERNEL_CHECK = """\
import json as _json
_fit = list(lab.fits.values())[-1]
_cfg = {e: x.config.to_dict() for e, x in lab.experiments.items()}
print(_json.dumps({
    "experiments": list(lab.experiments),
    "based_on": {e: x.based_on for e, x in lab.experiments.items()},
    "status": {e: lab.runs[lab.latest[e]].status if e in lab.latest else None
               for e in lab.experiments},
    "config": _cfg,
    "nonlinear_rate_on": (lab.statistics["nonlinear_rate"].on
                          if "nonlinear_rate" in lab.statistics else None),
    "fit": {"experiment": _fit.experiment, "metric": _fit.metric, "layer": _fit.layer,
            "x_range": list(_fit.table.x_range or []),
            "families": [r.family for r in _fit.table.rows],
            "best": _fit.table.best.family, "r2": _fit.table.best.r2},
    "actors": sorted({e.actor for e in lab.log}),
    "log": [e.type for e in lab.log],
    "cells": [c.source for c in lab.cells()],
}))"""

NOTE = "Phase I removes features; the plateau holds about 20 nonlinear neurons."

# Step 7's check: code exports the same lab into another folder, under the same file
# name (the pictures' folder is named after it), and the two drafts are compared.
SAME_DRAFT = """\
import json as _json, os as _os, pathlib as _pl
_os.makedirs("from-code", exist_ok=True)
_panel = _pl.Path("reference.md")
_code = lab.export_blog("from-code/reference.md")
_pics = sorted(p.name for p in _pl.Path("reference_files").iterdir())
print(_json.dumps({
    "text": bool(_panel.read_text()),
    "pictures": len(_pics),
    "equal": _panel.read_text() == _code.read_text() and all(
        (_pl.Path("reference_files") / p).read_bytes()
        == (_pl.Path("from-code/reference_files") / p).read_bytes() for p in _pics),
    "note_line": [l for l in _panel.read_text().splitlines() if "Phase I" in l][:1] and
                 [l for l in _panel.read_text().splitlines() if "Phase I" in l][0],
}))"""

# Every uPlot canvas is as wide as its box (give or take a pixel of rounding).
PLOTS_FIT = """() => [...document.querySelectorAll('.fl-plot')].every(box => {
    const u = box.querySelector('.uplot');
    return !u || Math.abs(u.getBoundingClientRect().width - box.clientWidth) <= 2;
})"""


@pytest.fixture(autouse=True)
def _patient_expect():
    """expect() waits 5 s by default: a kernel round trip under load may take longer."""
    expect.set_options(timeout=STEP_TIMEOUT)
    yield
    expect.set_options(timeout=5_000)


def shoot(screenshot, target, name: str) -> None:
    """Scrolls `target` (a section or card of the panel) to the top of the notebook, lets the
    charts repaint, and saves the page."""
    target.evaluate("""el => {
      el.scrollIntoView({block: 'start'});
      const scroller = el.closest('.jp-WindowedPanel-outer');
      if (scroller) scroller.scrollTop -= 8;  // the card's top border stays in the picture
    }""")
    target.page.evaluate(
        "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    screenshot(name)


def select_row(panel, exp: str) -> None:
    """Clicks an experiment's row (it alone becomes the selection)."""
    row = panel.get_by_test_id(f"exp-row-{exp}")
    row.click()
    expect(row).to_have_attribute("aria-selected", "true")
    expect(panel.locator('[data-testid^="exp-row-"][aria-selected="true"]')).to_have_count(1)


def run_selected(panel, exp: str) -> None:
    """Run (in the background) and wait for the row's status to end; it must be finished."""
    status = panel.get_by_test_id(f"exp-row-{exp}").locator(".fl-status")
    expect(panel.get_by_test_id("run")).to_be_enabled()
    panel.get_by_test_id("run").click()
    expect(status).not_to_have_text("new")  # the kernel acknowledged the run
    expect(status).to_have_text(re.compile("|".join(ENDED)), timeout=RUN_TIMEOUT)
    assert status.inner_text() == "finished", (
        f"{exp} ended {status.inner_text()}: {status.get_attribute('title')}")
    expect(panel.get_by_test_id(f"exp-row-{exp}").locator(".fl-pct")).to_have_text("100%")


def view_results(panel, exp: str) -> None:
    panel.get_by_test_id("view-results").click()
    expect(panel.get_by_test_id("viewing")).to_have_text(f"showing {exp}")


def choose_layer(card) -> None:
    select = card.get_by_test_id("layer-select")
    select.select_option(label=LAYER_LABEL)
    expect(select).to_have_value(LAYER)
    expect(card.locator(".fl-card-sub")).to_contain_text(LAYER_LABEL)  # the kernel's state


def visible_errors(panel) -> list[str]:
    return panel.locator(".fl-error.fl-has-error").all_inner_texts()


def test_reference_session_clicked_through_the_panel(jupyter, page, screenshot, stopwatch):
    page.context.set_default_timeout(STEP_TIMEOUT)
    panel = open_panel(page, jupyter, "reference")
    expect(panel).to_have_attribute("data-testid", "featurelab-panel")
    expect(panel.get_by_test_id("lab-name")).to_have_text("lab reference")
    stopwatch("panel rendered")

    # 1. New experiment with the reference config -> exp_0
    panel.get_by_test_id("new-experiment").click()
    form = panel.get_by_test_id("experiment-form")
    expect(form).to_be_visible()
    for testid, value in REFERENCE_SELECTS.items():
        form.get_by_test_id(testid).select_option(value)
    for testid, value in REFERENCE_FORM.items():
        form.get_by_test_id(testid).fill(value)
    boxes = form.locator('input[type="checkbox"][data-testid^="obs-"]')
    for name in [b.get_attribute("value") for b in boxes.all()]:
        form.get_by_test_id(f"obs-{name}").set_checked(name in REFERENCE_OBSERVABLES)
    shoot(screenshot, panel, "01-new-experiment-form")
    form.get_by_test_id("create").click()
    row0 = panel.get_by_test_id("exp-row-exp_0")
    expect(row0).to_contain_text("MLP 10, 100, 100, 1, relu")
    expect(form).to_be_hidden()  # the kernel acknowledged

    # 2. Run exp_0 (in the background) and view its results
    select_row(panel, "exp_0")
    run_selected(panel, "exp_0")
    stopwatch("exp_0 finished")
    shoot(screenshot, panel, "02-exp0-finished")
    view_results(panel, "exp_0")
    metrics = panel.get_by_test_id("metric-list")
    for name in REFERENCE_OBSERVABLES:
        expect(metrics.get_by_test_id(f"metric-{name}")).to_be_visible()

    # 3. hidden_activations: enlarge, layer 1 pre, neuron stats, add active_rate
    metrics.get_by_test_id("metric-hidden_activations").click()
    acts = panel.get_by_test_id("chart-hidden_activations")
    expect(acts).to_be_visible()
    acts.get_by_test_id("enlarge").click()
    expect(acts).to_have_class(re.compile(r"\bfl-enlarged\b"))
    expect(acts.get_by_test_id("enlarge")).to_have_attribute("aria-pressed", "true")
    choose_layer(acts)
    acts.get_by_test_id("method-select").select_option(label="Neuron stats")
    expect(acts.get_by_test_id("method-select")).to_have_value("neuron_stats")
    expect(acts.get_by_test_id("add-stat")).to_be_enabled()
    acts.get_by_test_id("add-stat-select").select_option("active_rate")
    acts.get_by_test_id("add-stat").click()
    expect(acts.get_by_test_id("stat-plot-active_rate").locator("canvas").first).to_be_visible()
    stopwatch("active_rate plotted")
    shoot(screenshot, acts, "03-hidden-activations-active-rate")

    # 4. DIY statistic nonlinear_rate on active_rate, typed into the source box
    stats = panel.get_by_test_id("statistics-section")
    stats.get_by_test_id("diy-name").fill("nonlinear_rate")
    stats.get_by_test_id("diy-on").select_option("active_rate")
    source = stats.get_by_test_id("diy-source")
    cell_count = len(jlab.cells(page))  # the action cells so far
    source.fill("")
    source.press_sequentially(NONLINEAR_RATE)
    expect(source).to_have_value(NONLINEAR_RATE)
    # keys typed in the panel must not reach the notebook's shortcuts (a, b, d d, m, ...)
    assert len(jlab.cells(page)) == cell_count, "typing in the panel edited the notebook"
    shoot(screenshot, stats, "04-diy-statistic-typed")
    stats.get_by_test_id("diy-submit").click()
    expect(stats.get_by_test_id("diy-done")).to_contain_text("Defined nonlinear_rate")
    nonlinear_row = stats.get_by_test_id("stat-list").locator("tr", has_text="nonlinear_rate")
    expect(nonlinear_row).to_contain_text("active_rate")
    expect(nonlinear_row).to_contain_text("DIY")

    # 5. New experiment based on exp_0 plus the observable nonlinear_rate -> exp_1; run it
    expect(row0).to_have_attribute("aria-selected", "true")  # still the selection
    panel.get_by_test_id("new-experiment").click()
    expect(form).to_be_visible()
    expect(form.get_by_test_id("based-on")).to_be_checked()
    expect(form).to_contain_text("Based on exp_0")
    form.get_by_test_id("obs-nonlinear_rate").check()
    shoot(screenshot, panel.get_by_test_id("experiments-section"), "05-exp1-based-on-exp0")
    form.get_by_test_id("create").click()
    expect(panel.get_by_test_id("exp-row-exp_1")).to_contain_text("from exp_0")
    expect(form).to_be_hidden()
    select_row(panel, "exp_1")
    run_selected(panel, "exp_1")
    stopwatch("exp_1 finished")
    view_results(panel, "exp_1")

    # 6. nonlinear_rate of layer 1 over steps, zoomed to 0-100, fitted: sigmoid first
    metrics.get_by_test_id("metric-nonlinear_rate").click()
    card = panel.get_by_test_id("chart-nonlinear_rate")
    expect(card).to_be_visible()
    choose_layer(card)
    expect(card.get_by_test_id("plot").locator("canvas").first).to_be_visible()
    shoot(screenshot, card, "06-nonlinear-rate-layer1")
    card.get_by_test_id("zoom-x-lo").fill("0")
    card.get_by_test_id("zoom-x-hi").fill("100")
    card.get_by_test_id("zoom-apply").click()
    expect(card.get_by_test_id("fit-x-lo")).to_have_value("0")  # the fit follows the zoom
    expect(card.get_by_test_id("fit-x-hi")).to_have_value("100")
    families = card.get_by_test_id("fits").locator('input[type="checkbox"]:checked')
    expect(families).to_have_count(4)
    for name in ("sigmoid", "exponential", "power", "log_power"):
        expect(card.get_by_test_id(f"fit-family-{name}")).to_be_checked()
    card.get_by_test_id("fit").click()
    table = card.get_by_test_id("fit-table")
    expect(table).to_have_count(1)
    fit_rows = table.locator("tbody tr")
    expect(fit_rows).to_have_count(4)
    expect(fit_rows.first).to_have_attribute("data-family", "sigmoid")
    stopwatch("fitted")
    shoot(screenshot, card, "07-nonlinear-rate-fits")
    # the card alone, its whole fit table: a viewport tall enough for it (README picture)
    page.set_viewport_size({"width": 1280, "height": 1600})
    try:
        shoot(screenshot, card, "07-nonlinear-rate-fits-tall")  # let the layout settle
        screenshot("07-nonlinear-rate-fits-card", card)
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})
    card.get_by_test_id("hide-fits").click()
    expect(card.get_by_test_id("show-fits")).to_be_visible()
    expect(table).to_be_visible()  # the table stays; only the curves go
    shoot(screenshot, card, "08-fits-hidden")

    # 7. A note and the blog draft, from the Write-up section
    publish = panel.get_by_test_id("publish-section")
    publish.get_by_test_id("note-text").fill(NOTE)
    publish.get_by_test_id("note-submit").click()
    expect(publish.get_by_test_id("notes-list")).to_contain_text(NOTE)
    expect(publish.get_by_test_id("export-path")).to_have_value("reference.md")
    publish.get_by_test_id("export-submit").click()
    expect(publish.get_by_test_id("export-done")).to_have_text("Wrote reference.md")
    stopwatch("exported")
    shoot(screenshot, publish, "09-write-up")
    shoot(screenshot, panel.get_by_test_id("code-section"), "09-code")
    assert not visible_errors(panel), visible_errors(panel)

    # The kernel's view: two finished runs, the statistic, the fit, only human actions.
    state = json.loads(jlab.run_code(page, KERNEL_CHECK, timeout=STEP_TIMEOUT).strip())
    stopwatch("kernel checked")
    assert state["experiments"] == ["exp_0", "exp_1"], state["experiments"]
    assert state["status"] == {"exp_0": "finished", "exp_1": "finished"}, state["status"]
    assert state["based_on"] == {"exp_0": None, "exp_1": "exp_0"}, state["based_on"]
    exp0, exp1 = state["config"]["exp_0"], state["config"]["exp_1"]
    assert {k: exp0["model"][k] for k in ("kind", "widths", "activation")} == {
        "kind": "mlp", "widths": [10, 100, 100, 1], "activation": "relu"}, exp0["model"]
    assert {k: exp0["data"][k] for k in ("task", "dim", "freq", "n_train", "n_test")} == {
        "task": "sin2", "dim": 10, "freq": 10, "n_train": 500, "n_test": 200}, exp0["data"]
    assert {k: exp0["optimizer"][k] for k in ("name", "lr", "steps", "batch_size")} == {
        "name": "adam", "lr": 1e-3, "steps": 2000, "batch_size": 0}, exp0["optimizer"]
    assert (exp0["loss"], exp0["seed"]) == ("mse", 0)
    assert exp0["observables"] == REFERENCE_OBSERVABLES, exp0["observables"]
    assert exp1 == {**exp0, "observables": [*REFERENCE_OBSERVABLES, "nonlinear_rate"]}, exp1
    assert state["nonlinear_rate_on"] == "active_rate", state
    fit = state["fit"]
    assert (fit["experiment"], fit["metric"], fit["layer"]) == (
        "exp_1", "nonlinear_rate", LAYER), fit
    assert fit["x_range"] == [0, 100], fit
    assert sorted(fit["families"]) == ["exponential", "log_power", "power", "sigmoid"], fit
    assert fit["best"] == "sigmoid" and fit["r2"] >= 0.99, fit
    assert state["actors"] == ["human"], state  # no "code" entries: all from the panel
    # Every click became an action cell below the panel, in order (the check's own cell
    # comes after them).
    inserted = [c for c in jlab.cells(page) if c["metadata"].get("featurelab")]
    assert [c["source"] for c in inserted] == state["cells"], (
        [c["source"] for c in inserted], state["cells"])
    assert "@lab.statistic('nonlinear_rate', on='active_rate')" in "".join(state["cells"])
    for action in ("create_experiment", "run", "add_neuron_stat", "define_statistic", "fit",
                   "show_fits", "note", "export_blog"):
        assert action in state["log"], (action, state["log"])
    # The draft the panel wrote is the draft code writes of the same lab.
    same = json.loads(jlab.run_code(page, SAME_DRAFT, timeout=RUN_TIMEOUT).strip())
    assert same["text"] and same["pictures"] >= 3, same
    assert same["equal"], same
    assert NOTE in same["note_line"], same

    # The final panel in the dark theme, section by section.
    jlab.set_theme(page, jlab.DARK)
    try:
        # A theme switch re-renders every chart: each must still fit its card.
        page.wait_for_function(PLOTS_FIT, timeout=10_000)
        shoot(screenshot, panel.get_by_test_id("experiments-section"), "10-dark-experiments")
        shoot(screenshot, acts, "11-dark-hidden-activations")
        shoot(screenshot, card, "12-dark-nonlinear-rate-fits-hidden")
        card.get_by_test_id("show-fits").click()  # the curves in dark too
        expect(card.get_by_test_id("hide-fits")).to_be_visible()
        shoot(screenshot, card, "13-dark-nonlinear-rate-fits")
        shoot(screenshot, stats, "14-dark-statistics")
        shoot(screenshot, publish, "14-dark-write-up")
        shoot(screenshot, panel.get_by_test_id("code-section"), "15-dark-code")
    finally:  # the theme is a server-side setting: later tests must start light
        jlab.set_theme(page, jlab.LIGHT)
    stopwatch("dark screenshots taken")

    assert not visible_errors(panel), visible_errors(panel)
    assert not page.errors, "\n".join(page.errors)
