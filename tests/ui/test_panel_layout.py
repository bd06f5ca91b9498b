"""The panel's layout in a real JupyterLab, at 1100 and 1400 px, light and dark: every
section of a lab with two experiments, a statistic, three charts (one with fits), a note
and a sweep, screenshotted section by section; no element may stick out of its card or
section, and a chart card's toolbar stays on one row."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from . import jlab

SESSION = """\
import featurelab as fl
lab = fl.Lab('ui-layout', root={root!r}, fresh=True)
small = dict(model={{'widths': [4, 24, 24, 1]}}, data={{'dim': 4, 'n_train': 64, 'n_test': 32}},
             optimizer={{'lr': 0.01, 'steps': 300}},
             observables=['train_loss', 'test_loss', 'weight_l2_norm', 'hidden_activations',
                          'active_rate', 'nonlinear_fraction'])
lab.create_experiment(**small, name='baseline')
lab.create_experiment(based_on='exp_0', optimizer={{'lr': 0.003}})
lab.run('exp_0'); lab.run('exp_1')
lab.sweep(based_on='exp_0', grid={{'optimizer.lr': [0.01, 0.03]}}, seeds=[0, 1], name='lr')
lab.run('sweep_0')
lab.view_results(['exp_0', 'exp_1'])
lab.open_chart('train_loss'); lab.set_axes('train_loss', log_y=True)
lab.overlay('train_loss', ['test_loss'])
lab.open_chart('test_loss')
lab.open_chart('nonlinear_fraction'); lab.choose_layer('nonlinear_fraction', 'layers.1.pre')
lab.fit('exp_0', 'nonlinear_fraction', layer='layers.1.pre')
lab.open_chart('active_rate'); lab.choose_layer('active_rate', 'layers.1.pre')
lab.open_chart('hidden_activations'); lab.choose_layer('hidden_activations', 'layers.1.pre')
lab.choose_method('hidden_activations', 'heatmap')
lab.phases('exp_0', 'nonlinear_fraction', layer='layers.1.pre')
lab.note('The loss falls fast, then slowly: two phases?')"""

# Elements that stick out of the card or section they are in (by more than a pixel),
# leaving out what sits in a scrolling box (a wide table scrolls inside its wrapper).
OVERFLOWS = """(root) => {
  const out = [];
  const boxes = root.querySelectorAll('.fl-card, .fl-section');
  for (const box of boxes) {
    const b = box.getBoundingClientRect();
    if (!b.width) continue;
    for (const el of box.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (!r.width || !r.height) continue;
      let scroller = el.parentElement, scrolled = false;
      while (scroller && scroller !== box) {
        const s = getComputedStyle(scroller);
        if (/(auto|scroll|hidden)/.test(s.overflowX)) { scrolled = true; break; }
        scroller = scroller.parentElement;
      }
      if (scrolled) continue;
      if (r.right > b.right + 1 || r.left < b.left - 1) {
        out.push(`${box.dataset.testid}: <${el.tagName.toLowerCase()} class="${el.className}"` +
          ` data-testid="${el.dataset.testid || ''}"> spans ${Math.round(r.left)}-` +
          `${Math.round(r.right)}, box ${Math.round(b.left)}-${Math.round(b.right)}`);
      }
    }
  }
  return out;
}"""

# Chart card toolbars whose controls do not all sit on one row.
WRAPPED_TOOLBARS = """(root) =>
[...root.querySelectorAll('.fl-card-head .fl-toolbar')].filter(bar => {
  const tops = [...bar.children].filter(c => c.getBoundingClientRect().width)
    .map(c => Math.round(c.getBoundingClientRect().top + c.getBoundingClientRect().height / 2));
  return tops.length && Math.max(...tops) - Math.min(...tops) > 6;
}).map(bar => bar.closest('.fl-card').dataset.testid)"""

SECTIONS = ["experiments-section", "sweeps-section", "results-section", "statistics-section",
            "publish-section", "code-section"]


@pytest.fixture()
def panel(jupyter, page):
    # trains 5 small runs (a sweep's progress bar is its output)
    panel = jlab.session_panel(page, jupyter, "ui-layout",
                               SESSION.format(root=f"labs/{uuid.uuid4().hex[:8]}"))
    expect(panel.get_by_test_id("chart-nonlinear_fraction").get_by_test_id("fit-table")
           ).to_be_visible(timeout=60_000)
    expect(panel.get_by_test_id("chart-train_loss").locator("canvas").first).to_be_visible()
    return panel


def _settle(page) -> None:
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    page.wait_for_timeout(250)


def test_every_section_fits_at_both_widths_in_both_themes(page, panel, screenshot):
    panel.get_by_test_id("exp-row-exp_0").click()
    panel.get_by_test_id("new-experiment").click()  # the create form in the pictures too
    expect(panel.get_by_test_id("experiment-form")).to_be_visible()
    problems: dict[str, list[str]] = {}
    for width in (1100, 1400):
        page.set_viewport_size({"width": width, "height": 2600})  # whole sections in view
        for theme in (jlab.LIGHT, jlab.DARK):
            jlab.set_theme(page, theme)
            try:
                _settle(page)
                tone = "dark" if theme == jlab.DARK else "light"
                for section in SECTIONS:
                    target = panel.get_by_test_id(section)
                    if not target.is_visible():
                        continue
                    target.scroll_into_view_if_needed()
                    _settle(page)
                    screenshot(f"{width}-{tone}-{section}", target)
                overflow = panel.evaluate(OVERFLOWS)
                # the experiments table is read whole: no sideways scrolling at 1100 px
                table = panel.get_by_test_id("experiments").evaluate(
                    "t => [t.parentElement.scrollWidth, t.parentElement.clientWidth]")
                if table[0] > table[1] + 1:
                    overflow.append(f"experiments table scrolls: {table[0]} > {table[1]} px")
                wrapped = panel.evaluate(WRAPPED_TOOLBARS)
                if overflow or wrapped:
                    problems[f"{width} {tone}"] = overflow[:8] + [f"toolbar wraps: {w}"
                                                                  for w in wrapped]
            finally:
                jlab.set_theme(page, jlab.LIGHT)
    assert not problems, problems
    assert not page.errors, "\n".join(page.errors)
