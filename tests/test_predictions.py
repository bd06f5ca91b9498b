"""The observable `predictions`: the network's outputs on the data (and on a grid over a 1-
or 2-D input) at the snapshot steps, read from code (lab.predictions), by the panel, and
drawn in the blog."""

import time

import numpy as np
import pytest
import torch
from test_widget import Front

import featurelab as fl
from featurelab import ExperimentConfig, Trainer
from featurelab.engine.predictions import (
    GRID_1D,
    GRID_2D,
    PREDICTIONS,
    prediction_rows,
    predictions_at,
)
from featurelab.engine.resources import estimate
from featurelab.errors import FeaturelabError
from featurelab.export.charts import draw_chart

CURVE = {"model": {"widths": [1, 16, 16, 1]}, "data": {"dim": 1, "freq": 2.0, "n_train": 40,
         "n_test": 20}, "optimizer": {"lr": 1e-2, "steps": 60},
         "observables": ["train_loss", "test_loss", "predictions"],
         "snapshots": {"schedule": [[0, 10]]}}
PLANE = {"model": {"widths": [2, 16, 1]}, "data": {"dim": 2, "freq": 1.0, "n_train": 30,
         "n_test": 10}, "optimizer": {"steps": 30, "batch_size": 8},
         "observables": ["train_loss", "predictions", "hidden_activations"],
         "snapshots": {"schedule": [[0, 7]]}}
PAIRS = {"model": {"kind": "embed_mlp", "widths": [8, 32, 7]}, "loss": "cross_entropy",
         "data": {"task": "modular", "p": 7, "op": "/", "train_frac": 0.6},
         "optimizer": {"lr": 1e-2, "steps": 40},
         "observables": ["train_loss", "train_accuracy", "test_accuracy", "predictions"]}
WIDE = {"model": {"widths": [5, 8, 1]}, "data": {"dim": 5, "n_train": 20, "n_test": 0},
        "optimizer": {"steps": 5}, "observables": ["train_loss", "predictions"]}


def test_the_first_snapshot_holds_the_untrained_networks_outputs_on_data_and_grid():
    config = ExperimentConfig(**CURVE)
    trainer = Trainer(config)
    rows = prediction_rows(trainer.data)
    with torch.no_grad():
        before = trainer.model(rows.x)[0][:, 0].numpy()
    trainer.run()
    stored = trainer.snapshots.stack(PREDICTIONS)  # (K, rows, 1)
    assert trainer.snapshots.steps.tolist() == [0, 10, 20, 30, 40, 50, 59]
    np.testing.assert_array_equal(stored[0, :, 0].numpy(), before)
    assert rows.rows == 40 + 20 + GRID_1D and rows.grid == (GRID_1D,)
    x = torch.cat([trainer.data.x_train, trainer.data.x_test])[:, 0]
    grid = rows.x[60:, 0]
    assert grid[0] < x.min() and grid[-1] > x.max()  # the grid reaches past the samples
    assert torch.all(grid[1:] > grid[:-1])
    assert not np.array_equal(stored[-1].numpy(), stored[0].numpy())  # it learned


def test_a_plane_grid_runs_x0_fastest_and_minibatch_runs_keep_predictions_too():
    config = ExperimentConfig(**PLANE)
    trainer = Trainer(config)
    trainer.run()
    rows = prediction_rows(trainer.data)
    assert rows.grid == (GRID_2D, GRID_2D) and len(rows.extent) == 4
    grid = rows.x[40:]
    assert torch.all(grid[1:GRID_2D, 0] > grid[:GRID_2D - 1, 0])  # first row: x0 grows
    assert torch.all(grid[:GRID_2D, 1] == grid[0, 1])  # ... at one x1
    assert set(trainer.snapshots.points) == {"layers.0.pre", PREDICTIONS}
    at = predictions_at(config, trainer.snapshots)
    assert at.kind == "plane" and at.step == 29 and at.prediction.shape == (rows.rows,)


def test_a_modular_task_keeps_the_predicted_class_and_its_accuracy_matches_the_series():
    config = ExperimentConfig(**PAIRS)
    trainer = Trainer(config)
    trainer.run()
    result = trainer.result()
    for step in (0, 20, 39):
        at = predictions_at(config, result.snapshots, step)
        assert at.kind == "pairs" and at.step == step and at.n_classes == 7
        assert set(np.unique(at.prediction)) <= set(range(7))
        assert at.error("train") == pytest.approx(result.series("train_accuracy")[step])
        assert at.error("test") == pytest.approx(result.series("test_accuracy")[step])
    assert at.samples == 7 * 6  # division: no b = 0
    assert (at.inputs[:, 1] != 0).all()


def test_lab_predictions_is_a_frame_of_splits_inputs_targets_and_predictions(tmp_path):
    lab = fl.Lab("preds", root=tmp_path)
    lab.create_experiment(**CURVE)
    lab.create_experiment(**PAIRS)
    lab.create_experiment(**WIDE)
    for e in ("exp_0", "exp_1", "exp_2"):
        lab.run(e)
    frame = lab.predictions("exp_0", step=25)
    assert frame.attrs["step"] == 20 and frame.attrs["view"] == "curve"
    assert list(frame.columns) == ["split", "x0", "target", "prediction"]
    assert frame.split.value_counts().to_dict() == {"grid": GRID_1D, "train": 40, "test": 20}
    assert frame[frame.split == "grid"].target.isna().all()
    data = fl.ExperimentConfig(**CURVE)
    trainer = Trainer(data)
    np.testing.assert_allclose(frame.x0[:40], trainer.data.x_train[:, 0].numpy(), rtol=0)
    pairs = lab.predictions("exp_1")
    assert list(pairs.columns) == ["split", "a", "b", "target", "prediction"]
    assert pairs.attrs["step"] == 39 and pairs.prediction.dtype.kind == "i"
    assert ((pairs.a + (0 * pairs.b)) < 7).all()
    wide = lab.predictions("exp_2")
    assert wide.attrs["view"] == "scatter" and list(wide.columns)[:6] == [
        "split", "x0", "x1", "x2", "x3", "x4"]
    assert (wide.split == "train").all()  # no test samples, no grid over 5 dimensions
    reopened = fl.Lab("preds", root=tmp_path)  # read back from the store's files
    assert reopened.predictions("exp_0", step=25).equals(frame)


def test_a_run_without_the_observable_says_how_to_get_predictions():
    lab = fl.Lab(":memory:")
    lab.create_experiment(**{**CURVE, "observables": ["train_loss", "hidden_activations"]})
    lab.run("exp_0")
    with pytest.raises(FeaturelabError, match="add the observable 'predictions'"):
        lab.predictions("exp_0")
    with pytest.raises(FeaturelabError, match="not a layer"):
        lab.create_experiment(**{**CURVE, "observables": ["hidden_activations", "predictions"]})
        lab.run("exp_1")
        lab.results("exp_1").result().statistic_on_snapshots(lab.statistics, "active_rate",
                                                              PREDICTIONS)


def test_the_estimate_counts_the_predictions_with_the_snapshots():
    config = ExperimentConfig(**{**CURVE, "observables": ["train_loss"]})
    with_them = config.replace(observables=["train_loss", "predictions"])
    snaps = estimate(with_them, snapshots_on_disk=True).disk["snapshots"]
    assert snaps == 7 * (40 + 20 + GRID_1D) * 4
    assert estimate(config, snapshots_on_disk=True).disk.get("snapshots", 0) == 0


def test_the_panel_asks_for_predictions_at_a_step_and_gets_float32_arrays():
    lab = fl.Lab(":memory:")
    front = Front(lab.panel)
    front.act("create_experiment", **CURVE)
    front.act("run", experiment="exp_0")
    reply, buffers = front.ask(kind="predictions", experiment="exp_0", step=35)
    assert reply["kind"] == "predictions" and reply["step"] == 30
    assert reply["view"] == "curve" and reply["arrays"] == ["inputs", "target", "prediction"]
    assert reply["steps"] == [0, 10, 20, 30, 40, 50, 59] and reply["grid"] == [GRID_1D]
    inputs, target, prediction = (np.frombuffer(b, np.float32) for b in buffers)
    frame = lab.predictions("exp_0", 35)
    np.testing.assert_allclose(prediction, frame.prediction, rtol=1e-6)
    np.testing.assert_allclose(target, frame.target[:60], rtol=1e-6)
    assert len(inputs) == 60
    assert reply["train"] == pytest.approx(
        float(np.mean((frame.prediction[:40] - frame.target[:40]) ** 2)), rel=1e-6)
    latest, _ = front.ask(kind="predictions", experiment="exp_0", step=None)
    assert latest["step"] == 59
    bad, _ = front.ask(kind="predictions", experiment="exp_0", step="soon")
    assert bad["kind"] == "error" and "step is a number or null" in bad["message"]
    front.act("create_experiment", **{**CURVE, "observables": ["train_loss"]})
    front.act("run", experiment="exp_1")
    missing, _ = front.ask(kind="predictions", experiment="exp_1", step=0)
    assert missing["kind"] == "error" and "'predictions'" in missing["message"]
    assert lab.panel.state["metric_kinds"]["predictions"] == "predictions"


def test_the_predictions_chart_is_drawn_in_the_blog_and_as_svg(tmp_path):
    lab = fl.Lab("drawn", root=tmp_path)
    lab.create_experiment(**PLANE)
    lab.create_experiment(**PAIRS)
    lab.run("exp_0")
    lab.run("exp_1")
    lab.view_results(["exp_1"])
    lab.open_chart("predictions")
    svg = lab.chart_svg("predictions")
    assert svg.startswith("<?xml") and "predictions of exp_1 at step 39" in svg
    draft = lab.export_blog(tmp_path / "post.md")
    text = (tmp_path / "post.md").read_text()
    assert "predictions, exp_1: right and wrong answers on every pair (a, b) at step 39 (the " \
           "last snapshot); train accuracy" in text
    assert draft is not None


def test_samples_past_the_budget_are_left_out_and_said(monkeypatch):
    from featurelab.engine import predictions

    monkeypatch.setattr(predictions, "ROWS_KEPT", 40)
    assert predictions.kept_rows(25, 17) == (23, 17)  # 42 pairs of p = 7 with "/"
    assert predictions.kept_rows(100, 5) == (35, 5)
    assert predictions.kept_rows(5, 100) == (5, 35)
    assert predictions.kept_rows(10, 10) == (10, 10)
    lab = fl.Lab(":memory:")
    lab.create_experiment(**PAIRS)
    lab.run("exp_0")
    frame = lab.predictions("exp_0")
    assert len(frame) == 40 and frame.attrs["left_out"] == 2
    config = lab.experiments["exp_0"].config
    assert estimate(config, True).disk["snapshots"] == 40 * 40 * 4  # 40 snapshots x 40 rows
    lab.view_results(["exp_0"])
    lab.open_chart("predictions")
    assert "not kept (2)" in lab.chart_svg("predictions")  # in the key under the table
    picture = draw_chart(lab, lab.view.charts["predictions"], ["exp_0"])
    assert picture.caption.endswith("; 2 samples past the first 40 not kept")


def test_a_step_is_a_number_and_the_svg_draws_the_cards_experiment_and_step():
    lab = fl.Lab(":memory:")
    lab.create_experiment(**CURVE)
    lab.create_experiment(**PAIRS)
    lab.run("exp_0")
    lab.run("exp_1")
    for bad in (float("nan"), float("inf"), True, "12"):
        with pytest.raises(FeaturelabError, match="step is a step number or None"):
            lab.predictions("exp_0", step=bad)
    assert lab.predictions("exp_0", step=-5).attrs["step"] == 0  # the first snapshot
    lab.view_results(["exp_0", "exp_1"])
    lab.open_chart("predictions")
    assert "predictions of exp_0 at step 59" in lab.chart_svg("predictions")
    svg = lab.chart_svg("predictions", "exp_1", 20)
    assert "predictions of exp_1 at step 20" in svg
    front = Front(lab.panel)
    reply, _ = front.ask(kind="svg", metric="predictions", experiment="exp_1", step=10)
    assert "predictions of exp_1 at step 10" in reply["svg"]
    bad, _ = front.ask(kind="svg", metric="predictions", experiment="exp_1", step=[1])
    assert bad["kind"] == "error" and "step is a number or null" in bad["message"]


def test_a_diverged_network_still_draws_its_plane_and_curve():
    import warnings

    lab = fl.Lab(":memory:")
    lab.create_experiment(**{**PLANE, "optimizer": {"name": "sgd", "lr": 100, "steps": 30}})
    lab.create_experiment(**{**CURVE, "optimizer": {"name": "sgd", "lr": 100, "steps": 60}})
    for e in ("exp_0", "exp_1"):
        with pytest.warns(fl.FeaturelabWarning, match="diverged"):
            lab.run(e)
        assert lab.results(e).status == "diverged"
    lab.view_results(["exp_0"])
    lab.open_chart("predictions")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for e in ("exp_0", "exp_1"):
            assert "<svg" in lab.chart_svg("predictions", e)


def test_predictions_are_no_series_to_overlay_explore_or_compute_statistics_on():
    lab = fl.Lab(":memory:")
    lab.create_experiment(**CURVE)
    lab.run("exp_0")
    lab.view_results(["exp_0"])
    with pytest.raises(fl.ConfigError, match="a metric with one value per step"):
        lab.overlay("train_loss", ["predictions"])
    with pytest.raises(fl.ConfigError, match="a scalar series the base records"):
        lab.explore(base="exp_0", menu={"optimizer.lr": [0.01, 0.02]}, metric="predictions")
    with pytest.raises(FeaturelabError, match="add the observable 'hidden_activations'"):
        lab.results("exp_0").result().statistic_on_snapshots(lab.statistics, "active_rate",
                                                             "layers.0.pre")


def test_a_sweep_members_predictions_are_read_while_it_trains_on_a_worker(tmp_path):
    lab = fl.Lab("live", root=tmp_path)
    lab.create_experiment(**{**CURVE, "optimizer": {"steps": 40_000},
                             "snapshots": {"schedule": [[0, 20]]}})
    sweep = lab.sweep(based_on="exp_0", seeds=[7])
    [member] = sweep.members
    lab.run(sweep.id, workers=1, background=True)
    deadline = time.monotonic() + 120
    while member not in lab.state.latest and time.monotonic() < deadline:
        time.sleep(0.2)
    run = lab.results(member)
    while run.steps_done < 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run.status == "running"
    frame = lab.predictions(member)  # from the files the worker flushes
    assert frame.attrs["step"] >= 0 and len(frame) == 40 + 20 + GRID_1D
    lab.cancel(member)
    run.wait(timeout=60)
