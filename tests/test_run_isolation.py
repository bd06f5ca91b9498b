"""A run is its own: what it records cannot change under it, its result is kept only once
complete, and a finished run holds no trainer, thread connection or file open."""

import gc
import os
import weakref

import numpy as np
from conftest import TINY_LAB as TINY

import featurelab as fl

MEAN = "def probe(tensor, dim, keepdim=False):\n    return tensor.mean(dim=dim, keepdim=keepdim)\n"
FORTY_TWO = ("def probe(tensor, dim, keepdim=False):\n"
             "    return tensor.mean(dim=dim, keepdim=keepdim) * 0 + 42\n")


def test_redefining_a_statistic_while_a_run_trains_changes_nothing_of_that_run(tmp_path):
    """Issue 11, bug 1: the run shared the lab's registry (a series went 0.39 -> 42.0
    part-way) and was cached under the old source's key."""
    lab = fl.Lab("stats", root=tmp_path)
    lab.define_statistic("probe", source=MEAN, on="active_rate")  # one value per layer
    config = {**TINY, "optimizer": {"lr": 1e-2, "steps": 3000},
              "observables": ["train_loss", "probe"]}
    lab.create_experiment(**config)
    first = lab.run("exp_0", background=True)
    while first.steps_done < 20:  # it has begun recording with the mean
        pass
    lab.define_statistic("probe", source=FORTY_TWO, on="active_rate")
    first.wait(120)
    assert first.status == "finished"
    values = first.series("probe", layer="layers.0.pre")
    assert len(values) == 3000 and (values != 42).all()
    # cached under the definition it recorded with, not the one in force when it ended
    second = lab.run("exp_0")
    assert second.id != first.id and (second.series("probe", layer="layers.0.pre") == 42).all()
    lab.define_statistic("probe", source=MEAN, on="active_rate")
    assert lab.run("exp_0").id == first.id


def test_a_result_read_while_the_run_ends_is_not_kept_incomplete(tmp_path):
    """Issue 11, bug 3: with the panel reading results on every flush, a run whose step
    count is not a multiple of the flush interval had its result cached before it was
    all recorded: no snapshots, empty info, a failed statistic's error lost."""
    lab = fl.Lab("ending", root=tmp_path)
    # passes the check on a small probe at definition, fails on the training set
    lab.define_statistic("broken", source="def broken(tensor, dim, keepdim=False):\n"
                         "    bad = float('nan') if tensor.shape[1] > 5 else 1.0\n"
                         "    return tensor.mean(dim=dim, keepdim=keepdim) * bad\n")
    lab.create_experiment(**{**TINY, "optimizer": {"lr": 1e-2, "steps": 73},
                             "observables": ["train_loss", "hidden_activations", "broken"]})
    seen = []

    def read_on_every_flush(kind, run):
        if kind == "run_started":
            run.trainer.events.subscribe("on_flush", lambda *_: seen.append(run.result()))

    lab.on_change(read_on_every_flush)
    run = lab.run("exp_0", background=True).wait(60)
    assert seen  # the results were read while it trained and ended
    result = run.result()
    assert result.status == "finished" and result.steps_done == 73
    assert result.info.get("torch") and result.snapshots is not None
    assert result.snapshots.count > 0
    assert "broken@layers.1.pre" in result.stat_errors


def test_finished_runs_hold_no_trainer_and_leak_no_file_descriptors(tmp_path):
    """Issue 11, bug 4: about 4 descriptors leaked per run (EMFILE at run ~61 under a
    256-descriptor limit) and finished runs kept their trainer (data, model, optimizer)."""
    lab = fl.Lab("fds", root=tmp_path)
    lab.create_experiment(**{**TINY, "optimizer": {"lr": 1e-2, "steps": 20}})
    lab.run("exp_0", background=True).wait(60)  # the lab's own connections exist now
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    trainers = []
    for _ in range(25):
        run = lab.run("exp_0", force=True, background=True)
        trainers.append(weakref.ref(run.trainer))
        run.wait(60)
        assert run.status == "finished" and run.trainer is None
    gc.collect()
    after = len(os.listdir("/proc/self/fd"))
    assert after - before < 5, f"{after - before} descriptors more after 25 runs"
    assert all(ref() is None for ref in trainers)  # data, model, optimizer let go


def test_a_training_run_is_read_from_memory_not_reloaded_from_the_store(tmp_path):
    """Issue 11: while a run trained, each chart request reloaded every series from
    SQLite. Its result now comes from the trainer's memory up to the last flush."""
    lab = fl.Lab("live", root=tmp_path)
    lab.create_experiment(**{**TINY, "optimizer": {"lr": 1e-2, "steps": 4000}})
    run = lab.run("exp_0", background=True)
    loads = []
    real_load = lab.store.load_series
    lab.store.load_series = lambda *a: loads.append(a) or real_load(*a)
    while run.result().steps_done < 100:
        pass
    live = run.result()
    assert live.status == "running" and live.steps_done >= 100 and not loads
    assert len(live.series("train_loss")) == live.steps_done
    run.wait(120)
    stored = run.result()  # the finished run: from the store, once
    assert stored.status == "finished" and len(loads) == 1
    np.testing.assert_array_equal(stored.series("train_loss")[: live.steps_done],
                                  live.series("train_loss"))


def test_a_run_whose_end_cannot_be_recorded_still_ends(tmp_path):
    """A database error (or a second Ctrl-C) while a run's end is recorded left it
    'running' for good: lab.run said 'already running', reset refused."""
    lab = fl.Lab("ending", root=tmp_path)
    lab.create_experiment(**{**TINY, "optimizer": {"lr": 1e-2, "steps": 30}})
    real_finish = lab.store.finish_run
    calls = []

    def finish_once_failing(*args):
        calls.append(args)
        if len(calls) == 1:
            raise OSError("disk full")
        return real_finish(*args)

    lab.store.finish_run = finish_once_failing
    run = lab.run("exp_0")
    assert run.status == "failed" and "disk full" in run.result().error
    assert run.result().steps_done == 30  # what it recorded is still there
    lab.store.finish_run = real_finish
    assert lab.run("exp_0", force=True).status == "finished"


def test_a_reused_run_waits_and_copies_as_the_experiment_asked_for(tmp_path):
    import copy

    lab = fl.Lab("reuse", root=tmp_path)
    lab.create_experiment(**TINY)
    lab.create_experiment(**TINY)
    lab.run("exp_0")
    reused = lab.run("exp_1", background=True)
    assert reused.wait().experiment == "exp_1"
    assert copy.copy(reused).experiment == "exp_1"


def test_the_opening_cell_after_its_store_was_deleted_opens_a_new_lab(tmp_path, capsys):
    import shutil

    first = fl.Lab("gone", root=tmp_path / "store", fresh=True)
    first.create_experiment(**TINY)
    shutil.rmtree(tmp_path / "store")  # "start clean"
    again = fl.Lab("gone", root=tmp_path / "store", fresh=True)
    assert again is not first and not again.experiments
    assert (tmp_path / "store" / "gone.sqlite").exists()
    assert "re-attached" not in capsys.readouterr().out
