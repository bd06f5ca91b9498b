"""The panel in a real JupyterLab: it renders, follows the theme, and a click becomes an action."""

from __future__ import annotations

import uuid

from playwright.sync_api import expect

from . import jlab
from .jlab import NB

# Written by featurelab/ui/widget.py when featurelab/static/widget.js is missing.
NOT_BUILT = "the panel's JavaScript is not built"
# Any element of the panel: its classes all start with "fl-".
PANEL_ELEMENT = '[class^="fl-"], [class*=" fl-"]'


def open_panel(page, jupyter, lab_name: str) -> object:
    """Opens a notebook whose one cell shows a fresh Lab, runs it; returns the panel's root."""
    name = f"{lab_name}-{uuid.uuid4().hex[:6]}.ipynb"
    root = f"labs/{uuid.uuid4().hex[:8]}"
    opening = f"import featurelab as fl\nlab = fl.Lab({lab_name!r}, root={root!r}, fresh=True)\nlab"
    jlab.write_notebook(jupyter.root_dir / name, opening)
    return show_panel(page, jupyter, name)


def show_panel(page, jupyter, name: str) -> object:
    """Opens notebook `name` and runs its first cell, which shows a panel."""
    jlab.open_notebook(page, jupyter, name)
    # room for the panel (Notebook 7's shell has no left area to collapse)
    page.evaluate("() => window.jupyterapp.shell.collapseLeft?.()")
    jlab.run_cell(page, 0)
    output = page.locator(f"{NB} .jp-Cell").first.locator(".jp-OutputArea-output")
    # the panel, or the fallback text of an unbuilt bundle (a failure: see below)
    output.locator(PANEL_ELEMENT).or_(output.get_by_text(NOT_BUILT)).first.wait_for()
    assert NOT_BUILT not in output.inner_text(), (
        "the panel's fallback rendered: featurelab/static/widget.js was not built")
    cell = jlab.wait_executed(page, 0)
    assert not [o for o in cell["outputs"] if o["output_type"] == "error"], cell["outputs"]
    return output.locator(PANEL_ELEMENT).first


def text_color(locator) -> str:
    return locator.evaluate("el => getComputedStyle(el).color")


def test_panel_renders_in_light_and_dark(jupyter, page, screenshot, stopwatch):
    panel = open_panel(page, jupyter, "ui-smoke")
    stopwatch("panel rendered")
    panel.wait_for(state="visible")
    page.wait_for_timeout(300)  # let the first layout settle before the picture
    light = text_color(panel)
    screenshot("light")

    jlab.set_theme(page, jlab.DARK)
    try:
        dark = text_color(panel)
        screenshot("dark")
    finally:  # the theme is a server-side setting: later tests must start light
        jlab.set_theme(page, jlab.LIGHT)
    stopwatch("screenshots taken")

    assert light != dark, f"the panel's text colour ignores the theme ({light} in both)"
    assert not page.errors, "\n".join(page.errors)


# A config small enough to validate and create instantly (nothing is trained here).
TINY = {"cfg-model-widths": "4, 8, 8, 1", "cfg-data-dim": "4", "cfg-data-n_train": "32",
        "cfg-data-n_test": "16", "cfg-optimizer-steps": "40", "cfg-name": "clicked"}


def test_new_experiment_from_the_panel_is_a_human_action(jupyter, page, screenshot, stopwatch):
    panel = open_panel(page, jupyter, "ui-create")
    stopwatch("panel rendered")
    panel.get_by_test_id("new-experiment").click()
    form = panel.get_by_test_id("experiment-form")
    form.wait_for(state="visible")
    for testid, value in TINY.items():
        form.get_by_test_id(testid).fill(value)
    form.get_by_test_id("create").click()
    row = panel.get_by_test_id("exp-row-exp_0")
    row.wait_for()
    assert "clicked" in row.inner_text()
    form.wait_for(state="hidden")  # the form closes once the kernel acknowledged
    stopwatch("experiment created")
    screenshot("created")

    # the kernel's view, from a cell: one experiment, created by a human, with our config
    # and selected as it was created (its own action), so Run is ready at once
    expect(panel.get_by_test_id("run")).to_be_enabled()
    out = jlab.run_code(page, "\n".join([
        "e = lab.log[-2]",
        "print(len(lab.experiments), list(lab.experiments), e.type, e.actor)",
        "print(list(lab.experiments['exp_0'].config.model.widths))",
        "print(lab.log[-1].type, lab.log[-1].actor, lab.view.selected)",
    ]))
    stopwatch("kernel checked")
    assert out.split("\n")[:3] == ["1 ['exp_0'] create_experiment human", "[4, 8, 8, 1]",
                                   "select_experiments human ['exp_0']"], out
    assert not page.errors, "\n".join(page.errors)
