"""An exploration in a real JupyterLab: the panel's Explorations section shows its
coverage per knob, its repeat rate and keeps, and a chart of each iteration's value with
the best so far, updated as iterations are judged."""

from __future__ import annotations

import uuid

from . import jlab
from .test_panel_smoke import show_panel


def test_an_exploration_shows_its_trajectory_live(jupyter, page, screenshot):
    name = f"ui-explore-{uuid.uuid4().hex[:6]}.ipynb"
    root = f"labs/{uuid.uuid4().hex[:8]}"
    opening = "\n".join([
        f"import featurelab as fl\nlab = fl.Lab('ui-explore', root={root!r}, fresh=True)",
        "lab.create_experiment(model={'widths': [4, 8, 8, 1]}, data={'dim': 4, 'n_train': 32,"
        " 'n_test': 16}, optimizer={'lr': 0.01, 'steps': 30}, observables=['train_loss',"
        " 'test_loss'], snapshots={'schedule': []})",
        "lab.run('exp_0')",
        "ex = lab.explore('exp_0', {'optimizer.lr': [0.003, 0.03, 0.1], 'seed': [1, 2, 3, 4]},"
        " name='lr and seeds')",
        "ex.run('grid', iterations=3)",
        "lab"])
    jlab.write_notebook(jupyter.root_dir / name, opening)
    panel = show_panel(page, jupyter, name)

    section = panel.get_by_test_id("explorations-section")
    section.wait_for(state="visible")
    summary = panel.get_by_test_id("exploration-summary-explore_0")
    assert summary.inner_text().startswith("3 iterations · knobs 50% · pairs 43%"), \
        summary.inner_text()
    jlab.run_code(page, "ex.run('grid', iterations=2)")  # two more, seen live
    page.wait_for_function("el => el.textContent.startsWith('5 iterations')",
                           arg=summary.element_handle(), timeout=60_000)
    bars = panel.get_by_test_id("exploration-coverage-explore_0").locator("[role=progressbar]")
    assert [b.get_attribute("aria-valuenow") for b in bars.all()] == ["100", "50"]
    plot = panel.get_by_test_id("exploration-plot-explore_0")
    assert plot.locator("canvas").count() >= 1
    section.scroll_into_view_if_needed()
    for width in (1100, 1400):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(300)
        screenshot(f"explore-{width}-light", section)
        jlab.set_theme(page, jlab.DARK)
        try:
            page.wait_for_timeout(300)
            screenshot(f"explore-{width}-dark", section)
        finally:
            jlab.set_theme(page, jlab.LIGHT)
    assert not page.errors, "\n".join(page.errors)
