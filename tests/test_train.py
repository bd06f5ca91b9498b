import math
import random
import threading
import time

import numpy as np
import pytest
import torch

from featurelab import ConfigError, Trainer
from featurelab.engine.snapshots import Snapshots
from featurelab.errors import FeaturelabError


def run(cfg, **kw):
    trainer = Trainer(cfg, **kw)
    trainer.run()
    return trainer


def test_series_cover_every_step_with_the_right_shapes(tiny):
    result = run(tiny()).result()
    assert result.status == "finished" and result.steps_done == 60
    assert result.series("train_loss").shape == (60,)
    assert result.series("weight_l2_norm", layer="layers.1").shape == (60,)
    assert result.series("active_rate", layer="layers.1.pre").shape == (60, 12)
    assert result.series("nonlinear_fraction", layer="layers.0.pre").shape == (60,)
    assert np.isfinite(result.series("test_loss")).all()
    # the total norm is the root of the per-layer squares
    layers = [result.series("weight_l2_norm", layer=f"layers.{i}") for i in range(3)]
    np.testing.assert_allclose(result.series("weight_l2_norm"),
                               np.sqrt(sum(v.astype(np.float64) ** 2 for v in layers)), rtol=1e-6)
    assert result.series("train_loss")[-1] < result.series("train_loss")[0]


def test_same_config_and_seed_give_identical_series(tiny):
    a, b = run(tiny()).result(), run(tiny()).result()
    assert a.names() == b.names()
    for name in a.names():
        np.testing.assert_array_equal(a.arrays[name], b.arrays[name], err_msg=name)
    np.testing.assert_array_equal(a.snapshots.stack("layers.1.pre"),
                                  b.snapshots.stack("layers.1.pre"))
    c = run(tiny(seed=1)).result()
    assert not np.array_equal(a.series("train_loss"), c.series("train_loss"))


def test_stepping_in_pieces_equals_one_run(tiny):
    whole = run(tiny()).result()
    trainer = Trainer(tiny())
    assert trainer.step() is True
    trainer.run(9)
    assert trainer.step_count == 10 and trainer.status == "running"
    trainer.run()
    pieces = trainer.result()
    for name in whole.names():
        np.testing.assert_array_equal(whole.arrays[name], pieces.arrays[name], err_msg=name)


def test_the_run_records_how_it_was_computed(tiny):
    info = run(tiny()).info
    assert info["torch"] == torch.__version__
    assert info["threads"] == torch.get_num_threads()
    assert info["step_impl"] == "fused_mlp" and info["optimizer_impl"] == "adam-fused"
    assert Trainer(tiny(), fused_step=False).info["step_impl"] == "autograd"


def test_fused_and_autograd_steps_train_alike(tiny):
    fused = run(tiny()).result().series("train_loss")
    plain = run(tiny(), fused_step=False).result().series("train_loss")
    np.testing.assert_allclose(fused, plain, rtol=1e-4)


def test_a_diverging_run_stops_and_keeps_what_it_recorded(tiny):
    trainer = run(tiny(optimizer={"name": "sgd", "lr": 50.0, "steps": 200}))
    result = trainer.result()
    assert result.status == "diverged"
    assert "loss became" in result.error and "lr=50" in result.error
    losses = result.series("train_loss")
    assert len(losses) == trainer.step_count < 200
    assert not math.isfinite(losses[-1]) and np.isfinite(losses[:-1]).all()
    assert result.series("active_rate", layer="layers.0.pre").shape[0] == len(losses)
    assert trainer.step() is False  # a finished run does not step again


def test_cancel_from_another_thread_keeps_the_recorded_steps(tiny):
    trainer = Trainer(tiny(optimizer={"steps": 100_000}))
    thread = threading.Thread(target=trainer.run)
    thread.start()
    while trainer.step_count < 20:
        time.sleep(0.001)
    trainer.cancel()
    thread.join(timeout=30)
    result = trainer.result()
    assert result.status == "cancelled"
    assert 20 <= result.steps_done < 100_000
    assert np.isfinite(result.series("train_loss")).all()


def test_a_cancel_returns_exactly_the_step_the_run_stops_at(tiny):
    """Cancels at random moments of a training thread: the step count cancel() returns
    is always the one the run ends at (it was only 'at least this far' before)."""
    rng = random.Random(7)
    cfg = tiny(optimizer={"steps": 100_000}, observables=["train_loss"])
    for _ in range(40):
        trainer = Trainer(cfg)
        thread = threading.Thread(target=trainer.run)
        thread.start()
        time.sleep(rng.uniform(0, 0.004))
        at = trainer.cancel()
        thread.join(timeout=30)
        assert trainer.status == "cancelled"
        assert trainer.step_count == at == trainer.result().steps_done
        assert trainer.cancel() is None  # ended: nothing left to cancel


def test_stop_at_trains_exactly_those_steps_of_the_full_run(tiny):
    whole = run(tiny()).result()
    trainer = run(tiny(), stop_at=23)
    part = trainer.result()
    assert part.status == "cancelled" and part.steps_done == trainer.step_count == 23
    assert part.names() == whole.names()
    for name in whole.names():
        np.testing.assert_array_equal(part.arrays[name], whole.arrays[name][:23], err_msg=name)
    assert run(tiny(), stop_at=60).status == "finished"  # all the steps: it just finishes
    assert run(tiny(), stop_at=0).result().steps_done == 0


@pytest.mark.parametrize("optimizer", [
    {"lr": 1e-2, "steps": 60},
    {"name": "sgd", "lr": 1e-2, "momentum": 0.9, "steps": 60, "batch_size": 16},
    {"name": "muon", "lr": 1e-2, "steps": 60, "batch_size": 24},
], ids=["adam-full-batch", "sgd-minibatch", "muon-minibatch"])
def test_a_restored_checkpoint_continues_bitwise(tiny, optimizer):
    """Stopped at 37 (mid-epoch for the minibatches), checkpointed, continued by a new
    trainer: every series and snapshot equals the uninterrupted run's."""
    cfg = tiny(optimizer=optimizer)
    whole = run(cfg).result()
    first = run(cfg, stop_at=37)
    state = first.checkpoint()
    assert state["step"] == 37
    second = Trainer(cfg)
    flushed = []
    second.events.subscribe("on_flush", lambda a, b, series: flushed.append((a, b)))
    second.restore(state, first.result().arrays, first.snapshots)
    assert flushed == [(0, 37)]  # the earlier rows reach the store at once
    second.run()
    done = second.result()
    assert done.status == "finished" and done.steps_done == 60
    assert done.names() == whole.names()
    for name in whole.names():
        np.testing.assert_array_equal(done.arrays[name], whole.arrays[name], err_msg=name)
    np.testing.assert_array_equal(done.snapshots.steps, whole.snapshots.steps)
    for point in whole.snapshots.points:
        np.testing.assert_array_equal(done.snapshots.stack(point), whole.snapshots.stack(point))


def test_only_a_cleanly_cancelled_run_gives_a_checkpoint(tiny):
    assert run(tiny()).checkpoint() is None  # finished
    trainer = Trainer(tiny())
    trainer.run(5)
    trainer.interrupt()  # between two steps: its state is whole
    trainer.run()
    assert trainer.status == "cancelled" and trainer.checkpoint()["step"] == 5
    cut = Trainer(tiny())

    def stop_button(step, *rest):  # KeyboardInterrupt inside step 7, as in a notebook
        if step == 7:
            raise KeyboardInterrupt

    cut.events.subscribe("on_step_end", stop_button)
    with pytest.raises(KeyboardInterrupt):
        cut.run()
    cut.interrupt()
    cut.run()
    assert cut.status == "cancelled" and cut.checkpoint() is None


def test_a_checkpoint_of_another_config_is_refused(tiny):
    state = run(tiny(), stop_at=5).checkpoint()
    other = Trainer(tiny(seed=3))
    with pytest.raises(FeaturelabError, match="checkpoint is of another config"):
        other.restore(state, {}, None)
    with pytest.raises(FeaturelabError, match="format 99"):
        other.restore({**state, "format": 99}, {}, None)


def test_events_fire_in_order(tiny):
    trainer = Trainer(tiny(optimizer={"steps": 7}))
    seen = []
    trainer.events.subscribe("on_step_end", lambda step, *rest: seen.append(step))
    trainer.events.subscribe("on_finish", lambda status: seen.append(status))
    trainer.run()
    assert seen == [0, 1, 2, 3, 4, 5, 6, "finished"]
    with pytest.raises(ValueError, match="unknown event 'on_epoch'"):
        trainer.events.subscribe("on_epoch", print)


def test_snapshots_follow_the_schedule_and_reopen_from_disk(tiny, tmp_path):
    trainer = run(tiny(), snapshot_dir=tmp_path)
    snaps = trainer.snapshots
    expected = [*range(10), *range(10, 60, 5), 59]
    assert snaps.steps.tolist() == expected
    assert snaps.points == ["layers.0.pre", "layers.1.pre"]
    assert snaps.stack("layers.1.pre").shape == (len(expected), 64, 12)
    reopened = Snapshots.load(tmp_path)
    assert reopened.steps.tolist() == expected
    np.testing.assert_array_equal(reopened.stack("layers.0.pre"), snaps.stack("layers.0.pre"))
    assert reopened.nbytes == snaps.nbytes == len(expected) * 64 * (16 + 12) * 4  # float32


def test_minibatch_runs_are_deterministic_and_snapshot_the_whole_train_set(tiny):
    cfg = tiny(optimizer={"batch_size": 16, "steps": 30})
    a, b = run(cfg).result(), run(cfg).result()
    np.testing.assert_array_equal(a.series("train_loss"), b.series("train_loss"))
    assert a.info["batch"] == 16
    assert a.series("active_rate", layer="layers.0.pre").shape == (30, 16)
    assert a.snapshots.stack("layers.0.pre").shape[1:] == (64, 16)


@pytest.mark.parametrize("name", ["sgd", "adamw", "muon"])
def test_every_optimizer_trains(tiny, name):
    result = run(tiny(optimizer={"name": name, "lr": 1e-2, "steps": 80})).result()
    losses = result.series("train_loss")
    assert losses[-1] < losses[0]
    assert result.info["optimizer_impl"].startswith(name)


def test_modular_classification_records_accuracy():
    from featurelab import ExperimentConfig

    cfg = ExperimentConfig(
        model={"kind": "embed_mlp", "widths": [8, 32, 11]},
        data={"task": "modular", "p": 11, "op": "+", "train_frac": 0.6},
        optimizer={"name": "adamw", "lr": 1e-2, "steps": 40, "weight_decay": 0.1},
        loss="cross_entropy",
        observables=["train_loss", "test_loss", "train_accuracy", "test_accuracy",
                     "weight_l2_norm", "active_rate"],
    )
    trainer = run(cfg)
    result = trainer.result()
    assert result.info["step_impl"] == "autograd"
    acc = result.series("train_accuracy")
    assert ((acc >= 0) & (acc <= 1)).all() and acc[-1] > acc[0]
    assert result.series("test_accuracy").shape == (40,)
    assert "weight_l2_norm@embed" in result.names()


def test_unknown_observables_are_named_with_what_is_allowed(tiny):
    with pytest.raises(ConfigError, match=r"observables\[1\]: got 'train_los'.*train_loss"):
        Trainer(tiny(observables=["test_loss", "train_los"]))
    with pytest.raises(ConfigError, match="unknown hook point 'layers.7.pre'"):
        Trainer(tiny(observables=["active_rate@layers.7.pre"]))
    with pytest.raises(ConfigError, match="accuracy needs a classification task"):
        Trainer(tiny(observables=["test_accuracy"]))


def test_asking_for_a_missing_series_lists_what_exists(tiny):
    from featurelab import FeaturelabError

    result = run(tiny()).result()
    with pytest.raises(FeaturelabError, match="pass layer= one of layers.0.pre, layers.1.pre"):
        result.series("active_rate")
    with pytest.raises(FeaturelabError, match="no series 'grad_norm'.*recorded: active_rate"):
        result.series("grad_norm")
