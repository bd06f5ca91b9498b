"""Acceptance: the panel's clicks become action cells, and the notebook replays them.

In a real JupyterLab with featurelab's labextension: each click inserts its action's
code below the panel, in click order, with the action id in the cell's metadata; view
actions on one chart share a cell; the cells survive saving and reopening; Restart &
Run All rebuilds the same lab without adding a cell; two tabs on one notebook get no
duplicates. Without the extension the panel says so and inserts nothing.
"""

from __future__ import annotations

import json
import re

import nbformat
import pytest
from playwright.sync_api import expect

from . import jlab
from .test_panel_smoke import TINY, open_panel

STEP_TIMEOUT = 60_000

# The kernel's view of the lab: everything Restart & Run All must give back.
STATE = """\
import json as _json
print(_json.dumps({
    "experiments": {e: x.config.to_dict() for e, x in lab.experiments.items()},
    "runs": {e: [lab.latest.get(e), lab.runs[lab.latest[e]].status if e in lab.latest else None]
             for e in lab.experiments},
    "view": lab.view.to_dict(),
    "cells": [[c.source, c.action_ids] for c in lab.cells()],
    "actors": sorted({e.actor for e in lab.log}),
}, default=list))"""


@pytest.fixture(autouse=True)
def _patient_expect():
    expect.set_options(timeout=STEP_TIMEOUT)
    yield
    expect.set_options(timeout=5_000)


def action_cells(page) -> list[dict]:
    return [c for c in jlab.cells(page) if c["metadata"].get("featurelab")]


def sources(cells: list[dict]) -> list[str]:
    return [c["source"] if isinstance(c["source"], str) else "".join(c["source"])
            for c in cells]


def wait_cell_count(page, n: int) -> None:
    page.wait_for_function(
        "n => window.jupyterapp.shell.currentWidget.content.model.sharedModel.cells.length === n",
        arg=n, timeout=STEP_TIMEOUT)


def create_tiny(panel) -> None:
    panel.get_by_test_id("new-experiment").click()
    form = panel.get_by_test_id("experiment-form")
    for testid, value in TINY.items():
        form.get_by_test_id(testid).fill(value)
    form.get_by_test_id("create").click()
    expect(panel.get_by_test_id("exp-row-exp_0")).to_be_visible()


def kernel_state(page) -> dict:
    return json.loads(jlab.run_code(page, STATE, timeout=STEP_TIMEOUT).strip())


def test_clicks_become_cells_that_replay(jupyter, page, screenshot, stopwatch):
    page.context.set_default_timeout(STEP_TIMEOUT)
    panel = open_panel(page, jupyter, "cells")
    expect(panel.get_by_test_id("cells-notice")).to_be_hidden()
    name = page.evaluate("() => window.jupyterapp.shell.currentWidget.context.path")

    create_tiny(panel)
    wait_cell_count(page, 3)  # the create, and the new experiment selected (its own cell)
    row = panel.get_by_test_id("exp-row-exp_0")
    row.click()  # already the selection: no action, no cell
    expect(row).to_have_attribute("aria-selected", "true")
    panel.get_by_test_id("run").click()
    expect(row.locator(".fl-status")).to_have_text("finished", timeout=120_000)
    panel.get_by_test_id("view-results").click()
    panel.get_by_test_id("metric-list").get_by_test_id("metric-train_loss").click()
    card = panel.get_by_test_id("chart-train_loss")
    card.get_by_test_id("enlarge").click()
    expect(card).to_have_class(re.compile(r"\bfl-enlarged\b"))
    card.get_by_test_id("zoom-x-lo").fill("5")
    card.get_by_test_id("zoom-x-hi").fill("30")
    card.get_by_test_id("zoom-apply").click()
    wait_cell_count(page, 6)
    # the zoom updates the chart's cell: wait for it (the count is already 6)
    page.wait_for_function("""() => window.jupyterapp.shell.currentWidget.content.model
        .sharedModel.cells[5].getSource().includes('lab.zoom(')""", timeout=STEP_TIMEOUT)
    stopwatch("clicked")

    cells = action_cells(page)
    assert sources(cells) == [
        sources(cells)[0],  # the config, checked below against the kernel's code
        "lab.select(['exp_0'])",
        "lab.run('exp_0')",
        "lab.view_results(['exp_0'])",
        "lab.open_chart('train_loss')\nlab.enlarge_chart('train_loss')\n"
        "lab.zoom('train_loss', x_range=(5.0, 30.0))",
    ], sources(cells)
    assert sources(cells)[0].startswith("lab.create_experiment(")
    assert [c["execution_count"] for c in cells] == [None] * 5  # inserted, never executed
    chart_meta = cells[-1]["metadata"]["featurelab"]
    assert chart_meta["coalesce_key"] == "chart:train_loss"
    assert len(chart_meta["action_ids"]) == 3 and chart_meta["action_id"] == \
        chart_meta["action_ids"][-1]
    before = kernel_state(page)  # appends a cell: 7 now
    assert before["actors"] == ["human"]
    assert [[s, ids] for s, ids in before["cells"]] == [
        [s, c["metadata"]["featurelab"]["action_ids"]] for s, c in zip(sources(cells), cells)]
    # the panel's output collapsed, to see the cells below it
    page.evaluate("""() => { const nb = window.jupyterapp.shell.currentWidget.content;
        nb.activeCellIndex = 0; nb.mode = 'command';
        return window.jupyterapp.commands.execute('notebook:hide-cell-outputs'); }""")
    page.wait_for_timeout(300)
    screenshot("cells-inserted")

    # Saved and reopened: the same cells, with their metadata.
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
    on_disk = nbformat.read(jupyter.root_dir / name, as_version=4)
    assert [c.source for c in on_disk.cells if "featurelab" in c.metadata] == sources(cells)
    assert [c.metadata["featurelab"] for c in on_disk.cells if "featurelab" in c.metadata] == \
        [c["metadata"]["featurelab"] for c in cells]
    count = len(on_disk.cells)
    assert count == 7

    page.goto("about:blank")
    jupyter.shutdown_kernels()
    jlab.open_notebook(page, jupyter, name)
    assert sources(action_cells(page)) == sources(cells)

    # Restart & Run All: the same lab, no cell added, none changed.
    page.evaluate("() => { void window.jupyterapp.commands.execute("
                  "'notebook:restart-run-all'); }")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    page.wait_for_function(
        """n => { const cells = window.jupyterapp.shell.currentWidget.content.model.sharedModel
                    .cells.map(c => c.toJSON());
                  return cells.length === n && cells.every(c => c.cell_type !== 'code'
                    || c.execution_count != null) && cells[n - 1].outputs.length > 0; }""",
        arg=count, timeout=120_000)
    jlab.wait_kernel_idle(page)
    stopwatch("restarted and ran all")
    after_cells = jlab.cells(page)
    assert len(after_cells) == count
    assert sources(action_cells(page)) == sources(cells)
    errors = [jlab.output_text(c) for c in after_cells
              if any(o["output_type"] == "error" for o in c["outputs"])]
    assert not errors, errors
    after = json.loads(jlab.output_text(after_cells[-1]).strip())
    for key in ("experiments", "runs", "view"):
        assert after[key] == before[key], (key, after[key], before[key])
    assert after["actors"] == ["code"]  # replayed by the cells, not clicked
    assert [s for s, _ in after["cells"]] == [s for s, _ in before["cells"]]
    screenshot("restart-run-all")
    # JupyterLab's debugger logs this itself when a restart cancels its state request.
    errors = [e for e in page.errors if "Could not restore the debugger state" not in e]
    assert not errors, "\n".join(errors)


def test_two_tabs_on_one_notebook_get_no_duplicates(jupyter, browser, page, stopwatch):
    page.context.set_default_timeout(STEP_TIMEOUT)
    panel = open_panel(page, jupyter, "tabs")
    name = page.evaluate("() => window.jupyterapp.shell.currentWidget.context.path")
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
    second = page.context.new_page()  # same browser, same kernel session
    second.errors = []
    second.on("pageerror", lambda e: second.errors.append(f"pageerror: {e}"))
    jlab.open_notebook(second, jupyter, name)
    other = second.locator(f"{jlab.NB} .jp-Cell").first.locator('[data-testid="featurelab-panel"]')
    expect(other).to_be_visible()
    stopwatch("second tab open")

    create_tiny(panel)  # a click in the first tab
    row = other.get_by_test_id("exp-row-exp_0")
    expect(row).to_be_visible()  # the second tab's panel follows the lab
    row.click()  # a click in the second tab
    for tab in (page, second):
        wait_cell_count(tab, 3)
    tab_cells = [sources(action_cells(tab)) for tab in (page, second)]
    assert tab_cells[0] == tab_cells[1], tab_cells
    assert tab_cells[0][1] == "lab.select(['exp_0'])" and len(tab_cells[0]) == 2
    ids = [c["metadata"]["featurelab"]["action_id"] for c in action_cells(page)]
    assert len(set(ids)) == 2
    second.wait_for_timeout(500)  # a late duplicate would show up now
    assert len(jlab.cells(page)) == len(jlab.cells(second)) == 3
    assert not page.errors and not second.errors, page.errors + second.errors
    second.close()


def test_without_the_extension_the_panel_says_so(jupyter_without_extension, page, screenshot):
    page.context.set_default_timeout(STEP_TIMEOUT)
    panel = open_panel(page, jupyter_without_extension, "plain")
    notice = panel.get_by_test_id("cells-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("lab.to_notebook(path)")
    create_tiny(panel)
    screenshot("fallback-notice")
    notice.get_by_test_id("cells-notice-close").click()
    expect(notice).to_be_hidden()
    assert len(jlab.cells(page)) == 1  # nothing inserted
    out = jlab.run_code(page, "print(lab.panel.cells, [c.source[:22] for c in lab.cells()])")
    # the new experiment is selected as it is created: its own action and cell
    assert out.strip() == "none ['lab.create_experiment(', \"lab.select(['exp_0'])\"]", out
    expect(panel.get_by_test_id("code-section")).to_contain_text("lab.create_experiment(")
