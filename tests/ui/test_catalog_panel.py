"""Rename, tag and delete from the panel in a real JupyterLab: the bar above the table
edits the one selected experiment, each change is a logged action with its own cell,
and a delete asks once more and keeps the run in the store."""

from __future__ import annotations

import uuid

from . import jlab
from .test_panel_smoke import show_panel


def tiny(extra: str = "") -> str:
    return ("lab.create_experiment(model={'widths': [4, 8, 8, 1]}, "
            "data={'dim': 4, 'n_train': 32, 'n_test': 16}, "
            f"optimizer={{'lr': 0.01, 'steps': 60}}{extra})")


def test_rename_tag_and_delete_from_the_panel(jupyter, page, screenshot):
    name = f"ui-catalog-{uuid.uuid4().hex[:6]}.ipynb"
    root = f"labs/{uuid.uuid4().hex[:8]}"
    opening = "\n".join([
        f"import featurelab as fl\nlab = fl.Lab('ui-catalog', root={root!r}, fresh=True)",
        tiny(), tiny(", seed=1"), "lab.run('exp_0')", "lab"])
    jlab.write_notebook(jupyter.root_dir / name, opening)
    panel = show_panel(page, jupyter, name)

    edit = panel.get_by_test_id("experiment-edit")
    assert not edit.is_visible()
    panel.get_by_test_id("exp-row-exp_0").click()
    edit.wait_for(state="visible")
    edit.get_by_test_id("edit-name").fill("baseline run")
    edit.get_by_test_id("edit-tags").fill("small, first")
    edit.get_by_test_id("edit-save").click()
    row = panel.get_by_test_id("exp-row-exp_0")
    page.wait_for_function("el => el.querySelectorAll('.fl-tag').length === 2",
                           arg=row.element_handle())
    assert row.locator(".fl-name").inner_text().startswith("baseline run")
    for width in (1100, 1400):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(300)
        screenshot(f"edit-{width}-light", panel)
        jlab.set_theme(page, jlab.DARK)
        try:
            page.wait_for_timeout(300)
            screenshot(f"edit-{width}-dark", panel)
        finally:
            jlab.set_theme(page, jlab.LIGHT)

    panel.get_by_test_id("filter-experiments").fill("first")
    assert panel.locator("tr.fl-row:visible").count() == 1
    panel.get_by_test_id("filter-experiments").fill("")

    delete = edit.get_by_test_id("edit-delete")
    delete.click()
    assert delete.inner_text() == "Delete exp_0? Click again"
    delete.click()
    row.wait_for(state="detached")
    assert panel.locator("tr.fl-row").count() == 1

    out = jlab.run_code(page, "\n".join([
        "print([e.type for e in lab.log if e.actor == 'human'][-4:])",
        "print(list(lab.experiments))",
        "print(sum(1 for r in lab.store.read('SELECT status FROM runs') if r[0] == 'finished'))",
    ]))
    kinds, experiments, finished = out.split("\n")[:3]
    assert kinds == "['select_experiments', 'rename_experiment', 'tag_experiments', " \
        "'delete_experiment']", kinds
    assert "['exp_1']" in experiments and finished == "1", out
    sources = [c["source"] for c in jlab.cells(page)]
    sources = ["".join(s) if isinstance(s, list) else s for s in sources]
    for code in ("lab.rename('exp_0', 'baseline run')",
                 "lab.tag(['exp_0'], add=['small', 'first'])", "lab.delete('exp_0')"):
        assert code in sources, sources
    assert not page.errors, "\n".join(page.errors)
