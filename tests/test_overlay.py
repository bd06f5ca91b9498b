"""Other series on a chart's axes (Chart.also, the `overlay` view action): train and test
loss on one chart, one statistic across all layers; refused where a series cannot be a
line; drawn in the blog's pictures and the SVG download with a legend entry each."""

import pytest
from conftest import TINY_LAB as TINY

import featurelab as fl


@pytest.fixture
def lab(tmp_path):
    lab = fl.Lab("overlay", root=tmp_path)
    lab.create_experiment(**{**TINY, "observables": [*TINY["observables"],
                                                     "nonlinear_fraction"]})
    lab.run("exp_0")
    lab.view_results(["exp_0"])
    return lab


def test_train_and_test_loss_on_one_chart_and_in_its_pictures(lab, tmp_path):
    lab.open_chart("train_loss")
    lab.overlay("train_loss", ["test_loss"])
    assert lab.view.charts["train_loss"].also == ["test_loss"]
    svg = lab.chart_svg("train_loss")
    assert "exp_0 train_loss" in svg and "exp_0 test_loss" in svg  # both in the legend
    text = lab.export_blog(tmp_path / "post.md").read_text()
    assert "Drew test_loss on the train_loss chart." in text
    lab.overlay("train_loss", [])
    assert lab.view.charts["train_loss"].also == []
    assert "exp_0 test_loss" not in lab.chart_svg("train_loss")
    # replayed from the log: the same view
    again = fl.replay(lab.log.to_jsonl(tmp_path / "s.jsonl"), root=tmp_path / "again")
    assert again.lab.view.charts["train_loss"].also == []


def test_one_statistic_across_layers(lab):
    lab.choose_layer("nonlinear_fraction", "layers.1.pre")
    lab.overlay("nonlinear_fraction", ["nonlinear_fraction@layers.0.pre"])
    svg = lab.chart_svg("nonlinear_fraction")
    assert "exp_0 nonlinear_fraction@layers.1.pre" in svg
    assert "exp_0 nonlinear_fraction@layers.0.pre" in svg


@pytest.mark.parametrize("also, field, words", [
    (["nope"], "also[0]", "one of"),
    (["hidden_activations"], "also[0]", "one value per step"),
    (["active_rate@layers.0.pre"], "also[0]", "one value per step"),
    (["nonlinear_fraction"], "also[0]", "a layer of"),
    (["nonlinear_fraction@layers.9.pre"], "also[0]", "a layer of"),
    (["test_loss@layers.0.pre"], "also[0]", "no layers"),
    (["test_loss", "test_loss"], "also", "each series once"),
])
def test_what_cannot_be_drawn_is_refused_naming_it(lab, also, field, words):
    lab.open_chart("train_loss")
    n = len(lab.log)
    with pytest.raises(fl.ConfigError) as info:
        lab.overlay("train_loss", also)
    assert info.value.field == field and words in str(info.value)
    assert len(lab.log) == n and lab.view.charts["train_loss"].also == []


def test_a_wall_clock_x_axis_from_each_runs_clock(lab, tmp_path):
    """Each run keeps [step, seconds] at its first step and at every flush (info
    "clock"); a chart's x axis can be those seconds (set_axes x="time": a zoom in steps
    is dropped, fits and phases stay on the step axis) in the panel and the pictures."""
    clock = lab.results("exp_0").result().info["clock"]
    steps = [s for s, _ in clock]
    seconds = [t for _, t in clock]
    assert steps[0] == 0 and steps[-1] == TINY["optimizer"]["steps"]
    assert steps == sorted(set(steps)) and seconds == sorted(seconds) and seconds[0] == 0
    reopened = fl.Lab("overlay", root=tmp_path)  # kept with the run in the store
    assert reopened.results("exp_0").result().info["clock"] == clock
    lab.open_chart("train_loss")
    lab.zoom("train_loss", x_range=(0, 50))
    lab.fit("exp_0", "train_loss", x_range=(0, 50), families=["exponential"])
    lab.set_axes("train_loss", x="time")
    chart = lab.view.charts["train_loss"]
    assert chart.x == "time" and chart.x_range is None
    svg = lab.chart_svg("train_loss")
    assert "seconds since the run" in svg and "Exponential fit" not in svg
    assert "Set the x axis to wall-clock seconds on the train_loss chart." in lab.log.sentences()
    assert lab.cells()[-1].source == "lab.set_axes('train_loss', x='time')"
    lab.set_axes("train_loss", x="step")
    assert "Exponential fit" in lab.chart_svg("train_loss")
    with pytest.raises(fl.ConfigError, match="'step' or 'time'"):
        lab.set_axes("train_loss", x="epochs")


def test_the_panel_gets_each_runs_clock_with_its_series(lab):
    from featurelab.ui.widget import Panel

    panel = Panel(lab)
    replies = []
    panel.send = lambda content, buffers=None: replies.append(content)
    panel._on_message(panel, {"kind": "series", "request": 1, "experiments": ["exp_0"],
                              "metric": "train_loss", "layer": None}, [])
    series = replies[-1]["series"][0]
    assert series["clock"] == [[float(s), float(t)] for s, t in
                               lab.results("exp_0").result().info["clock"]]
