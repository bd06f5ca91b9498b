"""The predictions chart in a real JupyterLab: opened by a click, it draws the data and
the network's predictions (a 1-D curve, a 2-D plane, a modular task's table of pairs),
says the train and test error at the step shown, and plays the snapshots over steps.
Screenshots at 1100 px light and 1400 px dark."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from . import jlab

SESSION = """\
import featurelab as fl
lab = fl.Lab('ui-predictions', root={root!r}, fresh=True)
snaps = {{'schedule': [[0, 25]]}}
lab.create_experiment(model={{'widths': [1, 32, 32, 1]}}, optimizer={{'lr': 0.01, 'steps': 300}},
                      data={{'dim': 1, 'freq': 2.0, 'n_train': 60, 'n_test': 30}},
                      observables=['train_loss', 'test_loss', 'predictions'], snapshots=snaps,
                      name='curve')
lab.create_experiment(model={{'widths': [2, 32, 1]}}, optimizer={{'lr': 0.01, 'steps': 300}},
                      data={{'dim': 2, 'freq': 1.0, 'n_train': 80, 'n_test': 40}},
                      observables=['train_loss', 'predictions'], snapshots=snaps, name='plane')
lab.create_experiment(model={{'kind': 'embed_mlp', 'widths': [16, 64, 23]}}, loss='cross_entropy',
                      data={{'task': 'modular', 'p': 23, 'train_frac': 0.5}},
                      optimizer={{'name': 'adamw', 'lr': 0.003, 'steps': 300}},
                      observables=['train_loss', 'test_accuracy', 'predictions'],
                      snapshots=snaps, name='pairs')
for e in ('exp_0', 'exp_1', 'exp_2'):
    lab.run(e)
lab.view_results(['exp_0', 'exp_1', 'exp_2'])"""

VIEWS = {"exp_0": "curve", "exp_1": "plane", "exp_2": "pairs"}


@pytest.fixture()
def panel(jupyter, page):
    return jlab.session_panel(page, jupyter, "ui-predictions",
                              SESSION.format(root=f"labs/{uuid.uuid4().hex[:8]}"))


def test_the_predictions_chart_draws_each_task_and_plays_its_steps(page, panel, screenshot):
    panel.get_by_test_id("metric-predictions").click()
    card = panel.get_by_test_id("chart-predictions")
    note = card.get_by_test_id("predictions-note")
    expect(note).to_contain_text("exp_0 at step 299: train MSE", timeout=30_000)
    expect(card.get_by_test_id("predictions-key")).to_contain_text("train (60)")
    assert jlab.run_code(page, "print('predictions' in lab.view.charts, lab.log[-1].type)"
                         ).strip() == "True open_chart"
    # play from the start: the slider walks the snapshots, the note follows
    card.get_by_test_id("play-steps").click()
    expect(card.get_by_test_id("step-label")).to_have_text("step 0", timeout=10_000)
    expect(note).to_contain_text("exp_0 at step 299", timeout=30_000)
    for width, theme in ((1100, jlab.LIGHT), (1400, jlab.DARK)):
        page.set_viewport_size({"width": width, "height": 1400})
        jlab.set_theme(page, theme)
        tone = "dark" if theme == jlab.DARK else "light"
        try:
            for experiment, view in VIEWS.items():
                card.get_by_test_id("pred-experiment").select_option(experiment)
                expect(note).to_contain_text(f"{experiment} at step 299", timeout=30_000)
                card.scroll_into_view_if_needed()
                page.wait_for_timeout(300)
                screenshot(f"{width}-{tone}-{view}", card)
        finally:
            jlab.set_theme(page, jlab.LIGHT)
    expect(note).to_contain_text("train accuracy")  # the modular task, last shown
    expect(card.get_by_test_id("predictions-key")).to_contain_text("test, right")
    assert not page.errors, "\n".join(page.errors)
