"""Many runs: a sweep's members (grid, zip, sample, seeds), its errors, reuse of existing
experiments, reopening, running (and running again), groups, and the pandas frames.

Every training here is tiny (TINY_LAB with 20 steps).
"""

from __future__ import annotations

import _thread
import ast
import itertools
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_LAB, exec_cell, kernel_series

import featurelab as fl
from featurelab.errors import FeaturelabWarning

STEPS = 20
BASE: dict[str, Any] = {**TINY_LAB, "optimizer": {"lr": 0.01, "steps": STEPS}}
WIDTHS = [[4, 8, 8, 1], [4, 16, 1]]


def base_lab(root: Path | None = None) -> fl.Lab:
    lab = fl.Lab("sweeps", root=root) if root else fl.Lab(":memory:")
    lab.create_experiment(**BASE)
    return lab


def config_of(lab: fl.Lab, experiment: str) -> dict[str, Any]:
    return lab.experiments[experiment].config.to_dict()


def snapshot(lab: fl.Lab) -> dict[str, Any]:
    """What a sweep that fails must leave as it was (the store included)."""
    return {"experiments": dict(lab.experiments), "sweeps": dict(lab.sweeps),
            "log": len(lab.log), "stored": len(lab.store.actions_after(0))}


def run_actions(lab: fl.Lab, since: int = 0) -> list[str]:
    return [e.params["experiment"] for e in list(lab.log)[since:] if e.type == "run"]


# -- members --------------------------------------------------------------------------------

def test_grid_times_seeds_makes_every_combination_in_order():
    lab = base_lab()
    sweep = lab.sweep(based_on="exp_0", grid={"optimizer.lr": [1e-3, 3e-3],
                                              "model.widths": WIDTHS},
                      seeds=range(3), name="lr x width")
    assert sweep.id == "sweep_0" and lab.sweeps == {"sweep_0": sweep}
    assert sweep.knobs == ("optimizer.lr", "model.widths", "seed")
    assert sweep.base == "exp_0" and sweep.name == "lr x width"
    assert sweep.members == tuple(f"exp_{i}" for i in range(1, 13))
    expected = list(itertools.product([1e-3, 3e-3], WIDTHS, [0, 1, 2]))
    got = [(c["optimizer"]["lr"], c["model"]["widths"], c["seed"])
           for c in (config_of(lab, m) for m in sweep.members)]
    assert got == expected
    for member, (lr, widths, seed) in zip(sweep.members, expected):
        assert sweep.values[member] == {"optimizer.lr": lr, "model.widths": widths,
                                        "seed": seed}
        config = config_of(lab, member)  # everything else is the base's
        assert config["data"] == config_of(lab, "exp_0")["data"]
        assert lab.experiments[member].based_on == "exp_0"
    assert lab.experiments["exp_12"].name == \
        "lr x width: optimizer.lr=0.003, model.widths=[4, 16, 1], seed=2"
    assert lab.log.sentences()[-1] == ("Created sweep 0, 'lr x width': 12 experiments "
                                       "based on exp_0 varying optimizer.lr, model.widths "
                                       "and seed.")


def test_groups_are_the_members_that_differ_only_by_seed():
    lab = base_lab()
    sweep = lab.sweep(based_on="exp_0", grid={"optimizer.lr": [1e-3, 3e-3],
                                              "model.widths": WIDTHS}, seeds=[0, 1])
    assert sweep.groups == {
        "optimizer.lr=0.001, model.widths=[4, 8, 8, 1]": ("exp_1", "exp_2"),
        "optimizer.lr=0.001, model.widths=[4, 16, 1]": ("exp_3", "exp_4"),
        "optimizer.lr=0.003, model.widths=[4, 8, 8, 1]": ("exp_5", "exp_6"),
        "optimizer.lr=0.003, model.widths=[4, 16, 1]": ("exp_7", "exp_8"),
    }
    # no name: members are named after the sweep's id; seeds alone make one group
    assert lab.experiments["exp_1"].name == \
        "sweep_0: optimizer.lr=0.001, model.widths=[4, 8, 8, 1], seed=0"
    seeds_only = lab.sweep(based_on="exp_0", seeds=[7, 8, 9], name="seeds")
    assert seeds_only.groups == {"seeds": ("exp_9", "exp_10", "exp_11")}


def test_zip_advances_its_lists_together():
    lab = base_lab()
    sweep = lab.sweep(based_on="exp_0", zip={"optimizer.lr": [1e-3, 2e-3, 3e-3],
                                             "optimizer.steps": [10, 20, 30]},
                      grid={"data.n_train": [16, 32]})
    got = [(c["data"]["n_train"], c["optimizer"]["lr"], c["optimizer"]["steps"])
           for c in (config_of(lab, m) for m in sweep.members)]
    assert got == [(n, lr, steps) for n in (16, 32)
                   for lr, steps in ((1e-3, 10), (2e-3, 20), (3e-3, 30))]
    assert sweep.knobs == ("data.n_train", "optimizer.lr", "optimizer.steps")


def test_sample_draws_distinct_points_of_the_product_deterministically():
    sample = {"optimizer.lr": [1e-3, 2e-3, 3e-3, 4e-3], "data.n_train": [8, 16, 24, 32]}

    def drawn(sample_seed: int) -> list[tuple[float, int]]:
        lab = base_lab()
        sweep = lab.sweep(based_on="exp_0", sample=sample, n=5, sample_seed=sample_seed)
        return [(c["optimizer"]["lr"], c["data"]["n_train"])
                for c in (config_of(lab, m) for m in sweep.members)]

    first = drawn(0)
    assert len(first) == len(set(first)) == 5
    product = list(itertools.product(*sample.values()))
    assert set(first) <= set(product)
    assert first == sorted(first, key=product.index)  # in the product's order
    assert drawn(0) == first
    assert any(drawn(seed) != first for seed in (1, 2, 3))
    everything = base_lab().sweep(based_on="exp_0", sample=sample, n=16)
    assert len(everything.members) == 16


def test_members_equal_to_existing_experiments_reuse_them():
    lab = base_lab()
    lab.create_experiment(based_on="exp_0", optimizer={"lr": 3e-3}, name="by hand")
    sweep = lab.sweep(based_on="exp_0", grid={"optimizer.lr": [0.01, 3e-3, 1e-3]},
                      seeds=[0, 1], name="lr")
    # exp_0 is lr 0.01 with seed 0, exp_1 lr 0.003 with seed 0: names do not count
    assert sweep.members == ("exp_0", "exp_2", "exp_1", "exp_3", "exp_4", "exp_5")
    assert len(lab.experiments) == 6
    assert lab.experiments["exp_1"].name == "by hand"
    result = lab.log[-1].result
    assert result["reused"] == ["exp_0", "exp_1"]
    assert lab.log.sentences()[-1] == ("Created sweep 0, 'lr': 6 experiments (2 reused) "
                                       "based on exp_0 varying optimizer.lr and seed.")
    # a second sweep over the same points makes nothing new
    again = lab.sweep(based_on="exp_0", grid={"optimizer.lr": [0.01, 3e-3, 1e-3]},
                      seeds=[0, 1])
    assert again.members == sweep.members and len(lab.experiments) == 6


BAD_SWEEPS = [
    ("unknown path", {"grid": {"optimizer.lrr": [0.1]}},
     ["optimizer.lrr", "unknown path", "optimizer.lr,", "sweep member 0"]),
    ("bad value", {"grid": {"optimizer.lr": [0.01, -1.0]}},
     ["optimizer.lr: got -1.0", "sweep member 1: optimizer.lr=-1.0"]),
    ("bad width", {"grid": {"model.widths": [[4, 8, 1], [4, 0, 1]]}, "seeds": [0, 1]},
     ["model.widths[1]: got 0", "sweep member 2: model.widths=[4, 0, 1], seed=0"]),
    ("inconsistent", {"grid": {"data.dim": [4, 5]}},
     ["model.widths[0]: got 4", "sweep member 1: data.dim=5"]),
    ("unknown observable", {"grid": {"observables": [["train_loss", "nope"]]}},
     ["observables[1]: got 'nope'", "sweep member 0"]),
    ("seed given twice", {"grid": {"seed": [1, 2]}, "seeds": [0]}, ["seed", "only one of"]),
    ("path in grid and zip", {"grid": {"optimizer.lr": [0.1]},
                              "zip": {"optimizer.lr": [0.2]}}, ["optimizer.lr", "only one"]),
    ("empty values", {"grid": {"optimizer.lr": []}}, ["optimizer.lr", "non-empty"]),
    ("zip lengths", {"zip": {"optimizer.lr": [0.1, 0.2], "optimizer.steps": [5]}},
     ["optimizer.steps: got [5]", "a list of 2 values"]),
    ("repeated member", {"grid": {"optimizer.lr": [0.01, 1e-2]}},
     ["repeats member 0", "sweep member 1"]),
    ("n too large", {"sample": {"optimizer.lr": [0.1, 0.2]}, "n": 3},
     ["n: got 3", "from 1 to 2"]),
    ("n without sample", {"grid": {"optimizer.lr": [0.1]}, "n": 1}, ["n: got 1", "sample"]),
    ("nothing varies", {}, ["knobs to vary"]),
    ("too many", {"grid": {"optimizer.lr": [0.01] * 101, "data.n_train": [1] * 100}},
     ["10100 members", "at most 10000"]),
    ("unknown base", {"grid": {"optimizer.lr": [0.1]}, "based_on": "exp_9"}, ["exp_9"]),
]


@pytest.mark.parametrize(("what", "kwargs", "parts"), BAD_SWEEPS,
                         ids=[b[0] for b in BAD_SWEEPS])
def test_bad_sweeps_name_the_problem_and_change_nothing(what, kwargs, parts):
    lab = base_lab()
    before = snapshot(lab)
    with pytest.raises(fl.ConfigError) as error:
        lab.sweep(**{"based_on": "exp_0", **kwargs})
    for part in parts:
        assert part in str(error.value), (what, str(error.value))
    assert snapshot(lab) == before


def test_sweep_code_is_literal_and_rebuilds_it():
    name = "x'); import os; os.system('boom') #\n\"\"\""
    lab = base_lab()
    lab.sweep(based_on="exp_0", grid={"model.activation": ["relu", "tanh"]},
              sample={"optimizer.lr": np.array([1e-3, 2e-3, 3e-3])}, n=2, sample_seed=4,
              seeds=np.arange(2), name=name)
    code = lab.log[-1].action.to_code()
    tree = ast.parse(code)
    assert len(tree.body) == 1
    call = tree.body[0].value
    assert isinstance(call, ast.Call) and ast.unparse(call.func) == "lab.sweep"
    values = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    assert values["name"] == name and values["seeds"] == [0, 1]  # numpy became plain
    assert values["sample"] == {"optimizer.lr": [1e-3, 2e-3, 3e-3]}
    namespace = {"lab": fl.Lab(":memory:")}
    for cell in lab.cells():
        exec_cell(cell.source, namespace)
    copy = namespace["lab"]
    assert copy.sweeps == lab.sweeps
    assert {k: e.config for k, e in copy.experiments.items()} == \
        {k: e.config for k, e in lab.experiments.items()}


# -- running --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[fl.Lab, Path]:
    """A stored lab: a 2 x 2 grid times 3 seeds (one member is the base), all run."""
    root = tmp_path_factory.mktemp("sweeps")
    lab = base_lab(root)
    lab.create_experiment(based_on="exp_0", seed=9, name="not in the sweep")
    lab.sweep(based_on="exp_0", grid={"optimizer.lr": [0.01, 0.02],
                                      "model.widths": WIDTHS}, seeds=[0, 1, 2], name="grid")
    lab.run("exp_0")  # before the sweep runs: it is not trained again
    runs = lab.run("sweep_0")
    assert isinstance(runs, dict)
    return lab, root


def test_running_a_sweep_runs_each_member_without_a_finished_run(ran):
    lab, _ = ran
    sweep = lab.sweeps["sweep_0"]
    assert sweep.members[0] == "exp_0"
    assert run_actions(lab) == ["exp_0", *sweep.members[1:]]  # one run action each
    for member in sweep.members:
        run = lab.results(member)
        assert run.status == "finished" and run.steps_done == STEPS
        assert len(run.series("train_loss")) == STEPS
    assert "exp_1" not in lab.latest  # not a member
    # again: nothing is left to train, and nothing is logged
    logged = len(lab.log)
    runs = lab.run("sweep_0")
    assert [e.describe() for e in list(lab.log)[logged:]] == \
        ["Ran sweep_0: every member had a finished run."]  # the ask, and nothing trained
    assert isinstance(runs, dict) and list(runs) == list(sweep.members)
    assert all(runs[m].id == lab.results(m).id for m in sweep.members)


def test_running_again_trains_only_the_members_left():
    lab = base_lab()
    sweep = lab.sweep(based_on="exp_0", grid={"optimizer.lr": [0.01, 0.02]}, seeds=[0, 1])
    assert sweep.members == ("exp_0", "exp_1", "exp_2", "exp_3")
    lab.run("exp_1")
    lab.run("exp_2", stop_at=5)  # cancelled: not finished, so the sweep runs it
    start = len(lab.log)
    lab.run("sweep_0")
    assert run_actions(lab, start) == ["exp_0", "exp_2", "exp_3"]
    assert all(lab.results(m).status == "finished" for m in sweep.members)
    assert lab.results("exp_2").steps_done == STEPS


def test_a_diverged_member_is_not_trained_again():
    lab = fl.Lab(":memory:")
    lab.create_experiment(**{**BASE, "optimizer": {"name": "sgd", "lr": 0.01,
                                                   "steps": STEPS}})
    lab.sweep(based_on="exp_0", grid={"optimizer.lr": [0.01, 100.0]})
    with pytest.warns(FeaturelabWarning, match="exp_1 diverged"):
        lab.run("sweep_0")
    assert lab.results("exp_1").status == "diverged"
    logged = len(lab.log)
    lab.run("sweep_0")
    assert [e.type for e in list(lab.log)[logged:]] == ["run_sweep"]
    table = lab.table().set_index("id")
    assert table.loc["exp_1", "status"] == "diverged"
    assert np.isfinite(table.loc["exp_1", "train_loss.min"])


def test_run_checks_its_options_for_a_sweep_and_its_id():
    lab = base_lab()
    lab.sweep(based_on="exp_0", seeds=[1, 2])
    before = snapshot(lab)
    for option in ({"force": True}, {"stop_at": 3}, {"resume": True}, {"backend": "gpu"},
                   {"workers": 0}):
        with pytest.raises(fl.ConfigError, match=next(iter(option))):
            lab.run("sweep_0", **option)
    for option in ({"backend": "processes"}, {"workers": 2}):  # a sweep's, not a run's
        with pytest.raises(fl.ConfigError, match=next(iter(option))):
            lab.run("exp_0", **option)
    with pytest.raises(fl.ConfigError, match="sweep_0"):
        lab.run("sweep_5")
    with pytest.raises(fl.FeaturelabError, match="not running"):
        lab.cancel("sweep_0")
    assert snapshot(lab) == before


def test_a_reopened_lab_has_the_sweep_and_its_runs(ran):
    lab, root = ran
    again = fl.Lab("sweeps", root=root, session=lab.session)
    assert again.restore_errors == []
    assert again.sweeps == lab.sweeps
    assert {k: (e.config, e.based_on) for k, e in again.experiments.items()} == \
        {k: (e.config, e.based_on) for k, e in lab.experiments.items()}
    assert again.latest == lab.latest
    for member in lab.sweeps["sweep_0"].members:
        np.testing.assert_array_equal(again.results(member).series("test_loss"),
                                      lab.results(member).series("test_loss"))
    pd.testing.assert_frame_equal(again.table(), lab.table())
    logged = len(again.log)
    again.run("sweep_0")  # finished in the reopened session too
    assert [e.type for e in list(again.log)[logged:]] == ["run_sweep"]


def test_a_fresh_session_rebuilds_the_sweep_from_its_cells_reusing_the_runs(ran):
    lab, root = ran
    fresh = fl.Lab("sweeps", root=root, fresh=True)
    assert fresh.session != lab.session and not fresh.experiments
    namespace = {"lab": fresh}
    for cell in lab.cells():
        exec_cell(cell.source, namespace)
    assert fresh.sweeps == lab.sweeps
    runs = [e for e in fresh.log if e.type == "run"]
    assert runs and all(e.result["reused"] for e in runs)
    assert {m: fresh.results(m).id for m in fresh.latest} == \
        {m: lab.results(m).id for m in lab.latest}


# -- data out -------------------------------------------------------------------------------

def test_table_has_a_row_per_experiment_with_knobs_and_summaries(ran):
    lab, _ = ran
    table = lab.table()
    assert list(table["id"]) == list(lab.experiments)
    assert list(table.columns[:5]) == ["id", "name", "tags", "sweep", "seed"]
    for column in ("optimizer.lr", "model.widths", "data.n_train", "status",
                   "train_loss.final", "train_loss.min", "train_loss.argmin",
                   "test_loss.final", "test_loss.min", "test_loss.argmin"):
        assert column in table.columns
    assert "name" not in [c for c in table.columns[4:]]
    rows = table.set_index("id")
    assert rows.loc["exp_1", "sweep"] is None and rows.loc["exp_1", "status"] == "not run"
    assert rows.loc["exp_0", "sweep"] == "sweep_0"
    sweep = lab.sweeps["sweep_0"]
    for member in sweep.members:
        row = rows.loc[member]
        values = sweep.values[member]
        assert row["optimizer.lr"] == values["optimizer.lr"] and row["seed"] == values["seed"]
        assert row["model.widths"] == tuple(values["model.widths"])
        assert row["status"] == "finished" and row["name"] == lab.experiments[member].name
        series = lab.results(member).series("train_loss")
        assert row["train_loss.final"] == series[-1]
        assert row["train_loss.min"] == series.min()
        assert row["train_loss.argmin"] == int(np.argmin(series))
    # the widths column groups like any other
    assert table.groupby("model.widths").size().to_dict() == {(4, 16, 1): 6,
                                                              (4, 8, 8, 1): 7}


def test_series_frame_is_long_format(ran):
    lab, _ = ran
    frame = lab.series_frame("train_loss")
    assert list(frame.columns) == ["experiment", "step", "value"]
    assert list(frame["experiment"].unique()) == list(lab.latest)
    for experiment in ("exp_0", "exp_5"):
        part = frame[frame["experiment"] == experiment]
        assert list(part["step"]) == list(range(STEPS))
        np.testing.assert_array_equal(part["value"].to_numpy(),
                                      lab.results(experiment).series("train_loss"))
    chosen = lab.series_frame("test_loss", experiments=["exp_3", "exp_2"])
    assert list(chosen["experiment"].unique()) == ["exp_3", "exp_2"]
    layered = lab.series_frame("weight_l2_norm", layer="layers.0", experiments="exp_2")
    assert len(layered) == STEPS
    with pytest.raises(fl.ConfigError, match="one per neuron"):
        lab.series_frame("active_rate", layer="layers.0.pre")
    with pytest.raises(fl.FeaturelabError, match="not been run"):
        lab.series_frame("train_loss", experiments=["exp_1"])
    with pytest.raises(fl.FeaturelabError, match="no_such_metric"):
        lab.series_frame("no_such_metric")


def test_bands_are_the_seed_statistics_of_each_group(ran):
    lab, _ = ran
    bands = lab.bands("train_loss", sweep="sweep_0")
    assert list(bands.columns) == ["group", "step", "mean", "std", "min", "max", "n"]
    sweep = lab.sweeps["sweep_0"]
    assert list(bands["group"].unique()) == list(sweep.groups)
    for group, members in sweep.groups.items():
        part = bands[bands["group"] == group]
        stack = np.stack([lab.results(m).series("train_loss") for m in members])
        assert list(part["step"]) == list(range(STEPS))
        assert set(part["n"]) == {3}
        np.testing.assert_allclose(part["mean"], stack.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(part["std"], stack.std(axis=0, ddof=1), rtol=1e-12)
        np.testing.assert_array_equal(part["min"], stack.min(axis=0))
        np.testing.assert_array_equal(part["max"], stack.max(axis=0))


def test_bands_use_only_finished_runs():
    lab = base_lab()
    lab.sweep(based_on="exp_0", grid={"optimizer.lr": [0.01, 0.02]}, seeds=[0, 1])
    with pytest.raises(fl.FeaturelabError, match=r"no finished run yet; lab.run\('sweep_0'\)"):
        lab.bands("train_loss", sweep="sweep_0")
    lab.run("exp_0")
    lab.run("exp_1")
    lab.run("exp_2", stop_at=5)  # cancelled: left out
    lab.run("exp_3")
    bands = lab.bands("test_loss", sweep="sweep_0")
    assert list(bands["group"].unique()) == ["optimizer.lr=0.01", "optimizer.lr=0.02"]
    first = bands[bands["group"] == "optimizer.lr=0.01"]
    stack = np.stack([lab.results(m).series("test_loss") for m in ("exp_0", "exp_1")])
    np.testing.assert_allclose(first["std"], stack.std(axis=0, ddof=1), rtol=1e-12)
    lone = bands[bands["group"] == "optimizer.lr=0.02"]
    assert set(lone["n"]) == {1} and lone["std"].isna().all()
    np.testing.assert_array_equal(lone["mean"], lab.results("exp_3").series("test_loss"))
    with pytest.raises(fl.ConfigError, match="sweep_7"):
        lab.bands("test_loss", sweep="sweep_7")


def test_the_stop_button_stops_the_whole_sweep_not_one_member():
    """A foreground sweep blocks the kernel: the notebook's stop button (KeyboardInterrupt)
    ends the member it lands in, and no other member starts."""
    lab = base_lab()
    sweep = lab.sweep(based_on="exp_0", seeds=range(3))

    def stop_at_step_5(kind, run):
        if kind == "run_started":
            def maybe_stop(step, *_):
                if step == 5:
                    raise KeyboardInterrupt
            run.trainer.events.subscribe("on_step_end", maybe_stop)

    off = lab.on_change(stop_at_step_5)
    with pytest.warns(FeaturelabWarning, match="cancelled"):
        lab.run(sweep.id, backend="kernel")
    off()
    statuses = [lab.results(m).status if m in lab.latest else None for m in sweep.members]
    assert statuses.count("cancelled") == 1 and statuses.count(None) >= 1, statuses


# -- on worker processes ---------------------------------------------------------------------

def test_workers_train_members_bitwise_as_the_kernel_does(tmp_path):
    lab = base_lab(tmp_path)
    lab.create_experiment(based_on="exp_0", observables_add=["active_rate"])
    sweep = lab.sweep(based_on="exp_1", grid={"optimizer.lr": [0.01, 0.03]}, seeds=[0, 5])
    runs = lab.run(sweep.id, workers=2)
    assert list(runs) == list(sweep.members)
    for member, run in runs.items():
        assert run.status == "finished"
        result = run.result()
        assert result.info["backend"] == "process" and result.info["threads"] == 1
        expected = kernel_series(lab.experiments[member].config)
        assert set(result.arrays) == set(expected)
        for key, values in expected.items():
            np.testing.assert_array_equal(result.arrays[key], values, err_msg=key)
        assert result.snapshots is not None and result.snapshots.count > 0
    # stored by the kernel: a reopened lab reads the same
    again = fl.Lab("sweeps", root=tmp_path, session=lab.session)
    for member in sweep.members:
        np.testing.assert_array_equal(again.results(member).series("active_rate", "layers.0.pre"),
                                      runs[member].series("active_rate", "layers.0.pre"))


def test_the_stop_button_cancels_running_members_exactly_and_a_rerun_continues_them():
    """Ctrl-C in a foreground sweep on workers: no member starts any more, each running
    member is cancelled at an exact step (a logged cancel, its cell stops there), and
    running the sweep again continues those from their checkpoints, bitwise."""
    lab = fl.Lab(":memory:")
    lab.create_experiment(**{**BASE, "optimizer": {"lr": 0.01, "steps": 4000}})
    sweep = lab.sweep(based_on="exp_0", seeds=range(4))
    interrupted = threading.Event()

    def interrupt_soon(kind, run):
        def on_flush(*_):  # once the first member has sent steps
            if not interrupted.is_set():
                interrupted.set()
                _thread.interrupt_main()
        if kind == "run_started":
            run.trainer.events.subscribe("on_flush", on_flush)

    off = lab.on_change(interrupt_soon)
    lab.run(sweep.id, workers=1)
    off()
    statuses = {m: lab.results(m).status for m in sweep.members if m in lab.latest}
    assert set(statuses.values()) == {"cancelled"} and len(statuses) < len(sweep.members)
    cancels = {e.result["run"]: e.result["at_step"] for e in lab.log if e.type == "cancel"}
    for member in statuses:
        run = lab.results(member)
        assert cancels[run.id] == run.steps_done and 0 < run.steps_done < 4000
        assert run.has_checkpoint
    # one cell for the sweep, saying where its members stopped
    cell = next(c.source for c in lab.cells() if "sweep_0'" in c.source and "run" in c.source)
    lines = cell.splitlines()
    assert lines[-1] == "lab.run('sweep_0', workers=1)"
    for member in statuses:
        at = lab.results(member).steps_done
        assert f"# {member} cancelled at step {at}; running this again continues it" in lines
    start = len(lab.log)
    lab.run(sweep.id, workers=2)
    resumed = [e for e in list(lab.log)[start:] if e.type == "run" and e.params["resume"]]
    assert [e.params["experiment"] for e in resumed] == list(statuses)
    for member in sweep.members:
        run = lab.results(member)
        assert run.status == "finished"
        expected = kernel_series(lab.experiments[member].config)
        np.testing.assert_array_equal(run.series("train_loss"), expected["train_loss"])


def test_a_killed_worker_fails_its_member_keeps_its_steps_and_the_sweep_goes_on(tmp_path):
    from featurelab.workers.processes import local_pool

    lab = base_lab(tmp_path)
    lab.create_experiment(**{**BASE, "optimizer": {"lr": 0.01, "steps": 20_000}})
    sweep = lab.sweep(based_on="exp_1", zip={"optimizer.steps": [20_000, STEPS]})
    pool = local_pool(1)
    job = lab.run(sweep.id, workers=1, background=True)
    first = sweep.members[0]
    deadline = time.monotonic() + 120
    while first not in lab.latest or lab.results(first).steps_done < 100:
        assert time.monotonic() < deadline, "the first member never sent steps"
        time.sleep(0.05)
    busy = [w for w in pool._all if w.alive() and w not in pool._idle]
    assert len(busy) == 1
    busy[0].process.kill()  # as the OOM killer would
    job.wait(120)
    run = lab.results(first)
    assert run.status == "failed" and "worker" in run.result().error
    kept = run.steps_done
    assert kept >= 100
    assert np.isfinite(run.series("train_loss")[:kept]).all()  # what it sent is stored
    assert lab.results(sweep.members[1]).status == "finished"  # on a new worker
    again = fl.Lab("sweeps", root=tmp_path, session=lab.session)
    assert again.results(first).status == "failed" and again.results(first).steps_done == kept


def _slow_long_lab(tmp_path=None, steps=20_000):
    lab = base_lab(tmp_path)
    lab.create_experiment(**{**BASE, "optimizer": {"lr": 0.01, "steps": steps}})
    return lab


def _wait_steps(lab, member, steps=100, timeout=120):
    deadline = time.monotonic() + timeout
    while member not in lab.latest or lab.results(member).steps_done < steps:
        assert time.monotonic() < deadline, f"{member} never sent {steps} steps"
        time.sleep(0.05)


def test_a_cancel_does_not_wait_for_a_flush_that_waits_for_the_store(monkeypatch):
    """The cancel holds the store while it waits for the worker's answer; the member's
    flushes wait for the store: the answer must not queue behind them."""
    from featurelab.store import Store

    lab = _slow_long_lab()
    sweep = lab.sweep(based_on="exp_1", seeds=[7])
    append = Store.append_series

    def slow_append(self, *args, **kwargs):
        time.sleep(0.2)
        return append(self, *args, **kwargs)

    monkeypatch.setattr(Store, "append_series", slow_append)
    job = lab.run(sweep.id, workers=1, background=True)
    member = sweep.members[0]
    _wait_steps(lab, member)
    started = time.monotonic()
    lab.cancel(member)
    assert time.monotonic() - started < 10
    job.wait(120)
    run = lab.results(member)
    at = [e.result["at_step"] for e in lab.log if e.type == "cancel"]
    assert run.status == "cancelled" and at == [run.steps_done]


def test_a_store_that_fails_ends_the_member_failed_and_the_sweep_goes_on(monkeypatch):
    from featurelab.store import Store

    lab = _slow_long_lab(steps=400)
    sweep = lab.sweep(based_on="exp_1", seeds=[1, 2])
    append = Store.append_series
    calls = []

    def failing_append(self, run_id, *args, **kwargs):
        calls.append(run_id)
        if calls.count(calls[0]) == 2 and run_id == calls[0]:
            raise OSError("disk full")
        return append(self, run_id, *args, **kwargs)

    monkeypatch.setattr(Store, "append_series", failing_append)
    with pytest.warns(FeaturelabWarning, match="disk full"):
        lab.run(sweep.id, workers=1)
    first, second = (lab.results(m) for m in sweep.members)
    assert first.status == "failed" and "disk full" in first.result().error
    assert first.steps_done == 50  # the chunk stored before the failure
    assert second.status == "finished"


def test_replay_reruns_a_sweeps_members_as_they_went():
    lab = _slow_long_lab(steps=4000)
    sweep = lab.sweep(based_on="exp_1", seeds=[1, 2])
    job = lab.run(sweep.id, workers=1, background=True)
    _wait_steps(lab, sweep.members[0])
    lab.cancel(sweep.id)
    job.wait(120)
    assert lab.results(sweep.members[0]).status == "cancelled"
    report = fl.replay(lab)
    assert not report.differences, str(report)
    copy = report.lab
    assert copy.results(sweep.members[0]).status == "cancelled"
    assert copy.results(sweep.members[0]).steps_done == lab.results(sweep.members[0]).steps_done
    assert sweep.members[1] not in copy.latest  # it never started
    assert any("run_sweep" in s for s in report.skipped)


def test_a_member_that_cannot_start_is_reported_and_the_others_train(tmp_path):
    lab = base_lab(tmp_path)
    sweep = lab.sweep(based_on="exp_0", seeds=[3, 4])
    lab.run(sweep.members[0], stop_at=5)  # cancelled, with a checkpoint to continue from
    checkpoint = lab.results(sweep.members[0])._checkpoint_path()
    checkpoint.write_bytes(b"not a checkpoint")  # damaged on disk
    with pytest.warns(FeaturelabWarning, match=f"{sweep.members[0]} did not start"):
        lab.run(sweep.id, workers=1)
    job = lab.state.sweep_runs[sweep.id]
    assert job.done
    assert lab.results(sweep.members[1]).status == "finished"


def test_a_worker_process_imports_the_engine_alone():
    # A worker's start is mostly imports: the whole package (scipy for fits, pandas, the
    # actions and the store) made it 3.1-3.6 s here instead of 1.6, a tenth of a 16-seed
    # sweep. featurelab/__init__.py imports its names on first use so that it stays so.
    import subprocess
    import sys

    code = ("import sys, featurelab.workers.child; "
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('scipy', 'pandas', 'sqlite3', 'anywidget', 'ipywidgets') or "
            "m.startswith(('featurelab.actions', 'featurelab.lab', 'featurelab.store')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(fl.__file__).parents[1])
    assert out.stdout.split() == []
    assert "Lab" in dir(fl) and fl.Lab.__module__ == "featurelab.lab"  # still there on use
