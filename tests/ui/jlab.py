"""Driving a notebook in a real JupyterLab page (Playwright, sync API).

Assertions read JupyterLab's own models through `window.jupyterapp` (the server runs with
--LabApp.expose_app_in_browser=True) rather than scraping the DOM where possible.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

# The notebook on show. JupyterLab keeps hidden panels in the DOM: scope selectors to it.
NB = ".jp-NotebookPanel:not(.lm-mod-hidden)"

LIGHT, DARK = "JupyterLab Light", "JupyterLab Dark"

_KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle';
}"""

_CELLS = """() => window.jupyterapp.shell.currentWidget.content.model.sharedModel.cells
  .map(c => c.toJSON())"""


def write_notebook(path: Path, *sources: str) -> Path:
    """A notebook of code cells on disk, with the python3 kernelspec (no kernel dialog)."""
    cells = [{"cell_type": "code", "execution_count": None, "id": uuid.uuid4().hex[:8],
              "metadata": {}, "outputs": [], "source": source} for source in sources]
    notebook = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4, "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook, indent=1))
    return path


def open_notebook(page: Any, server: Any, name: str, timeout: float = 60_000) -> None:
    """Opens `name` (relative to the server root) in JupyterLab (in a fresh workspace) or
    Notebook 7, as the server is; waits for an idle kernel."""
    page.goto(server.notebook_url(name))
    page.wait_for_selector(f"{NB} .jp-Cell", timeout=timeout)
    wait_kernel_idle(page, timeout)


def session_panel(page: Any, server: Any, prefix: str, session: str,
                  timeout: float = 240_000) -> Any:
    """A notebook of two cells, `session` (lab code, no error allowed) and `lab`, run in
    a fresh notebook named `prefix`-<random>; returns the panel's locator once shown."""
    from playwright.sync_api import expect

    name = f"{prefix}-{uuid.uuid4().hex[:6]}.ipynb"
    write_notebook(server.root_dir / name, session, "lab")
    open_notebook(page, server, name)
    page.evaluate("() => window.jupyterapp.shell.collapseLeft?.()")  # room for the panel
    run_cell(page, 0)
    done = wait_executed(page, 0, timeout=timeout)
    assert "Error" not in output_text(done), output_text(done)
    run_cell(page, 1)
    output = page.locator(f"{NB} .jp-Cell").nth(1).locator(".jp-OutputArea-output")
    panel = output.locator('[data-testid="featurelab-panel"]')
    expect(panel).to_be_visible(timeout=60_000)
    return panel


def wait_kernel_idle(page: Any, timeout: float = 60_000) -> None:
    page.wait_for_function(_KERNEL_IDLE, timeout=timeout)


def cells(page: Any) -> list[dict]:
    """The notebook's cells as nbformat dicts (source, outputs, execution_count, metadata)."""
    return page.evaluate(_CELLS)


def run_cell(page: Any, index: int) -> None:
    """Runs cell `index` through the `notebook:run-cell` command, without waiting.

    Not Shift+Enter: on the last cell that appends an empty cell and moves on.
    """
    page.evaluate("""async (i) => {
      const nb = window.jupyterapp.shell.currentWidget.content;
      nb.activeCellIndex = i;
      nb.mode = 'command';
      void window.jupyterapp.commands.execute('notebook:run-cell');
    }""", index)


def wait_executed(page: Any, index: int, timeout: float = 60_000) -> dict:
    """Waits until cell `index` has finished running (it has an execution count); returns it."""
    page.wait_for_function(
        """(i) => { const c = window.jupyterapp.shell.currentWidget.content.model
                      .sharedModel.cells[i];
                    return !!c && c.toJSON().execution_count != null; }""",
        arg=index, timeout=timeout)
    return cells(page)[index]


def output_text(cell: dict) -> str:
    """The text a cell printed or returned; errors as 'Name: value'."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(_text(out["text"]))
        elif out["output_type"] in ("execute_result", "display_data"):
            parts.append(_text(out.get("data", {}).get("text/plain", "")))
        elif out["output_type"] == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
    return "".join(parts)


def _text(value: str | list[str]) -> str:
    return value if isinstance(value, str) else "".join(value)


def run_code(page: Any, source: str, timeout: float = 60_000) -> str:
    """Appends a code cell holding `source`, runs it, returns what it printed."""
    index = page.evaluate("""(source) => {
      const model = window.jupyterapp.shell.currentWidget.content.model;
      model.sharedModel.insertCell(model.sharedModel.cells.length,
                                   {cell_type: 'code', source});
      return model.sharedModel.cells.length - 1;
    }""", source)
    run_cell(page, index)
    cell = wait_executed(page, index, timeout)
    errors = [o for o in cell["outputs"] if o["output_type"] == "error"]
    assert not errors, f"{source!r} raised {output_text(cell)}"
    return output_text(cell)


def set_theme(page: Any, theme: str, timeout: float = 20_000) -> None:
    """Switches JupyterLab's theme (LIGHT or DARK) and waits until it is applied."""
    page.evaluate("(theme) => { void window.jupyterapp.commands.execute("
                  "'apputils:change-theme', {theme}); }", theme)
    page.wait_for_function("(theme) => document.body.dataset.jpThemeName === theme",
                           arg=theme, timeout=timeout)
    # the theme's CSS variables are in; let the panel repaint (canvas charts redraw on it)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    page.wait_for_timeout(300)


def restart_run_all(page: Any, timeout: float = 180_000) -> list[dict]:
    """Restart & Run All (the dialog accepted); waits until the last cell has run in the
    new kernel (it counts from 1, so the last cell's count is the number of cells) and
    returns the cells. Every cell must be a code cell that runs."""
    count = len(cells(page))
    page.evaluate("() => { void window.jupyterapp.commands.execute("
                  "'notebook:restart-run-all'); }")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    page.wait_for_function(
        """n => { const cells = window.jupyterapp.shell.currentWidget.content.model.sharedModel
                    .cells.map(c => c.toJSON());
                  return cells.length === n && cells[n - 1].execution_count === n
                    && cells[n - 1].outputs.length > 0; }""",
        arg=count, timeout=timeout)
    wait_kernel_idle(page)
    return cells(page)


def errors_in(notebook_cells: list[dict]) -> list[str]:
    """The errors the cells show, as 'Name: value'."""
    return [output_text(c) for c in notebook_cells
            if any(o["output_type"] == "error" for o in c["outputs"])]
