"""A cancelled run: it stops at exactly the step its cancel records, its cell reruns it
stopped there (reusing it), and a later run continues it from its checkpoint, bitwise as
if it had never stopped, while the partial run stays reachable."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest
from conftest import TINY_LAB as TINY
from conftest import exec_cell

import featurelab as fl
import featurelab.runs
from featurelab.errors import ConfigError, FeaturelabError
from featurelab.ui.cell_bridge import CellRecorder
from featurelab.ui.widget import lab_state

# Long enough to be cancelled by hand; no snapshots (nothing big kept per run).
LONG = {**TINY, "optimizer": {"lr": 1e-2, "steps": 100_000},
        "observables": ["train_loss", "test_loss", "active_rate"]}
# Short enough to finish, long enough to be cancelled on its way (snapshots every 10).
MEDIUM = {**TINY, "optimizer": {"lr": 1e-2, "steps": 3000},
          "snapshots": {"schedule": [[0, 100]]}}
MINIBATCH = {**TINY, "optimizer": {"name": "sgd", "lr": 1e-2, "momentum": 0.9, "steps": 120,
                                   "batch_size": 8}}


def _no_training(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a rerun of these cells must not train")


def _wait_for(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _cancel_on_its_way(lab: fl.Lab, experiment: str, after: int = 1) -> tuple[fl.Run, int]:
    """Starts a background run, cancels it once it has done `after` steps; returns the
    run and the step its cancel recorded."""
    run = lab.run(experiment, background=True)
    _wait_for(lambda: run.steps_done >= after, what=f"{after} steps")
    lab.cancel(experiment)
    run.wait(60)
    assert run.status == "cancelled", "the run finished before the cancel came: lengthen it"
    return run, lab.log[-1].result["at_step"]


def _assert_same_run(got: fl.Run, want: fl.Run) -> None:
    a, b = got.result(), want.result()
    assert a.names() == b.names()
    for key in b.names():
        np.testing.assert_array_equal(a.arrays[key], b.arrays[key], err_msg=key)
        assert a.arrays[key].dtype == b.arrays[key].dtype, key
    if b.snapshots is not None:
        np.testing.assert_array_equal(a.snapshots.steps, b.snapshots.steps)
        for point in b.snapshots.points:
            np.testing.assert_array_equal(a.snapshots.stack(point), b.snapshots.stack(point))


@pytest.fixture(params=["memory", "file"])
def lab(request, tmp_path) -> fl.Lab:
    return fl.Lab(":memory:") if request.param == "memory" else fl.Lab("cr", root=tmp_path)


# -- 1. a cancel stops the run at exactly the step it records -------------------------------


def test_a_cancelled_run_ends_at_exactly_the_step_its_cancel_recorded():
    lab = fl.Lab(":memory:")
    exp = lab.create_experiment(**LONG)
    rng = random.Random(11)
    for _ in range(12):
        run = lab.run(exp.id, background=True, force=True)
        time.sleep(rng.uniform(0, 0.02))
        lab.cancel(exp.id)
        run.wait(60)
        at = lab.log[-1].result["at_step"]
        assert run.status == "cancelled"
        assert run.steps_done == at == len(run.series("train_loss"))
        assert run.has_checkpoint


def test_a_cancel_during_the_last_step_is_refused_and_not_logged():
    lab = fl.Lab(":memory:")
    exp = lab.create_experiment(**TINY)
    trainers = []
    lab.on_change(lambda kind, r: trainers.append(r.trainer) if kind == "run_started" else None)
    run = lab.run(exp.id)
    # as if the last step were still in progress: it ends "finished"
    run.trainer, (trainer,) = trainers[0], trainers
    run._recorded.clear()
    trainer.status, trainer._begun = "running", 120
    n = len(lab.log)
    with pytest.raises(FeaturelabError, match=r"exp_0 is not running \(finishing\)"):
        lab.cancel(exp.id)
    assert len(lab.log) == n


# -- 2. stop_at: the first N steps, ending cancelled, reused by the cache --------------------


def test_stop_at_trains_the_first_steps_of_the_full_run_and_ends_cancelled(lab, recwarn):
    full = lab.run(lab.create_experiment(**TINY).id)
    exp = lab.create_experiment(**TINY, name="stopped")  # the same run, but not reused:
    part = lab.run(exp.id, stop_at=47)  # a finished run is not what stop_at asks for
    assert part.id != full.id
    assert part.status == "cancelled" and part.steps_done == 47
    assert not [w for w in recwarn if "cancelled" in str(w.message)]  # asked for: no warning
    assert lab.log[-1].describe() == "Ran exp_1 until step 47 (cancelled at that step)."
    result, whole = part.result(), full.result()
    for key in whole.names():
        np.testing.assert_array_equal(result.arrays[key], whole.arrays[key][:47], err_msg=key)
    assert list(result.snapshots.steps) == [0, 10, 20, 30, 40]


def test_stop_at_reuses_a_run_cancelled_at_that_step_only(lab):
    exp = lab.create_experiment(**TINY)
    first = lab.run(exp.id, stop_at=30)
    again = lab.run(exp.id, stop_at=30)
    assert again is first and lab.log[-1].result["reused"]
    assert lab.log[-1].describe() == "Reused the run of exp_0 cancelled at step 30."
    other = lab.run(exp.id, stop_at=31)
    assert other.id != first.id and other.steps_done == 31
    whole = lab.run(exp.id)  # a plain run never reuses a cancelled one
    assert whole.status == "finished" and whole.id not in (first.id, other.id)
    assert lab.run(exp.id, stop_at=500).id == whole.id  # past the end: just the full run
    assert lab.run(exp.id, stop_at=30, force=True).id != first.id


def test_bad_stop_at_and_resume_arguments_are_named(lab):
    exp = lab.create_experiment(**TINY)
    n = len(lab.log)
    with pytest.raises(ConfigError, match="stop_at: got -1; allowed: a step count, 0 or more"):
        lab.run(exp.id, stop_at=-1)
    with pytest.raises(ConfigError, match="force: got True; allowed: False together with resume"):
        lab.run(exp.id, resume=True, force=True)
    with pytest.raises(FeaturelabError, match=r"exp_0 has no run to continue; lab.run\('exp_0'\)"):
        lab.run(exp.id, resume=True)
    lab.run(exp.id, stop_at=40)
    with pytest.raises(ConfigError, match="stop_at: got 30; allowed: a step after 40"):
        lab.run(exp.id, resume=True, stop_at=30)
    assert len(lab.log) == n + 1
    assert lab.run(exp.id, resume=True, stop_at=40) is lab.results(exp.id)  # that one


# -- 3. resume: a new run from the checkpoint, equal to an uninterrupted one ---------------


@pytest.mark.parametrize("config", [TINY, MINIBATCH], ids=["adam-full-batch", "sgd-minibatch"])
def test_resuming_equals_an_uninterrupted_run_bitwise(lab, config):
    whole = fl.Lab(":memory:")
    uninterrupted = whole.run(whole.create_experiment(**config).id)
    exp = lab.create_experiment(**config)
    partial = lab.run(exp.id, stop_at=53)
    resumed = lab.run(exp.id, resume=True)
    assert resumed.id != partial.id and resumed.status == "finished"
    entry = lab.log[-1]
    assert entry.result["resumed_from"] == partial.id and entry.result["from_step"] == 53
    assert entry.describe() == "Continued exp_0 from step 53 (120 steps)."
    _assert_same_run(resumed, uninterrupted)
    # the partial run stays, with its own 53 steps; results() is the latest
    assert lab.runs_of(exp.id) == [partial, resumed]
    assert lab.results(exp.id) is resumed
    assert partial.status == "cancelled" and len(partial.series("train_loss")) == 53
    np.testing.assert_array_equal(partial.series("train_loss"),
                                  uninterrupted.series("train_loss")[:53])


def test_a_run_cancelled_in_the_background_continues_bitwise():
    """The panel's way: Run, Cancel, Continue, all on background threads."""
    ref = fl.Lab(":memory:")
    uninterrupted = ref.run(ref.create_experiment(**MEDIUM).id, background=True).wait(120)
    lab = fl.Lab(":memory:")
    exp = lab.create_experiment(**MEDIUM)
    partial, at = _cancel_on_its_way(lab, exp.id, after=20)
    assert 20 <= at < 3000 and partial.steps_done == at
    resumed = lab.run(exp.id, background=True, resume=True).wait(120)
    assert resumed.status == "finished"
    assert resumed.result().info["threads"] == uninterrupted.result().info["threads"]
    _assert_same_run(resumed, uninterrupted)


def test_a_resumed_run_can_be_cancelled_and_continued_again(lab):
    whole = fl.Lab(":memory:")
    uninterrupted = whole.run(whole.create_experiment(**TINY).id)
    exp = lab.create_experiment(**TINY)
    lab.run(exp.id, stop_at=20)
    middle = lab.run(exp.id, resume=True, stop_at=70)
    assert middle.status == "cancelled" and middle.steps_done == 70
    assert lab.log[-1].describe() == \
        "Continued exp_0 from step 20 until step 70 (cancelled at that step)."
    last = lab.run(exp.id, resume=True)
    _assert_same_run(last, uninterrupted)
    assert [r.status for r in lab.runs_of(exp.id)] == ["cancelled", "cancelled", "finished"]


def test_a_file_lab_reopened_continues_from_the_checkpoint_on_disk(tmp_path):
    first = fl.Lab("disk", root=tmp_path)
    partial = first.run(first.create_experiment(**TINY).id, stop_at=33)
    assert (tmp_path / "disk.snapshots" / partial.id / "checkpoint.pt").exists()
    reopened = fl.Lab("disk", root=tmp_path)  # another Lab object: only the disk is shared
    assert reopened.results("exp_0").has_checkpoint
    resumed = reopened.run("exp_0", resume=True)
    whole = fl.Lab(":memory:")
    _assert_same_run(resumed, whole.run(whole.create_experiment(**TINY).id))


def test_continuing_without_a_checkpoint_says_why_and_what_to_do(tmp_path):
    # A kernel killed while its run trains: the run is "interrupted", with no checkpoint.
    script = (f"import os, time, featurelab as fl\n"
              f"lab = fl.Lab('killed', root={str(tmp_path)!r})\n"
              f"run = lab.run(lab.create_experiment(**{LONG!r}).id, background=True)\n"
              f"while run.result().steps_done < 50: time.sleep(0.01)\n"
              f"os._exit(0)\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=180)
    lab = fl.Lab("killed", root=tmp_path)
    assert lab.results("exp_0").status == "interrupted"
    with pytest.raises(FeaturelabError) as raised:
        lab.run("exp_0", resume=True)
    message = str(raised.value)
    assert message.startswith("cannot continue exp_0: its latest run ")
    assert "it was interrupted (its kernel stopped or was killed)" in message
    assert message.endswith("lab.run('exp_0', force=True) starts it over")


def test_continuing_after_a_statistic_changed_is_refused(tmp_path):
    source = ("def compute_spread(tensor, dim, keepdim=False):\n"
              "    return tensor.float().amax(dim=dim, keepdim=keepdim)\n")
    lab = fl.Lab(":memory:")
    lab.define_statistic("spread", source=source)
    exp = lab.create_experiment(**{**TINY, "observables": ["train_loss", "spread"]})
    lab.run(exp.id, stop_at=10)
    lab.define_statistic("spread", source=source.replace("amax", "amin"))
    with pytest.raises(FeaturelabError, match="its config or code .* changed since run"):
        lab.run(exp.id, resume=True)


def test_a_finished_run_of_the_config_is_reused_instead_of_continuing(lab, monkeypatch):
    lab.run(lab.create_experiment(**TINY).id)
    exp = lab.create_experiment(**TINY, name="again")
    lab.run(exp.id, stop_at=10, force=True)
    monkeypatch.setattr(featurelab.runs, "Trainer", _no_training)
    lab.run(exp.id, resume=True)
    assert lab.log[-1].describe() == "Reused the finished run of exp_1."


# -- 4. cells: the cancel rewrites its run's cell; Restart & Run All reruns nothing -------


class RecordingBridge:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def request(self, data: dict[str, Any]) -> bool:
        self.requests.append(data)
        return True


def test_a_panel_cancel_rewrites_its_runs_cell_wherever_it_is():
    lab = fl.Lab(":memory:")
    bridge = RecordingBridge()
    CellRecorder(lab, "model-1", bridge)
    lab.apply({"type": "create_experiment", "params": LONG}, actor="human")
    lab.apply({"type": "run", "params": {"experiment": "exp_0", "background": True}},
              actor="human")
    run = lab.results("exp_0")
    lab.apply({"type": "open_chart", "params": {"metric": "train_loss"}}, actor="human")
    lab.apply({"type": "note", "params": {"text": "it plateaus"}}, actor="human")
    lab.apply({"type": "cancel", "params": {"experiment": "exp_0"}}, actor="human")
    run.wait(60)
    ids = [e.id for e in lab.log]
    at = lab.log[-1].result["at_step"]
    code = f"# Cancelled in the panel at step {at}: a rerun stops there too.\n" \
           f"lab.run('exp_0', stop_at={at})"
    cancel = bridge.requests[-1]
    assert (cancel["action_id"], cancel["replaces"], cancel["action_ids"]) == \
        (ids[4], ids[1], [ids[1], ids[4]])  # the run's cell, two cells up
    assert cancel["source"] == code
    compile(code, "cell", "exec")
    cells = lab.cells()  # the same cells without the extension
    assert [c.source for c in cells[1:]] == [code, "lab.open_chart('train_loss')",
                                             "lab.note('it plateaus')"]
    assert cells[1].metadata["featurelab"]["action_ids"] == [ids[1], ids[4]]


def test_a_cancel_of_a_run_started_in_code_gets_a_cell_that_says_how_to_rerun_it():
    lab = fl.Lab(":memory:")
    bridge = RecordingBridge()
    CellRecorder(lab, "model-1", bridge)
    exp = lab.create_experiment(**LONG)
    run = lab.run(exp.id, background=True)  # the user's own cell: not the recorder's
    lab.apply({"type": "cancel", "params": {"experiment": "exp_0"}}, actor="human")
    run.wait(60)
    at = lab.log[-1].result["at_step"]
    (request,) = bridge.requests
    assert request["replaces"] is None
    assert request["source"] == (f"# lab.cancel('exp_0')  # not replayed: cancelled at step "
                                 f"{at}; lab.run('exp_0', stop_at={at}) reruns its run "
                                 "stopped there")


def test_restart_and_run_all_reproduces_the_cancel_and_the_resume_without_training(
        tmp_path, monkeypatch):
    lab = fl.Lab("nb", root=tmp_path)
    exp = lab.create_experiment(**MEDIUM)
    partial, at = _cancel_on_its_way(lab, exp.id, after=20)
    resumed = lab.run(exp.id, resume=True)
    lab.note("done")
    sources = [c.source for c in lab.cells()]
    assert sources[1:] == [
        f"# Cancelled at step {at}: a rerun stops there too.\nlab.run('exp_0', stop_at={at})",
        "lab.run('exp_0', resume=True)",
        "lab.note('done')",
    ]
    monkeypatch.setattr(featurelab.runs, "Trainer", _no_training)
    again = fl.Lab("nb", root=tmp_path, fresh=True)  # the notebook's opening cell
    namespace = {"lab": again}
    for source in sources:
        exec_cell(source, namespace)
    assert [r.id for r in again.runs_of("exp_0")] == [partial.id, resumed.id]
    assert again.results("exp_0").status == "finished"
    assert again.log.sentences()[1:3] == [
        f"Reused the run of exp_0 cancelled at step {at}.",
        "Reused the finished run of exp_0."]


def test_restart_and_run_all_continues_from_the_reused_cancelled_run(tmp_path):
    """Rerun before the continued run finished once: the checkpoint of the cancelled run,
    found through the cache, is where the rerun continues from."""
    lab = fl.Lab("nb2", root=tmp_path)
    exp = lab.create_experiment(**TINY)
    partial = lab.run(exp.id, stop_at=25)
    again = fl.Lab("nb2", root=tmp_path, fresh=True)
    namespace = {"lab": again}
    exec_cell(lab.cells()[0].source, namespace)
    exec_cell("lab.run('exp_0', stop_at=25)", namespace)
    assert again.results("exp_0").id == partial.id
    exec_cell("lab.run('exp_0', resume=True)", namespace)
    whole = fl.Lab(":memory:")
    _assert_same_run(again.results("exp_0"), whole.run(whole.create_experiment(**TINY).id))


def test_replay_reproduces_a_cancelled_run_stopped_where_it_was():
    lab = fl.Lab(":memory:")
    exp = lab.create_experiment(**MEDIUM)
    _, at = _cancel_on_its_way(lab, exp.id, after=20)
    lab.run(exp.id, resume=True)
    report = fl.replay(lab)
    assert report.ok, str(report)
    assert any(c.startswith("exp_0 train_loss") for c in report.compared)
    assert any("cancel is not replayed" in s for s in report.skipped)
    runs = report.lab.runs_of("exp_0")
    assert [(r.status, r.steps_done) for r in runs] == [("cancelled", at), ("finished", 3000)]


def test_an_exported_script_reruns_a_cancelled_run_stopped_where_it_was(tmp_path):
    lab = fl.Lab(":memory:")
    exp = lab.create_experiment(**LONG)
    _, at = _cancel_on_its_way(lab, exp.id)
    source = lab.export_script(tmp_path / "s.py").read_text()
    assert f"lab.run('exp_0', stop_at={at})" in source
    assert "# lab.cancel('exp_0')" in source


# -- 5. the panel's state -----------------------------------------------------------------


def test_the_panel_state_says_where_a_cancelled_run_can_continue_from():
    lab = fl.Lab(":memory:")
    exp = lab.create_experiment(**TINY)
    lab.run(exp.id, stop_at=40)
    (row,) = lab_state(lab)["experiments"]
    assert row["status"] == "cancelled" and row["checkpoint_step"] == 40
    partial = lab.results(exp.id)
    assert row["runs"] == [{"id": partial.id, "status": "cancelled", "steps_done": 40}]
    resumed = lab.run(exp.id, resume=True)
    (row,) = lab_state(lab)["experiments"]
    assert row["status"] == "finished" and row["checkpoint_step"] is None
    assert [r["id"] for r in row["runs"]] == [partial.id, resumed.id]
