"""Test metrics every eval_every steps, early stopping, and the derived measures (issue 15).

Each expectation is computed apart from the code under test: the steps measured from the
schedule, values and stop steps from a run with eval_every=1 and no stop, thresholds and
band times with numpy and pandas.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import featurelab as fl
from featurelab.engine.config import ExperimentConfig, StopConfig
from featurelab.engine.summaries import parse_summary, summarize
from featurelab.engine.train import Trainer

REGRESSION: dict[str, Any] = {
    "model": {"widths": [4, 16, 12, 1]},
    "data": {"dim": 4, "freq": 2.0, "n_train": 64, "n_test": 32},
    "optimizer": {"lr": 1e-2, "steps": 60},
    "observables": ["train_loss", "test_loss", "weight_l2_norm"],
}
MODULAR: dict[str, Any] = {  # the autograd step, test rows folded at eval_every=1
    "model": {"kind": "embed_mlp", "widths": [8, 32, 11]},
    "data": {"task": "modular", "p": 11, "train_frac": 0.6},
    "loss": "cross_entropy",
    "optimizer": {"name": "adamw", "lr": 3e-3, "weight_decay": 0.5, "steps": 80},
    "observables": ["train_loss", "test_loss", "train_accuracy", "test_accuracy"],
}


def config(base: dict[str, Any], **changes: Any) -> ExperimentConfig:
    return ExperimentConfig(**base).replace(**changes)


def trained(cfg: ExperimentConfig, stop_at: int | None = None) -> Trainer:
    trainer = Trainer(cfg, stop_at=stop_at)
    trainer.run()
    return trainer


def schedule(steps: int, every: int) -> list[int]:
    return sorted(set(range(0, steps, every)) | {steps - 1})


def first_stop(steps: np.ndarray, values: np.ndarray, below: float, for_steps: int
               ) -> int | None:
    """The first check s where every check from some s0 on was below the threshold and
    s - s0 + 1 >= for_steps, by a plain scan (the definition, not the engine's code)."""
    start = None
    for s, v in zip(steps, values):
        if not v < below:
            start = None
            continue
        start = s if start is None else start
        if s - start + 1 >= for_steps:
            return int(s)
    return None


# -- eval_every -----------------------------------------------------------------------------

@pytest.mark.parametrize(("base", "changes", "exact"), [
    (REGRESSION, {}, True),  # full batch, the fused step
    (REGRESSION, {"optimizer": {"batch_size": 16}}, True),  # minibatch: evaluated apart anyway
    # Autograd sums the weight gradient over the test rows folded into the forward at
    # eval_every=1 (their gradient is zero), which changes the last bits of the sums.
    (MODULAR, {}, False),
], ids=["full-batch", "minibatch", "modular"])
def test_eval_every_measures_on_schedule_with_the_values_of_every_step(base, changes, exact):
    every = trained(config(base, **changes)).result()
    sparse = trained(config(base, **changes, eval_every=7)).result()
    n = sparse.config.optimizer.steps
    expected = schedule(n, 7)
    assert sparse.evaluated_steps().tolist() == expected
    same = (np.testing.assert_array_equal if exact else
            lambda a, b, err_msg: np.testing.assert_allclose(a, b, rtol=1e-5, err_msg=err_msg))
    tests = [k for k in sparse.arrays if k.startswith("test_")]
    assert tests
    for key in tests:
        values = sparse.series(key)
        same(values[expected], every.series(key)[expected], err_msg=key)
        assert np.isnan(np.delete(values, expected)).all(), key
    for key in set(every.arrays) - set(tests):
        same(sparse.series(key), every.series(key), err_msg=key)


@pytest.mark.parametrize("base", [REGRESSION, MODULAR], ids=["full-batch", "modular"])
def test_training_does_not_depend_on_a_sparse_schedule(base):
    """Above eval_every=1 a step trains on its own rows and the test rows are evaluated
    apart: any two schedules train bitwise alike and agree where both measure."""
    five = trained(config(base, eval_every=5)).result()
    ten = trained(config(base, eval_every=10)).result()
    both = schedule(five.config.optimizer.steps, 10)
    for key, values in five.arrays.items():
        if key.startswith("test_"):
            np.testing.assert_array_equal(values[both], ten.series(key)[both], err_msg=key)
        else:
            np.testing.assert_array_equal(values, ten.series(key), err_msg=key)


def test_eval_every_larger_than_the_run_measures_the_first_and_last_step():
    result = trained(config(REGRESSION, eval_every=1000)).result()
    assert result.evaluated_steps().tolist() == [0, 59]


def test_a_run_stopped_at_a_step_measures_its_last_step():
    cfg = config(REGRESSION, eval_every=10)
    result = trained(cfg, stop_at=25).result()
    assert result.status == "cancelled"
    assert result.evaluated_steps().tolist() == [0, 10, 20, 24]


def test_eval_every_one_and_a_default_stop_keep_the_content_hashes():
    # computed by featurelab before eval_every and stop existed (git archive of bb49870)
    old = {"default": "42b9e6d886dd3b1c", "modular": "0e92f9f40fbcb194"}
    modular = ExperimentConfig(model={"kind": "embed_mlp", "widths": [16, 64, 97]},
                               data={"task": "modular"}, loss="cross_entropy",
                               observables=["train_loss", "test_loss", "test_accuracy"],
                               optimizer={"name": "adamw", "weight_decay": 1.0, "steps": 3000})
    for name, cfg in (("default", ExperimentConfig()), ("modular", modular)):
        assert cfg.content_hash() == old[name]
        same = cfg.replace(eval_every=1, stop={"metric": "", "when": "above", "value": 0,
                                               "for_steps": 1})
        assert same.content_hash() == old[name]  # a section at its defaults: left out
        assert cfg.replace(eval_every=2).content_hash() != old[name]
        assert cfg.replace(stop="train_loss < 1").content_hash() != old[name]
    assert modular.replace(stop="train_loss < 1").content_hash() != \
        modular.replace(stop="train_loss < 1 for 2").content_hash()


# -- the config -----------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "field", "part"), [
    ({"eval_every": 0}, "eval_every", "an integer from 1"),
    ({"eval_every": True}, "eval_every", "an integer from 1"),
    ({"stop": "test_loss >> 1"}, "stop", "'test_accuracy > 0.99 for 100'"),
    ({"stop": "test_loss < one"}, "stop", "'<metric> > <value> for <steps>'"),
    ({"stop": "grad_norm < 1"}, "stop.metric", "'train_loss', 'test_loss'"),
    ({"stop": "test_loss < nan"}, "stop.value", "a number in"),
    ({"stop": "test_loss < 1 for 0"}, "stop.for_steps", "an integer from 1"),
    ({"stop": {"metric": "test_loss", "when": "over"}}, "stop.when", "'above', 'below'"),
    ({"stop": "test_accuracy > 0.9"}, "stop.metric", "a series the experiment records"),
    ({"stop": 3}, "stop", "a dict"),
])
def test_bad_eval_and_stop_knobs_name_the_field(changes, field, part):
    with pytest.raises(fl.ConfigError) as raised:
        config(REGRESSION, **changes)
    assert raised.value.field == field
    assert part in str(raised.value)


def test_the_short_spelling_and_the_dict_are_the_same_condition():
    short = config(MODULAR, stop="test_accuracy > 0.99 for 100 steps")
    typed = config(MODULAR, stop=StopConfig(metric="test_accuracy", value=0.99, for_steps=100))
    spelled = config(MODULAR, stop={"metric": "test_accuracy", "when": "above", "value": 0.99,
                                    "for_steps": 100})
    assert short == typed == spelled
    assert short.stop.text == "test_accuracy > 0.99 for 100 steps"
    assert config(MODULAR, stop="train_loss<0.5").stop == StopConfig("train_loss", "below", 0.5)
    assert "stop when test_accuracy > 0.99 for 100 steps" in short.label
    assert ExperimentConfig.from_dict(json.loads(json.dumps(short.to_dict()))) == short


def test_the_knob_menu_and_the_action_schema_have_the_new_knobs():
    knobs = {k["path"]: k for k in fl.knobs()}
    assert knobs["eval_every"]["default"] == 1 and knobs["eval_every"]["min"] == 1
    assert knobs["stop.metric"]["enum"] == ["", "train_loss", "test_loss", "train_accuracy",
                                            "test_accuracy"]
    assert knobs["stop.when"]["enum"] == ["above", "below"]
    assert knobs["stop.for_steps"]["min"] == 1
    for path in ("eval_every", "stop.metric", "stop.when", "stop.value", "stop.for_steps"):
        assert knobs[path]["description"], path
    schema = next(v for v in fl.action_schema()["oneOf"] if v["title"] == "create_experiment")
    stop = schema["properties"]["params"]["properties"]["stop"]
    assert {"type": "string", "description": stop["anyOf"][1]["description"]} in stop["anyOf"]
    assert stop["anyOf"][0]["properties"]["for_steps"]["minimum"] == 1


# -- early stopping -------------------------------------------------------------------------

def test_early_stop_ends_where_the_condition_first_held_long_enough():
    full = trained(config(REGRESSION, optimizer={"steps": 200})).result()
    test_loss = full.series("test_loss")
    threshold = float(np.quantile(test_loss, 0.4))  # crossed a while into the run
    expected = first_stop(np.arange(200), test_loss, threshold, 15)
    assert expected is not None and 15 < expected < 199
    stop = f"test_loss < {threshold!r} for 15"
    trainer = trained(config(REGRESSION, optimizer={"steps": 200}, stop=stop))
    result = trainer.result()
    assert result.status == "finished" and trainer.progress == 1.0
    assert result.steps_done == expected + 1 and result.stop_step == expected
    assert result.stopped_early == (f"stopped early at step {expected}: test_loss < "
                                    f"{threshold:g} for 15 steps")
    for key, values in result.arrays.items():  # the run up to there, as without the stop
        np.testing.assert_array_equal(values, full.series(key)[:expected + 1], err_msg=key)


def test_early_stop_on_a_test_metric_checks_its_evaluations_only():
    full = trained(config(REGRESSION, optimizer={"steps": 200})).result()
    test_loss = full.series("test_loss")
    threshold = float(np.quantile(test_loss, 0.4))
    checks = np.arange(0, 200, 5)
    expected = first_stop(checks, test_loss[checks], threshold, 12)  # checks 3 apart span 11
    assert expected is not None
    result = trained(config(REGRESSION, optimizer={"steps": 200}, eval_every=5,
                            stop=f"test_loss < {threshold!r} for 12")).result()
    assert result.stop_step == expected and expected % 5 == 0
    assert result.evaluated_steps().tolist() == list(range(0, expected + 1, 5))


def test_early_stop_on_a_training_metric_measures_the_test_metrics_where_it_ends():
    full = trained(config(MODULAR)).result()
    loss = full.series("train_loss")
    threshold = float(np.quantile(loss, 0.3))
    expected = first_stop(np.arange(80), loss, threshold, 4)
    assert expected is not None and expected % 25
    result = trained(config(MODULAR, eval_every=25, stop=f"train_loss < {threshold!r} for 4")
                     ).result()
    assert result.stop_step == expected
    assert result.evaluated_steps("test_accuracy").tolist() == [
        *range(0, expected, 25), expected]
    assert result.series("test_loss")[expected] == full.series("test_loss")[expected]


@pytest.mark.parametrize("offset", [-2, 8], ids=["before-the-streak", "mid-streak"])
def test_a_cancelled_run_continued_from_its_checkpoint_stops_at_the_same_step(offset):
    test_loss = trained(config(REGRESSION, optimizer={"steps": 200})).result().series(
        "test_loss")
    checks = np.arange(0, 200, 5)
    expected = first_stop(checks, test_loss[checks], 0.62, 25)
    assert expected is not None
    streak = first_stop(checks, test_loss[checks], 0.62, 1)  # where the streak begins
    assert streak is not None and expected - streak >= 20
    stopping = config(REGRESSION, optimizer={"steps": 200}, eval_every=5,
                      stop="test_loss < 0.62 for 25")
    straight = trained(stopping).result()
    assert straight.stop_step == expected
    cancel_at = streak + offset  # its last step is off the schedule, measured anyway
    cancelled = trained(stopping, stop_at=cancel_at)
    assert cancelled.status == "cancelled"
    assert cancelled.result().evaluated_steps()[-1] == cancel_at - 1
    continued = Trainer(stopping)
    continued.restore(cancelled.checkpoint(), cancelled.result().arrays, None)
    continued.run()
    result = continued.result()
    assert result.status == "finished" and result.stop_step == expected
    np.testing.assert_array_equal(result.series("train_loss"), straight.series("train_loss"))


def test_early_stop_through_the_lab_is_logged_cached_resumed_and_replayed(tmp_path):
    lab = fl.Lab("stop", root=tmp_path)
    lab.create_experiment(**REGRESSION)
    lab.run("exp_0")
    test_loss = lab.results("exp_0").series("test_loss")
    threshold = float(np.quantile(test_loss, 0.5))
    expected = first_stop(np.arange(60), test_loss, threshold, 5)
    assert expected is not None and expected > 20
    lab.create_experiment(based_on="exp_0", stop=f"test_loss < {threshold!r} for 5")
    run = lab.run("exp_1", stop_at=20)  # cancelled before it would stop
    assert run.status == "cancelled" and run.has_checkpoint
    run = lab.run("exp_1", resume=True)
    entry = lab.log[-1]
    assert run.status == "finished" and run.steps_done == expected + 1 and run.progress == 1.0
    assert entry.result["info"]["stopped_early"] == {
        "step": expected, "reason": f"test_loss < {threshold:g} for 5 steps"}
    assert f"stopped early at step {expected}" in entry.describe()
    again = fl.Lab("stop", root=tmp_path, session=lab.session)  # from the store
    assert again.results("exp_1").result().stop_step == expected
    assert again.run("exp_1").id == run.id  # the finished run is reused
    report = fl.replay(lab.log.to_jsonl(tmp_path / "log.jsonl"))
    assert report.ok, report


def test_sweep_workers_stop_early_as_the_kernel_does():
    lab = fl.Lab(":memory:")
    lab.create_experiment(**{**REGRESSION, "optimizer": {"lr": 1e-2, "steps": 150}},
                          eval_every=5, stop="test_loss < 1.0 for 10")
    sweep = lab.sweep(based_on="exp_0", grid={"stop.value": [0.6, 0.8, 1e-9]})
    runs = lab.run(sweep.id, workers=2)
    for member, run in runs.items():
        kernel = trained(lab.experiments[member].config).result()
        result = run.result()
        assert result.info["backend"] == "process"
        assert (result.status, result.stop_step) == (kernel.status, kernel.stop_step)
        np.testing.assert_array_equal(result.series("test_loss"), kernel.series("test_loss"))
    stops = [runs[m].result().stop_step for m in sweep.members]
    assert stops[0] is not None and stops[-1] is None  # 1e-9 is never reached


# -- summaries and measures -----------------------------------------------------------------

def gappy(seed: int, n: int = 400, every: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = np.cumsum(rng.normal(size=n)) / 5
    gaps = np.ones(n, dtype=bool)
    gaps[::every] = False
    gaps[-1] = False
    values[gaps] = np.nan
    return np.arange(n), values


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), every=st.integers(1, 20),
       lo=st.floats(-3, 3), width=st.floats(0, 3))
def test_threshold_steps_and_band_times_match_numpy(seed, every, lo, width):
    steps, values = gappy(seed, every=every)
    measured = ~np.isnan(values)
    hi = lo + width
    below = np.flatnonzero(measured & (values < lo))
    above = np.flatnonzero(measured & (values > hi))
    assert summarize(steps, values, f"first_below:{lo!r}") == (
        float(below[0]) if len(below) else None)
    assert summarize(steps, values, f"first_above:{hi!r}") == (
        float(above[0]) if len(above) else None)
    held = pd.Series(values).ffill()  # each measurement holds until the next
    in_band = ((held >= lo) & (held <= hi)).sum()
    assert summarize(steps, values, f"in_band:{lo!r}:{hi!r}") == float(in_band)
    assert summarize(steps, values, "final") == values[measured][-1]
    assert summarize(steps, values, "min") == np.nanmin(values)


def test_band_time_of_a_series_measured_every_step_counts_its_steps():
    values = np.array([0.5, 2.0, 0.7, np.inf, 0.9, 1.0, -1.0])
    assert summarize(np.arange(7), values, "in_band:0.5:1") == 4.0  # inclusive, inf out
    assert summarize(np.arange(7), values, "in_band:5:6") == 0.0
    assert summarize(np.arange(3), np.full(3, np.nan), "in_band:0:1") is None
    assert parse_summary("in_band:-1e-3:2") == ("in_band", (-1e-3, 2.0))
    for bad in ("in_band:1", "in_band:2:1", "in_band:0:x", "in_band:0:1:2", "in_band:nan:1"):
        with pytest.raises(fl.ConfigError, match="summary: got .*in_band:<lo>:<hi>"):
            parse_summary(bad)


@pytest.fixture(scope="module")
def sparse_lab() -> fl.Lab:
    lab = fl.Lab(":memory:")
    lab.create_experiment(**{**REGRESSION, "optimizer": {"lr": 1e-2, "steps": 120}},
                          eval_every=9)
    lab.create_experiment(based_on="exp_0", eval_every=1)
    lab.run("exp_0")
    lab.run("exp_1")
    return lab


def test_table_measures_add_one_column_each(sparse_lab):
    plain = sparse_lab.table()
    measures = ["test_loss:first_below:1.2", "test_loss:in_band:0.5:1.5", "train_loss:final"]
    table = sparse_lab.table(measures=measures).set_index("id")
    assert list(table.columns) == [c for c in plain.columns if c != "id"] + measures
    for experiment in ("exp_0", "exp_1"):
        result = sparse_lab.results(experiment).result()
        values = result.series("test_loss")
        measured = np.flatnonzero(~np.isnan(values))
        below = measured[values[measured] < 1.2]
        assert table.loc[experiment, measures[0]] == (below[0] if len(below) else np.nan)
        held = pd.Series(values).ffill()
        assert table.loc[experiment, measures[1]] == ((held >= 0.5) & (held <= 1.5)).sum()
        assert table.loc[experiment, measures[2]] == result.series("train_loss")[-1]
        # the summaries read the last measured value, not the NaN of a gap
        assert table.loc[experiment, "test_loss.final"] == values[measured[-1]]
    assert sparse_lab.table(measures="train_loss:min").shape[1] == plain.shape[1] + 1


@pytest.mark.parametrize(("measures", "field", "part"), [
    (["test_loss"], "measures[0]", "'<metric>:<summary>'"),
    (["train_loss:final", "test_loss:first_below"], "measures[1]", "its summary"),
    (["tst_loss:final"], "measures[0]", "no run has tst_loss"),
    ([":final"], "measures[0]", "'<metric>:<summary>'"),
])
def test_bad_measures_name_the_one_that_is_wrong(sparse_lab, measures, field, part):
    with pytest.raises(fl.ConfigError) as raised:
        sparse_lab.table(measures=measures)
    assert raised.value.field == field and part in str(raised.value)


def test_fits_use_the_measured_points_of_a_gappy_series(sparse_lab):
    steps, values = sparse_lab.metric_series("exp_0", "test_loss", None)
    table = sparse_lab.fit("exp_0", "test_loss")
    measured = ~np.isnan(values)
    assert table.best is not None and table.best.ok
    direct = fl.fit_curves(steps[measured], values[measured])
    assert [r.r2 for r in table.rows] == pytest.approx([r.r2 for r in direct.rows])
    assert table.rows[0].n_points == int(measured.sum())


def test_charts_draw_a_gappy_series_as_a_line_through_its_measurements(sparse_lab,
                                                                       monkeypatch):
    from featurelab.export import charts
    from featurelab.view import Chart

    figures = []
    picture = charts._picture
    monkeypatch.setattr(charts, "_picture", lambda fig, *a: figures.append(fig) or
                        picture(fig, *a))
    assert charts.draw_chart(sparse_lab, Chart(metric="test_loss"), ["exp_0"]) is not None
    line = figures[0].axes[0].lines[0]
    steps, values = sparse_lab.metric_series("exp_0", "test_loss", None)
    measured = ~np.isnan(values)
    np.testing.assert_array_equal(line.get_xdata(), steps[measured])
    np.testing.assert_array_equal(line.get_ydata(), values[measured])


def test_the_panel_receives_the_measured_steps_of_a_gappy_series(sparse_lab):
    from featurelab.ui.widget import Panel, lab_state

    panel = Panel(sparse_lab)
    try:
        reply, buffers = panel._series({"metric": "test_loss", "experiments": ["exp_0",
                                                                               "exp_1"]})
    finally:
        panel.close()
    assert [s["shape"] for s in reply["series"]] == [[len(schedule(120, 9))], [120]]
    np.testing.assert_array_equal(np.frombuffer(buffers[0], dtype=np.float64),
                                  schedule(120, 9))
    values = sparse_lab.results("exp_0").series("test_loss")
    np.testing.assert_array_equal(np.frombuffer(buffers[1], dtype=np.float32),
                                  values[schedule(120, 9)])
    row = lab_state(sparse_lab)["experiments"][0]
    assert row["config"]["eval_every"] == 9 and row["config"]["stop"]["metric"] == ""
    assert row["final"]["test_loss"] == pytest.approx(float(values[119]))


def test_fit_across_a_band_time(tmp_path):
    lab = fl.Lab(":memory:")
    lab.create_experiment(**{**REGRESSION, "optimizer": {"lr": 1e-2, "steps": 100}},
                          eval_every=4)
    sweep = lab.sweep(based_on="exp_0", grid={"optimizer.lr": [3e-3, 1e-2, 3e-2]},
                      seeds=[0, 1])
    lab.run(sweep.id)
    fit = lab.fit_across(sweep.id, "test_loss", "optimizer.lr", summary="in_band:0:1.2",
                         law="linear")
    assert [p.x for p in fit.points] == [3e-3, 1e-2, 3e-2]
    for point in fit.points:
        times = []
        for member in sweep.groups[point.group]:
            held = pd.Series(lab.results(member).series("test_loss")).ffill()
            times.append(float(((held >= 0) & (held <= 1.2)).sum()))
        assert point.mean == pytest.approx(np.mean(times))
        assert point.n == 2
    slope, intercept = np.polyfit([p.x for p in fit.points], [p.mean for p in fit.points], 1)
    assert (fit.b, fit.a) == pytest.approx((slope, intercept))
    assert "steps in [0, 1.2]" in lab.log[-1].describe()


def test_the_blog_config_table_says_the_schedule_and_the_stop():
    from featurelab.export.blog import config_table

    lab = fl.Lab(":memory:")
    plain = lab.create_experiment(**REGRESSION)
    tuned = lab.create_experiment(based_on=plain.id, eval_every=10, stop="test_loss < 0.5")
    rows = {label: text for label, text, _ in config_table(tuned).rows}
    assert rows["Test metrics"] == "every 10 steps"
    assert rows["Early stop"] == "when test_loss < 0.5"
    assert {"Test metrics", "Early stop"}.isdisjoint(
        label for label, _, _ in config_table(plain).rows)
