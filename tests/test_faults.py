"""Faults from outside the code (issue 13): a full disk, a config too big for the machine,
a formula with NaN targets, wrong Python types, junk panel messages. Each ends in an
error that names what to change, and the kernel lives on."""

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import TINY_LAB

import featurelab as fl
from featurelab.engine import resources
from featurelab.engine.snapshots import Snapshots
from featurelab.engine.train import Trainer
from featurelab.errors import DiskFullError, FeaturelabWarning

# -- a full disk --------------------------------------------------------------------------


def test_snapshot_files_get_their_disk_blocks_before_they_are_mapped(tmp_path):
    """A write into a map of a sparse file that finds the disk full is a SIGBUS (the
    kernel dies); blocks reserved up front leave nothing for a write to allocate."""
    snaps = Snapshots.allocate({"layers.0.pre": (64, 256)}, [0, 5, 9], tmp_path)
    path = tmp_path / "layers.0.pre.npy"
    data = 3 * 64 * 256 * 4
    assert os.stat(path).st_blocks * 512 >= data  # not a sparse file
    snaps.take(0, {"layers.0.pre": torch.ones(64, 256)})
    snaps.flush()
    assert Snapshots.load(tmp_path).at("layers.0.pre", 0).sum() == 64 * 256


def test_without_fallocate_the_blocks_are_written_as_zeros(tmp_path, monkeypatch):
    """macOS, or a file system without fallocate: writing the zeros allocates them too."""
    monkeypatch.delattr(os, "posix_fallocate", raising=False)
    snaps = Snapshots.allocate({"layers.0.pre": (64, 256)}, [0, 5, 9], tmp_path)
    assert os.stat(tmp_path / "layers.0.pre.npy").st_blocks * 512 >= 3 * 64 * 256 * 4
    snaps.take(5, {"layers.0.pre": torch.full((64, 256), 2.0)})
    snaps.flush()
    loaded = Snapshots.load(tmp_path)  # the header is whole
    assert loaded.steps.tolist() == [0, 5] and loaded.at("layers.0.pre", 5).max() == 2.0
    assert loaded.at("layers.0.pre", 0).max() == 0.0


def test_a_run_killed_half_way_has_its_snapshots_readable_up_to_its_last_flush(tmp_path):
    """steps.npy follows the series' flushes, not only the run's end: a killed kernel (no
    end) leaves the snapshots of every flushed step readable, activations and outputs."""
    config = fl.ExperimentConfig(model={"widths": [4, 8, 1]},
                                 data={"dim": 4, "n_train": 16, "n_test": 4},
                                 optimizer={"steps": 400},
                                 observables=["train_loss", "hidden_activations", "predictions"],
                                 snapshots={"schedule": [[0, 10]]})
    trainer = fl.Trainer(config, snapshot_dir=tmp_path, flush_every=50)
    for _ in range(125):  # killed at step 125: no flush of its own, no end
        trainer.step()
    loaded = Snapshots.load(tmp_path)
    assert loaded.steps.tolist() == list(range(0, 100, 10))  # flushed at step 100
    assert loaded.at("predictions", 90).shape == (20, 1)  # 16 train + 4 test samples
    assert len(loaded.stack("layers.0.pre")) == 10


def test_a_model_without_hidden_layers_records_its_empty_snapshots_on_disk(tmp_path):
    """steps.npy needs the run's folder even when no hook point is kept (it was made only
    for a point's file, and the run could not start)."""
    lab = fl.Lab("flat", root=tmp_path)
    lab.create_experiment(model={"widths": [4, 1]}, data={"dim": 4, "n_train": 16, "n_test": 4},
                          optimizer={"steps": 3})
    assert lab.run("exp_0").status == "finished"


def _no_room(*args):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_no_room_for_snapshots_is_a_disk_full_error_and_leaves_no_files(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "posix_fallocate", _no_room, raising=False)
    with pytest.raises(DiskFullError, match=r"disk full: could not write .*layers\.0\.pre"):
        Snapshots.allocate({"layers.0.pre": (8, 4), "layers.1.pre": (8, 4)}, [0, 1], tmp_path)
    assert list(tmp_path.iterdir()) == []  # what the others took is given back


def test_a_run_without_room_for_its_snapshots_ends_failed_and_the_lab_goes_on(tmp_path,
                                                                              monkeypatch):
    lab = fl.Lab("full", root=tmp_path)
    lab.create_experiment(**TINY_LAB)
    with monkeypatch.context() as m:
        m.setattr(os, "posix_fallocate", _no_room, raising=False)
        with pytest.raises(fl.FeaturelabError, match="disk full: could not write .*npy"):
            lab.run("exp_0", background=True)
    run = lab.results("exp_0")
    assert run.wait(5).status == "failed" and "disk full" in run.result().error
    assert lab.run("exp_0", force=True).status == "finished"  # once there is room again


def test_a_store_that_cannot_be_written_any_more_still_ends_the_run(tmp_path, monkeypatch):
    """The disk fills after some flushes: the run ends failed with "disk full" naming the
    database, its earlier rows stay readable, and even when the store cannot be told how
    it ended, wait() returns and the run says failed (not "running" for ever)."""
    lab = fl.Lab("full", root=tmp_path)
    lab.create_experiment(**TINY_LAB)
    store = lab.store
    append, calls = store.append_series, []

    def append_then_full(*args):
        calls.append(args)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        append(*args)

    monkeypatch.setattr(store, "append_series", append_then_full)
    monkeypatch.setattr(store, "finish_run", _no_room)
    monkeypatch.setattr(store, "update_action_result", _no_room)
    with pytest.warns(FeaturelabWarning, match="disk full"):
        run = lab.run("exp_0", background=True)
        assert run.wait(30) is run and not run._thread.is_alive()
    assert run.status == "failed" and run.done
    error = run.result().error
    assert error.startswith("disk full: could not write") and str(store.path) in error
    assert run.steps_done == 50 and len(run.series("train_loss")) == 50  # the first flush


SCRIPT = r"""
import json, resource, signal, sys
import featurelab as fl
lab = fl.Lab("full", root=sys.argv[1])
small = dict(model={"widths": [4, 64, 64, 1]}, data={"dim": 4, "n_train": 256, "n_test": 16},
             optimizer={"lr": 1e-2, "steps": 3000}, snapshots={"schedule": [[0, 1000]]},
             observables=["train_loss", "test_loss", "hidden_activations", "active_rate"])
lab.create_experiment(**small)
lab.create_experiment(**{**small, "snapshots": {"schedule": [[0, 1]]}}, name="big")
# Writes past 300 kB fail with EFBIG, as on a disk that is full (SIGXFSZ would kill us).
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, resource.RLIM_INFINITY))
out = {}
try:  # 3000 snapshots of (256, 64): no room to reserve them
    lab.run("exp_1", background=True)
except fl.FeaturelabError as exc:
    out["big"] = str(exc)
run = lab.run("exp_0", background=True)  # its series outgrow the database's room
out["waited"] = not run.wait(60)._thread.is_alive()
out["status"], out["error"] = run.status, run.result().error
out["steps"], out["rows"] = run.steps_done, len(run.series("train_loss"))
out["snapshots"] = run.result().snapshots.steps.tolist()
print(json.dumps(out))
"""


@pytest.mark.skipif(not hasattr(os, "posix_fallocate"), reason="Linux: ulimit -f, fallocate")
def test_a_real_file_size_limit_fails_the_run_with_disk_full_and_keeps_the_rest(tmp_path):
    """No root needed: RLIMIT_FSIZE makes writes and reservations past it fail with EFBIG,
    the errno of a full quota; a background run ends failed, the process lives on."""
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True,
                          text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["big"].startswith("disk full: could not write") and ".npy" in out["big"]
    assert out["waited"] and out["status"] == "failed"
    assert out["error"].startswith("disk full: could not write") and "full.sqlite" in out["error"]
    assert 0 < out["steps"] == out["rows"] < 3000  # the rows flushed before are kept
    assert out["snapshots"][:1] == [0]


# -- a config too big for the machine -------------------------------------------------------


def test_a_config_needing_more_memory_than_there_is_is_refused_with_the_numbers(monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: 23_100_000_000)
    lab = fl.Lab(":memory:")
    with pytest.raises(fl.ConfigError) as error:
        lab.create_experiment(model={"widths": [10, 65536, 65536, 1]},
                              observables=["train_loss", "test_loss"])
    assert error.value.field == "model.widths"
    message = str(error.value)
    assert "needs about 70.2 GB of memory" in message and "23.1 GB available" in message
    assert "parameters 17.2 GB" in message and "optimizer state 34.4 GB" in message
    assert lab.experiments == {} and len(lab.log) == 0


def test_a_snapshot_plan_larger_than_the_free_disk_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "free_disk", lambda directory: 500_000_000_000)
    lab = fl.Lab("big", root=tmp_path)
    with pytest.raises(fl.ConfigError, match=r"about 1\.6 TB of disk \(snapshots 1\.6 TB") as e:
        lab.create_experiment(model={"widths": [10, 4000, 1]}, data={"n_train": 100_000},
                              optimizer={"steps": 1000, "batch_size": 100},
                              snapshots={"schedule": [[0, 1]]})
    assert e.value.field == "snapshots.schedule" and e.value.value == [[0, 1]]


def test_the_trainer_checks_again_before_it_allocates(tiny, monkeypatch):
    """Memory taken since the experiment was created (or a worker on a smaller machine):
    the run is refused before its first allocation, and recorded failed."""
    lab = fl.Lab(":memory:")
    lab.create_experiment(**TINY_LAB)
    monkeypatch.setattr(resources, "available_memory", lambda: 1000)
    with pytest.raises(fl.ConfigError, match="of memory.*this machine has 1.0 kB available"):
        Trainer(tiny())
    with pytest.raises(fl.ConfigError, match="needs about"):
        lab.run("exp_0")
    run = lab.results("exp_0")
    assert run.status == "failed" and run.result().error.startswith("the run could not start")


def test_the_reference_experiments_and_test_configs_are_far_from_the_limits(tiny):
    reference = fl.ExperimentConfig(
        model={"widths": [10, 100, 100, 1]}, data={"n_train": 500, "n_test": 200},
        observables=["train_loss", "test_loss", "weight_l2_norm", "hidden_activations",
                     "nonlinear_rate"])
    for config in (reference, tiny(), fl.ExperimentConfig(**TINY_LAB)):
        needs = resources.estimate(config, snapshots_on_disk=True)
        assert sum(needs.memory.values()) < 100e6 and sum(needs.disk.values()) < 100e6
    needs = resources.estimate(reference, snapshots_on_disk=True)
    assert needs.disk["snapshots"] == 156 * 500 * 200 * 4  # 62 MB: 155 scheduled + the last step


# -- targets that are not finite ----------------------------------------------------------


@pytest.mark.parametrize(("formula", "problem"), [
    ("log(x0)", "not finite, e.g. y = nan at x0="),
    ("exp(1000*x0)", "not finite, e.g. y = inf at x0="),
    ("exp(50*x0)", "too large to square in float32"),
])
def test_a_formula_with_non_finite_targets_is_refused_before_training(formula, problem):
    data = {"task": "formula", "formula": formula, "dim": 4, "n_train": 64, "n_test": 16}
    config = fl.ExperimentConfig(model={"widths": [4, 8, 1]}, data=data)
    with pytest.raises(fl.ConfigError, match=r"\d+ of 80 targets are " + problem) as error:
        Trainer(config)  # not a "diverged" run blamed on the learning rate
    assert error.value.field == "data.formula" and error.value.value == formula
    lab = fl.Lab(":memory:")
    with pytest.raises(fl.ConfigError, match="targets are") as error:
        lab.create_experiment(model={"widths": [4, 8, 1]}, data=data)
    assert error.value.field == "data.formula" and lab.experiments == {}


def test_finite_formulas_still_train():
    data = {"task": "formula", "formula": "log(abs(x0) + 1)", "dim": 4, "n_train": 32,
            "n_test": 8}
    config = fl.ExperimentConfig(model={"widths": [4, 8, 1]}, data=data,
                                 optimizer={"steps": 5}, observables=["train_loss"])
    assert Trainer(config).run() == "finished"


# -- wrong Python types ----------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "field", "value"), [
    ({"seed": 1.5}, "seed", 1.5),
    ({"seed": "0"}, "seed", "0"),
    ({"seed": True}, "seed", True),
    ({"optimizer": {"lr": "fast"}}, "optimizer.lr", "fast"),
    ({"optimizer": 5}, "optimizer", 5),
    ({"name": 3}, "name", 3),
    ({"loss": 5}, "loss", 5),
    ({"observables": [1]}, "observables[0]", 1),
    ({"model": [4, 8, 1]}, "model", [4, 8, 1]),
    ({"model": {"activation": ["relu"]}}, "model.activation", ["relu"]),
    ({"data": {"task": {}}}, "data.task", {}),
    ({"based_on": 3}, "based_on", 3),
])
def test_wrong_python_types_are_config_errors_naming_field_and_value(changes, field, value):
    lab = fl.Lab(":memory:")
    with pytest.raises(fl.ConfigError) as error:
        lab.create_experiment(**{**TINY_LAB, **changes})
    assert isinstance(error.value, ValueError) and isinstance(error.value, fl.FeaturelabError)
    assert error.value.field == field and error.value.value == value
    assert str(error.value).startswith(f"{field}: got {value!r}; allowed: ")
    if "based_on" not in changes:  # the config itself says the same
        with pytest.raises(fl.ConfigError) as again:
            fl.ExperimentConfig(**{**TINY_LAB, **changes})
        assert again.value.field == field


def test_every_verb_turns_pydantic_errors_into_config_errors():
    lab = fl.Lab(":memory:")
    with pytest.raises(fl.ConfigError, match=r"^x_range: got 'abc'; allowed: a list or None"):
        lab.zoom("train_loss", x_range="abc")
    with pytest.raises(fl.ConfigError, match=r"^experiments\[0\]: got 1; allowed: a string"):
        lab.select([1])
    with pytest.raises(fl.ConfigError, match="unknown key"):
        fl.ExperimentConfig(optimizer={1: 2, "a": 3})
    np_seed = lab.create_experiment(**TINY_LAB, seed=np.int64(3))  # numpy's integers are
    assert np_seed.config.seed == 3


# -- junk panel messages -------------------------------------------------------------------


@pytest.mark.parametrize("message", [
    "hello", 42, None, [1, 2], {"kind": 5}, {"kind": None}, {"kind": ["action"]}, {},
    {"kind": "series", "metric": "train_loss", "experiments": 5},
    {"kind": "series", "metric": "train_loss", "experiments": [["exp_0"]]},
    {"kind": "activations", "experiment": [1]},
    {"kind": "activations", "experiment": "exp_0", "layer": "layers.0.pre", "step": "abc"},
    {"kind": "action", "request": {"not": "an id"}, "action": 5},
])
def test_a_panel_message_that_is_not_a_request_gets_an_error_reply(message):
    lab = fl.Lab(":memory:")
    panel, replies = lab.panel, []
    panel.send = lambda content, buffers=None: replies.append(content)
    panel._on_message(panel, message, [])  # never raises
    assert len(replies) == 1 and replies[0]["kind"] == "error"
    assert "internal error" not in replies[0]["message"]
    request = message.get("request") if isinstance(message, dict) else None
    assert replies[0]["request"] == (request if not isinstance(request, dict) else None)
    json.dumps(replies[0])  # a reply the front end can read


def test_panel_requests_are_answered_after_junk():
    lab = fl.Lab(":memory:")
    panel, replies = lab.panel, []
    panel.send = lambda content, buffers=None: replies.append(content)
    panel._on_message(panel, "hello", [])
    panel._on_message(panel, {"kind": "action", "request": "r2", "action": {
        "type": "create_experiment", "params": TINY_LAB}}, [])
    assert replies[-1]["kind"] == "ack" and replies[-1]["request"] == "r2"


def test_no_room_for_the_snapshot_steps_at_a_flush_keeps_that_chunks_rows(tmp_path,
                                                                         monkeypatch):
    """steps.npy is written after the store took the flush's rows: a disk full for it
    ends the run failed, naming the file, with every trained step's series kept."""
    lab = fl.Lab("steps-full", root=tmp_path)
    lab.create_experiment(model={"widths": [4, 8, 8, 1]},
                          data={"dim": 4, "freq": 2.0, "n_train": 32, "n_test": 16},
                          optimizer={"lr": 1e-2, "steps": 300},
                          observables=["train_loss", "hidden_activations"],
                          snapshots={"schedule": [[0, 10]]})
    real_save, writes = np.save, []

    def save(file, array, *args, **kwargs):
        if str(file).endswith("steps.tmp.npy"):
            writes.append(len(array))
            if len(writes) == 4:  # allocation, flushes at 50 and 100, then full at 150
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(file, array, *args, **kwargs)

    monkeypatch.setattr(np, "save", save)
    with pytest.warns(fl.FeaturelabWarning):
        run = lab.run("exp_0")
    assert run.status == "failed" and "disk full: could not write" in run.result().error
    assert "steps.npy" in run.result().error
    assert np.isfinite(run.series("train_loss")).sum() == 150
    steps = list(run.result().snapshots.steps)  # the run's last flush could write it again
    assert len(steps) >= 10 and steps == list(range(0, 10 * len(steps), 10))
